/**
 * The metadata a message reaches the app with (as headers): what the real Dapr component of the binding's type
 * gives daprd, so an app that runs here runs the same on a cluster (components-contrib, the Read of each binding):
 * - bindings.azure.servicebusqueues: `id` (the message id), `correlationID` and `label` when set, and each string
 *   application property, name and value query-escaped. qscale's Service Bus backend also reads the broker's
 *   facts (MessageId, DeliveryCount, EnqueuedTimeUtc, ...); Dapr's binding never passes them on, so they reach the
 *   app only with --broker-headers.
 * - bindings.rabbitmq: each string header, its name query-escaped; headers qscale's own retry and dead-letter
 *   handling adds only with --broker-headers.
 * - the qscale-only types: the metadata the producer sent, as it was sent.
 * When the embedded queue serves a Dapr type (--embedded), it holds the producer's request metadata: this turns it
 * into what that type's binding would have stored and read back.
 */
import { goQueryEscape } from '../backends/azure/servicebus/message.js';
import type { MessageMetadata, QueueMessage } from '../backends/types.js';

const SERVICEBUS = 'bindings.azure.servicebusqueues';
const RABBITMQ = 'bindings.rabbitmq';

/** What qscale's Service Bus backend reads from the broker and Dapr's binding does not pass to the app. */
export const SERVICEBUS_BROKER_KEYS: ReadonlySet<string> = new Set([
  'MessageId', 'CorrelationId', 'SessionId', 'Label', 'ReplyTo', 'To', 'PartitionKey', 'ContentType', 'DeliveryCount',
  'EnqueuedTimeUtc', 'LockedUntilUtc', 'SequenceNumber', 'ScheduledEnqueueTimeUtc',
]);

/** Headers qscale's RabbitMQ retry and dead-letter handling puts on a message; Dapr's binding never adds them. */
const RABBITMQ_BROKER_KEY = /^(x-death|x-delivery-count|x-qscale-.*|x-(first|last)-death-.*)$/i;

/** Request metadata Dapr's Service Bus binding turns into message properties, not application properties. */
const SERVICEBUS_PROPERTIES = new Set([
  'ttl', 'ttlInSeconds', 'MessageId', 'id', 'CorrelationId', 'correlationID', 'SessionId', 'Label', 'ReplyTo', 'To',
  'PartitionKey', 'ContentType', 'ScheduledEnqueueTimeUtc',
]);

/** A request's metadata sent through Dapr's Service Bus binding and read back by it. */
function serviceBusRoundTrip(sent: MessageMetadata, queueId: string): MessageMetadata {
  const has = (k: string): boolean => sent[k] !== undefined && sent[k] !== '';
  const out: MessageMetadata = { id: has('MessageId') ? sent.MessageId! : has('id') ? sent.id! : queueId };
  const correlation = has('CorrelationId') ? sent.CorrelationId : has('correlationID') ? sent.correlationID : undefined;
  if (correlation !== undefined) out.correlationID = correlation;
  if (has('Label')) out.label = sent.Label!;
  for (const [k, v] of Object.entries(sent)) {
    if (v === '' || SERVICEBUS_PROPERTIES.has(k)) continue;
    out[goQueryEscape(k)] = goQueryEscape(v);
  }
  return out;
}

export interface DeliveryView {
  /** The binding's component type. */
  type: string;
  /** The embedded queue serves it: messages carry the producer's request metadata. */
  servedEmbedded: boolean;
  /** --broker-headers: also pass what qscale's backend reads that the Dapr component does not. */
  brokerHeaders: boolean;
}

/** Returns the function that gives each message's metadata as the app is to see it. */
export function deliveredMetadata(view: DeliveryView): (msg: QueueMessage) => MessageMetadata {
  const { type, servedEmbedded, brokerHeaders } = view;
  if (type === SERVICEBUS) {
    if (servedEmbedded) return (msg) => serviceBusRoundTrip(msg.metadata, msg.id);
    return (msg) => split(msg.metadata, (k) => SERVICEBUS_BROKER_KEYS.has(k), brokerHeaders);
  }
  if (type === RABBITMQ) {
    if (servedEmbedded) return (msg) => Object.fromEntries(Object.entries(msg.metadata).map(([k, v]) => [goQueryEscape(k), v]));
    return (msg) => split(msg.metadata, (k) => RABBITMQ_BROKER_KEY.test(k), brokerHeaders);
  }
  return (msg) => msg.metadata;
}

/**
 * What the Dapr component gives (the entries that are not qscale's broker facts), and with `withBroker` the broker
 * facts too, each unless a header of that name (in any case: headers are lower-cased) is there already.
 */
function split(md: MessageMetadata, isBroker: (key: string) => boolean, withBroker: boolean): MessageMetadata {
  const out: MessageMetadata = {};
  const names = new Set<string>();
  for (const [k, v] of Object.entries(md)) {
    if (isBroker(k)) continue;
    out[k] = v;
    names.add(k.toLowerCase());
  }
  if (!withBroker) return out;
  for (const [k, v] of Object.entries(md)) if (isBroker(k) && !names.has(k.toLowerCase())) out[k] = v;
  return out;
}
