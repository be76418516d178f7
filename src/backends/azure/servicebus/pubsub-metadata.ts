/**
 * pubsub.azure.servicebus.topics / .queues metadata: the fields of Dapr's metadata.yaml with daprd's pub/sub defaults
 * (components-contrib common/component/azure/servicebus ParseMetadata, pub/sub mode: maxActiveMessages 1000, no
 * handler limit of its own, handlers timed out after 60 s), Azure AD through namespaceName as the binding does.
 * Declared once: parsing, errors, redaction and docs come from here; test/backends/azure/pubsub-metadata.test.ts
 * cross-checks it with the reference metadata.yaml files.
 */
import { defineMetadata, type MetadataContext } from '../../../components/metadata.js';
import { ConfigError } from '../../../errors.js';
import { withoutTtl } from '../../dapr-ttl.js';
import type { ResolvedComponent } from '../../types.js';
import { azureAdFields, type AzureAdSettings } from '../identity.js';
import type { ConnectionParts } from './connection.js';
import { serviceBusAuth, serviceBusChecks, type QueueCreationProperties } from './metadata.js';

export const SERVICEBUS_TOPICS_TYPE = 'pubsub.azure.servicebus.topics';
export const SERVICEBUS_QUEUES_PUBSUB_TYPE = 'pubsub.azure.servicebus.queues';

const common = [
  { name: 'connectionString', type: 'string', sensitive: true,
    description: 'The namespace connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...), Manage rights unless disableEntityManagement.' },
  { name: 'namespaceName', type: 'string',
    description: 'Azure AD authentication: the namespace, fully qualified (myns.servicebus.windows.net), instead of connectionString.' },
  ...azureAdFields,
  { name: 'maxRetriableErrorsPerSec', type: 'integer', default: 10, min: 0,
    description: 'Failed events handled per second at most: after a failure the next one waits (0: no limit).' },
  { name: 'minConnectionRecoveryInSec', type: 'integer', default: 2, min: 0,
    description: 'First wait before receiving again after a connection failure.' },
  { name: 'maxConnectionRecoveryInSec', type: 'integer', default: 300, min: 0,
    description: 'Longest wait between attempts to receive again (the wait doubles from the minimum).' },
  { name: 'maxActiveMessages', type: 'integer', default: 1000, min: 1,
    description: 'Events locked at once by this sidecar, at most; qscale never locks more than its handlers can take now.' },
  { name: 'maxConcurrentHandlers', type: 'integer', default: 0,
    description: 'Handler calls to the app at once; 0 (or less): no limit of its own, as in daprd.' },
  { name: 'lockRenewalInSec', type: 'integer', default: 20, min: 0,
    description: 'Every this many seconds the locks of events in hand are renewed (0: never).' },
  { name: 'timeoutInSec', type: 'integer', default: 60, min: 1,
    description: 'Timeout of a send and of every management call.' },
  { name: 'disableEntityManagement', type: 'boolean', default: false,
    description: 'Do not create missing topics, queues and subscriptions (and need no Manage rights).' },
  { name: 'lockDurationInSec', type: 'integer', min: 1,
    description: 'Lock duration of a queue or subscription qscale creates. Default set by the server (60 s).' },
  { name: 'autoDeleteOnIdleInSec', type: 'integer', default: 0, min: 0,
    description: 'Auto-delete-on-idle of a queue or subscription qscale creates; 0 = disabled, else at least 300.' },
  { name: 'defaultMessageTimeToLiveInSec', type: 'integer', min: 1,
    description: "Default time to live of a queue or subscription qscale creates ('ttlInSeconds' is read as its older name)." },
  { name: 'maxDeliveryCount', type: 'integer', min: 1,
    description: 'Deliveries before the broker dead-letters an event, for a queue or subscription qscale creates. Server default 10.' },
  // daprd's context.WithTimeout(…, 0) fails every handler at once: refused rather than copied.
  { name: 'handlerTimeoutInSec', type: 'integer', default: 60, min: 1,
    description: "The app's handler fails (the event is abandoned) when it has not answered within this many seconds." },
  { name: 'publishMaxRetries', type: 'integer', default: 5, min: 0,
    description: 'Retries of a publish the broker refused as busy (throttled), or lost with the connection.' },
  { name: 'publishInitialRetryIntervalInMs', type: 'integer', default: 500, min: 0, aliases: ['publishInitialRetryInternalInMs'],
    description: 'First wait before retrying a publish; it grows exponentially.' },
] as const;

