/**
 * bindings.azure.servicebusqueues metadata: Dapr's fields and binding defaults (components-contrib
 * common/component/azure/servicebus/metadata.go, binding mode), declared once: parsing, errors and redaction come
 * from here. Cross-checked by test against the binding's metadata.yaml.
 */
import { defineMetadata, type MetadataContext } from '../../../components/metadata.js';
import { ConfigError } from '../../../errors.js';
import { redeliveryFields, redeliveryPolicy, type RedeliveryPolicy } from '../../redelivery.js';
import type { ResolvedComponent } from '../../types.js';
import { parseConnectionString, type ConnectionParts } from './connection.js';
import { SERVICEBUS_QUEUES_TYPE } from './trigger-params.js';

export { SERVICEBUS_QUEUES_TYPE };

export const serviceBusMetadata = defineMetadata([
  { name: 'connectionString', type: 'string', sensitive: true,
    description: 'The Service Bus connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...).' },
  { name: 'namespaceName', type: 'string',
    description: 'Azure AD authentication: the namespace FQDN. Not supported by qscale (no Azure AD credential here).' },
  { name: 'queueName', type: 'string', required: true,
    description: 'The queue. Service Bus names are case-insensitive: it is lower-cased.' },
  { name: 'ttlInSeconds', type: 'integer', min: 1, binding: 'output',
    description: "Default time to live of created queues (alias of defaultMessageTimeToLiveInSec); a request's " +
      "'ttlInSeconds' metadata sets one message's time to live." },
  { name: 'maxRetriableErrorsPerSec', type: 'integer', default: 10, min: 0, binding: 'input',
    description: 'Failed deliveries handled per second at most: after a failure the next message waits (0: no limit).' },
  { name: 'minConnectionRecoveryInSec', type: 'integer', default: 2, min: 0,
    description: 'First wait before reconnecting the receiver after a connection failure.' },
  { name: 'maxConnectionRecoveryInSec', type: 'integer', default: 300, min: 0,
    description: 'Longest wait between receiver reconnect attempts (the wait doubles from the minimum).' },
  { name: 'maxActiveMessages', type: 'integer', default: 1, min: 1, binding: 'input',
    description: 'Messages locked at once by this sidecar, at most.' },
  { name: 'maxConcurrentHandlers', type: 'integer', default: 1, min: 0, binding: 'input',
    description: 'Handler calls to the app at once; 0 = no limit of its own.' },
  { name: 'lockRenewalInSec', type: 'integer', default: 20, min: 0, binding: 'input',
    description: 'Every this many seconds the locks of messages in hand are renewed (0: never).' },
  { name: 'timeoutInSec', type: 'integer', default: 60, min: 1,
    description: 'Timeout of every call to Service Bus.' },
  { name: 'disableEntityManagement', type: 'boolean', default: false,
    description: 'Do not create the queue when it is missing.' },
  { name: 'lockDurationInSec', type: 'integer', min: 1,
    description: 'Lock duration of a queue qscale creates. Default set by the server (60 s).' },
  { name: 'autoDeleteOnIdleInSec', type: 'integer', default: 0, min: 0,
    description: 'Auto-delete-on-idle of a queue qscale creates; 0 = disabled, else at least 300.' },
  { name: 'defaultMessageTimeToLiveInSec', type: 'integer', min: 1,
    description: 'Default message time to live of a queue qscale creates. Default set by the server.' },
  { name: 'maxDeliveryCount', type: 'integer', min: 1,
    description: 'Deliveries before the broker dead-letters a message, for a queue qscale creates. Server default 10.' },
  { name: 'handlerTimeoutInSec', type: 'integer', default: 0, min: 0,
    description: "Timeout of one handler call; when it passes the message is abandoned. 0 = none." },
  { name: 'publishMaxRetries', type: 'integer', default: 5, min: 0, binding: 'output',
    description: 'Retries of a send the broker refused as busy (throttled).' },
  { name: 'publishInitialRetryIntervalInMs', type: 'integer', default: 500, min: 0, binding: 'output',
    aliases: ['publishInitialRetryInternalInMs'],
    description: 'First wait before retrying a throttled send; it grows exponentially.' },
  ...redeliveryFields,
] as const);

