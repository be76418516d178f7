/**
 * What daprd's Service Bus pub/sub gives the app with an event (components-contrib common/component/azure/servicebus
 * addMessageAttributesToMetadata): every application property as metadata.<name>, and the broker's facts as
 * metadata.MessageId, metadata.SessionId, metadata.CorrelationId, metadata.Label, metadata.ReplyTo, metadata.To,
 * metadata.ContentType, metadata.LockToken (the lock token's 16 bytes, base64), metadata.DeliveryCount (1 on the
 * first delivery), metadata.EnqueuedTimeUtc, metadata.SequenceNumber, metadata.ScheduledEnqueueTimeUtc,
 * metadata.PartitionKey, metadata.LockedUntilUtc; times as HTTP dates. Events are published with the mapping the
 * binding uses (message.ts toServiceBusMessage): daprd shares it between the two.
 */
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { MessageMetadata } from '../../types.js';
import { deliveryCountOf } from './message.js';

export function pubsubMetadataOf(m: ServiceBusReceivedMessage): MessageMetadata {
  const out: MessageMetadata = {};
  for (const [k, v] of Object.entries(m.applicationProperties ?? {})) {
    if (v === undefined || v === null) continue;
    out[`metadata.${k}`] = v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  const put = (k: string, v: unknown, keepEmpty = false): void => {
    if (v === undefined || v === null || (v === '' && !keepEmpty)) return;
    out[`metadata.${k}`] = v instanceof Date ? v.toUTCString() : String(v);
  };
  put('MessageId', m.messageId);
  put('SessionId', m.sessionId, true);
  put('CorrelationId', m.correlationId);
  put('Label', m.subject);
  put('ReplyTo', m.replyTo);
  put('To', m.to);
  put('ContentType', m.contentType);
  // The SDK gives the token as a GUID string; Go's SDK gives its 16 bytes in that same order.
  if (m.lockToken) put('LockToken', Buffer.from(m.lockToken.replace(/-/g, ''), 'hex').toString('base64'));
  put('DeliveryCount', deliveryCountOf(m));
  put('EnqueuedTimeUtc', m.enqueuedTimeUtc);
  put('SequenceNumber', m.sequenceNumber?.toString());
  put('ScheduledEnqueueTimeUtc', m.scheduledEnqueueTimeUtc);
  put('PartitionKey', m.partitionKey, true);
  put('LockedUntilUtc', m.lockedUntilUtc);
  return out;
}
