/**
 * Metadata of the `bindings.qscale.nats-jetstream` binding and of KEDA's `nats-jetstream` trigger, declared once.
 * "qscale" is in the binding type because Dapr has no JetStream queue binding: nobody should take it for Dapr's.
 */
import { defineMetadata } from '../../components/metadata.js';
import { redactUrl } from '../../components/redact.js';
import { redeliveryFields } from '../redelivery.js';

export const NATS_BINDING_TYPE = 'bindings.qscale.nats-jetstream';

export const natsMetadata = defineMetadata([
  {
    name: 'natsURL',
    type: 'string',
    required: true,
    description: 'NATS server URL(s), comma separated: nats://host:4222. Credentials in the URL are redacted in logs.',
    aliases: ['url', 'servers'],
  },
  { name: 'user', type: 'string', description: 'User name, when not in the URL.' },
  { name: 'password', type: 'string', sensitive: true, description: 'Password for user.' },
  { name: 'token', type: 'string', sensitive: true, description: 'Authentication token.' },
  { name: 'stream', type: 'string', required: true, description: 'JetStream stream (work-queue retention): the queue.' },
  { name: 'subject', type: 'string', description: 'Subject messages are published on and the consumer filters (default: the stream name).' },
  { name: 'consumer', type: 'string', description: 'Durable pull consumer name (default: <stream>-consumer).', aliases: ['durableName'] },
  {
    name: 'ackWait',
    type: 'duration',
    default: '60s',
    binding: 'input',
    aliases: ['visibilityTimeoutInSec'],
    description: 'Consumer ack_wait: the lease of a delivered message, extended with progress acks while the handler works.',
  },
  { name: 'maxDeliveryCount', type: 'integer', default: 10, min: 1, binding: 'input', description: 'Deliveries before a message moves to the <stream>-dlq stream.' },
  { name: 'maxConcurrentHandlers', type: 'integer', min: 1, binding: 'input', description: "Caps handler calls at once (the sidecar's --app-max-concurrency applies too; the lower wins)." },
  { name: 'createStream', type: 'boolean', default: true, description: 'Create the stream (work-queue retention) when it does not exist; false: a missing stream is an error.' },
  { name: 'storage', type: 'string', default: 'file', enum: ['file', 'memory'], description: 'Storage of a stream created here.' },
  ...redeliveryFields,
] as const);

/** Server URLs as they may be printed: any user:password@ or token@ part redacted (components/redact.ts). */
export { redactUrl };

export const natsTriggerMetadata = defineMetadata([
  { name: 'natsServerMonitoringEndpoint', type: 'string', description: 'host:port of the server monitoring endpoint (/jsz).' },
  { name: 'account', type: 'string', required: true, description: 'Account of the stream ($G on a server without accounts).' },
  { name: 'stream', type: 'string', required: true, description: 'Stream name.' },
  { name: 'consumer', type: 'string', required: true, description: 'Durable consumer name.' },
  { name: 'lagThreshold', type: 'integer', default: 10, description: 'Target: pending + ack-pending messages per replica.' },
  { name: 'activationLagThreshold', type: 'integer', default: 0, description: 'Active when the lag is above this.' },
  { name: 'useHttps', type: 'boolean', default: false, description: 'Reach the monitoring endpoint over https.' },
  {
    name: 'natsURL',
    type: 'string',
    description:
      'qscale extension: where the consumer is read over the JetStream API when no monitoring endpoint is given or it cannot be reached (default: port 4222 of the endpoint\'s host).',
  },
] as const);