export interface QueueCreationProperties {
  lockDurationSec: number | undefined;
  defaultMessageTtlSec: number | undefined;
  maxDeliveryCount: number | undefined;
  autoDeleteOnIdleSec: number | undefined;
}

export interface ServiceBusSettings {
  /** The connection string as given (secret). */
  connectionString: string;
  connection: ConnectionParts;
  queueName: string;
  maxRetriableErrorsPerSec: number;
  minConnectionRecoveryMs: number;
  maxConnectionRecoveryMs: number;
  maxActiveMessages: number;
  /** 0 = no limit of its own. */
  maxConcurrentHandlers: number;
  lockRenewalMs: number;
  timeoutMs: number;
  disableEntityManagement: boolean;
  handlerTimeoutMs: number;
  publishMaxRetries: number;
  publishInitialRetryIntervalMs: number;
  redelivery: RedeliveryPolicy;
  create: QueueCreationProperties;
}

export function componentContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseServiceBusComponent(c: ResolvedComponent): ServiceBusSettings {
  const ctx = componentContext(c);
  const m = serviceBusMetadata.parse(c.metadata, ctx);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${ctx.subject}: ${message}`, { ...ctx.where(field), field });
  if (m.connectionString !== undefined && m.namespaceName !== undefined) {
    throw fail('connectionString and namespaceName cannot both be specified', 'namespaceName');
  }
  if (m.connectionString === undefined) {
    if (m.namespaceName !== undefined) {
      throw fail('namespaceName (Azure AD authentication) is not supported by qscale: give connectionString ' +
        '(a shared access policy of the namespace), or run with --embedded', 'namespaceName');
    }
    throw fail("missing required metadata 'connectionString' (either connectionString or namespaceName is required)", 'connectionString');
  }
  const parts = parseConnectionString(m.connectionString);
  if (typeof parts === 'string') throw fail(`metadata 'connectionString' is not a Service Bus connection string: ${parts}`, 'connectionString');
  const queueName = m.queueName.trim().toLowerCase();
  if (parts.entityPath !== undefined && parts.entityPath.toLowerCase() !== queueName) {
    throw fail(`the connection string's EntityPath '${parts.entityPath}' is not queueName '${queueName}'`, 'queueName');
  }
  if (m.autoDeleteOnIdleInSec !== 0 && m.autoDeleteOnIdleInSec < 300) {
    throw fail(`autoDeleteOnIdleInSec must be 0 (disabled) or at least 300, got ${m.autoDeleteOnIdleInSec}`, 'autoDeleteOnIdleInSec');
  }
  if (m.maxConnectionRecoveryInSec < m.minConnectionRecoveryInSec) {
    throw fail(`maxConnectionRecoveryInSec (${m.maxConnectionRecoveryInSec}) is below minConnectionRecoveryInSec (${m.minConnectionRecoveryInSec})`,
      'maxConnectionRecoveryInSec');
  }
  return {
    connectionString: m.connectionString,
    connection: parts,
    queueName,
    maxRetriableErrorsPerSec: m.maxRetriableErrorsPerSec,
    minConnectionRecoveryMs: m.minConnectionRecoveryInSec * 1000,
    maxConnectionRecoveryMs: m.maxConnectionRecoveryInSec * 1000,
    maxActiveMessages: m.maxActiveMessages,
    maxConcurrentHandlers: m.maxConcurrentHandlers,
    lockRenewalMs: m.lockRenewalInSec * 1000,
    timeoutMs: m.timeoutInSec * 1000,
    disableEntityManagement: m.disableEntityManagement,
    handlerTimeoutMs: m.handlerTimeoutInSec * 1000,
    publishMaxRetries: m.publishMaxRetries,
    publishInitialRetryIntervalMs: m.publishInitialRetryIntervalInMs,
    redelivery: redeliveryPolicy(m, ctx),
    create: {
      lockDurationSec: m.lockDurationInSec,
      // As in Dapr: defaultMessageTimeToLiveInSec wins, ttlInSeconds is its older name.
      defaultMessageTtlSec: m.defaultMessageTimeToLiveInSec ?? m.ttlInSeconds,
      maxDeliveryCount: m.maxDeliveryCount,
      autoDeleteOnIdleSec: m.autoDeleteOnIdleInSec === 0 ? undefined : m.autoDeleteOnIdleInSec,
    },
  };
}