export const serviceBusQueuesPubSubMetadata = defineMetadata(common);

export const serviceBusTopicsPubSubMetadata = defineMetadata([
  ...common,
  { name: 'consumerID', type: 'string',
    description: "The topic subscription this app reads: replicas of one app share it, each app gets every event. Default: the app id." },
] as const);

export interface ServiceBusPubSubSettings {
  mode: 'topics' | 'queues';
  /** The connection string as given (secret); '' with Azure AD. */
  connectionString: string;
  connection: ConnectionParts;
  azureAd: AzureAdSettings | undefined;
  /** topics: the subscription name; undefined = the app id. */
  consumerID: string | undefined;
  maxRetriableErrorsPerSec: number;
  minConnectionRecoveryMs: number;
  maxConnectionRecoveryMs: number;
  maxActiveMessages: number;
  /** 0 = no limit of its own. */
  maxConcurrentHandlers: number;
  lockRenewalMs: number;
  timeoutMs: number;
  handlerTimeoutMs: number;
  disableEntityManagement: boolean;
  publishMaxRetries: number;
  publishInitialRetryIntervalMs: number;
  /** For the queues and subscriptions qscale creates (topics are created with the server's defaults, as daprd does). */
  create: QueueCreationProperties;
}

export function serviceBusPubSubContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseServiceBusPubSub(c: ResolvedComponent, mode: 'topics' | 'queues'): ServiceBusPubSubSettings {
  const ctx = serviceBusPubSubContext(c);
  const spec = mode === 'topics' ? serviceBusTopicsPubSubMetadata : serviceBusQueuesPubSubMetadata;
  const m = spec.parse(withoutTtl(c.metadata), ctx) as ReturnType<typeof serviceBusTopicsPubSubMetadata.parse>;
  const fail = (message: string, field: string): ConfigError => new ConfigError(`${ctx.subject}: ${message}`, { ...ctx.where(field), field });
  const { connection, azureAd } = serviceBusAuth(m, fail);
  const defaultMessageTtlSec = serviceBusChecks(m, c.metadata, fail);
  return {
    mode,
    connectionString: m.connectionString ?? '',
    connection,
    azureAd,
    consumerID: mode === 'topics' ? m.consumerID?.trim() || undefined : undefined,
    maxRetriableErrorsPerSec: m.maxRetriableErrorsPerSec,
    minConnectionRecoveryMs: m.minConnectionRecoveryInSec * 1000,
    maxConnectionRecoveryMs: m.maxConnectionRecoveryInSec * 1000,
    maxActiveMessages: m.maxActiveMessages,
    maxConcurrentHandlers: m.maxConcurrentHandlers,
    lockRenewalMs: m.lockRenewalInSec * 1000,
    timeoutMs: m.timeoutInSec * 1000,
    handlerTimeoutMs: m.handlerTimeoutInSec * 1000,
    disableEntityManagement: m.disableEntityManagement,
    publishMaxRetries: m.publishMaxRetries,
    publishInitialRetryIntervalMs: m.publishInitialRetryIntervalInMs,
    create: {
      lockDurationSec: m.lockDurationInSec,
      defaultMessageTtlSec,
      maxDeliveryCount: m.maxDeliveryCount,
      autoDeleteOnIdleSec: m.autoDeleteOnIdleInSec === 0 ? undefined : m.autoDeleteOnIdleInSec,
    },
  };
}
