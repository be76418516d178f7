/**
 * Message mapping, as Dapr's Service Bus binding does it.
 * Out (request metadata → message): ttl / ttlInSeconds (a Go duration or whole seconds; one Dapr cannot read is
 * dropped, as Dapr drops it), MessageId / id, CorrelationId / correlationID, SessionId, Label,
 * ReplyTo, To, PartitionKey, ContentType, ScheduledEnqueueTimeUtc set the broker's fields; every other key becomes an
 * application property. Keys are matched exactly, as Dapr matches them.
 * In (message → headers for the app): Dapr's binding gives id, correlationID, label and the string application
 * properties (URL-query-escaped); qscale adds the broker facts Dapr's pubsub gives (MessageId, DeliveryCount,
 * EnqueuedTimeUtc, LockedUntilUtc, SequenceNumber, ...). Application properties win on a clash, as in Dapr.
 */
import type { ServiceBusMessage, ServiceBusReceivedMessage } from '@azure/service-bus';
import { QscaleError } from '../../../errors.js';
import type { MessageMetadata } from '../../types.js';
import { daprTtl } from '../../dapr-ttl.js';

export class MessageMetadataError extends QscaleError {
  constructor(message: string) {
    super('ERR_MESSAGE_METADATA', message);
    this.name = 'MessageMetadataError';
  }
}

/** `ignored`: told, once per message, of metadata Dapr accepts and drops (a TTL it cannot read). */
export function toServiceBusMessage(data: Buffer, metadata: MessageMetadata, ignored?: (why: string) => void): ServiceBusMessage {
  const msg: ServiceBusMessage = { body: data, applicationProperties: {} };
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    // A blank session id is valid; any other blank value is ignored.
    if (v === '' && k !== 'SessionId') continue;
    switch (k) {
      case 'ttl':
      case 'ttlInSeconds':
        // Read once, below: these two exact keys are never application properties.
        break;
      case 'MessageId':
      case 'id':
        msg.messageId ??= v;
        break;
      case 'CorrelationId':
      case 'correlationID':
        msg.correlationId ??= v;
        break;
      case 'SessionId':
        if (v.length > 128) throw new MessageMetadataError(`metadata 'SessionId' exceeds the maximum length of 128 characters`);
        msg.sessionId = v;
        break;
      case 'Label':
        msg.subject = v;
        break;
      case 'ReplyTo':
        msg.replyTo = v;
        break;
      case 'To':
        msg.to = v;
        break;
      case 'PartitionKey':
        msg.partitionKey = v;
        break;
      case 'ContentType':
        msg.contentType = v;
        break;
      case 'ScheduledEnqueueTimeUtc':
        msg.scheduledEnqueueTimeUtc = parseTime(v);
        break;
      default:
        props[k] = v;
    }
  }
  if ((metadata.ttl ?? '') !== '' || (metadata.ttlInSeconds ?? '') !== '') {
    // Dapr's lookup decides which of the two is read. The AMQP header holds whole milliseconds; 0 is left out, so
    // the queue's default applies.
    const ttl = daprTtl(metadata);
    if (ttl !== undefined && 'error' in ttl) {
      ignored?.(`metadata '${ttl.key}' must be ${ttl.error}, got '${ttl.value}': the message is sent without a time to live, as daprd sends it`);
    } else if (ttl !== undefined && Math.trunc(ttl.ms) >= 1) {
      msg.timeToLive = Math.trunc(ttl.ms);
    }
  }
  if (msg.partitionKey !== undefined && msg.sessionId !== undefined && msg.partitionKey !== msg.sessionId) {
    throw new MessageMetadataError(`metadata 'SessionId' (${msg.sessionId}) and 'PartitionKey' (${msg.partitionKey}) must be equal when both are given`);
  }
  msg.applicationProperties = props;
  return msg;
}

/** HTTP date (RFC 1123, what Dapr writes) or RFC 3339. */
function parseTime(v: string): Date {
  const rfc1123 = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
  const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
  const d = new Date(v);
  if ((rfc1123.test(v) || rfc3339.test(v)) && !Number.isNaN(d.getTime())) return d;
  throw new MessageMetadataError(`metadata 'ScheduledEnqueueTimeUtc' must be an HTTP date (Mon, 02 Jan 2006 15:04:05 GMT) or RFC 3339, got '${v}'`);
}

/** 1 on the first delivery. The JavaScript SDK reports the AMQP header's count of earlier attempts (0 first). */
export function deliveryCountOf(m: ServiceBusReceivedMessage): number {
  return (m.deliveryCount ?? 0) + 1;
}

/** The broker fields a request's metadata can set (toServiceBusMessage), under the keys Dapr reads and gives. */
export function requestFieldsOf(m: ServiceBusReceivedMessage): Array<[string, unknown]> {
  return [
    ['MessageId', m.messageId], ['CorrelationId', m.correlationId], ['SessionId', m.sessionId], ['Label', m.subject],
    ['ReplyTo', m.replyTo], ['To', m.to], ['PartitionKey', m.partitionKey], ['ContentType', m.contentType],
  ];
}

export function metadataOf(m: ServiceBusReceivedMessage): MessageMetadata {
  const out: MessageMetadata = {};
  const put = (k: string, v: unknown): void => {
    if (v !== undefined && v !== null) out[k] = v instanceof Date ? v.toUTCString() : String(v);
  };
  for (const [k, v] of requestFieldsOf(m)) put(k, v);
  put('DeliveryCount', deliveryCountOf(m));
  put('EnqueuedTimeUtc', m.enqueuedTimeUtc);
  put('LockedUntilUtc', m.lockedUntilUtc);
  put('SequenceNumber', m.sequenceNumber?.toString());
  put('ScheduledEnqueueTimeUtc', m.scheduledEnqueueTimeUtc);
  // What Dapr's binding itself gives:
  out.id = m.messageId === undefined ? '' : String(m.messageId);
  put('correlationID', m.correlationId);
  put('label', m.subject);
  for (const [k, v] of Object.entries(m.applicationProperties ?? {})) {
    if (typeof v === 'string') out[goQueryEscape(k)] = goQueryEscape(v);
  }
  return out;
}

/** Go's url.QueryEscape: unreserved characters stay, space becomes '+', the rest is %XX of the UTF-8 bytes. */
export function goQueryEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The body as bytes: a data section as it is; anything else (another client's AMQP value) as JSON. */
export function bodyBytes(m: ServiceBusReceivedMessage): Buffer {
  const b: unknown = m.body;
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof Uint8Array) return Buffer.from(b);
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.from(JSON.stringify(b ?? null), 'utf8');
}
