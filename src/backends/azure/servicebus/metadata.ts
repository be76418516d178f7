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
import { daprTtl, withoutTtl } from '../../dapr-ttl.js';
import { AzureAdSettingError, azureAdFields, parseAzureAd, type AzureAdMetadata, type AzureAdSettings } from '../identity.js';
import { SERVICEBUS_QUEUES_TYPE } from './trigger-params.js';

export { SERVICEBUS_QUEUES_TYPE };

export const serviceBusMetadata = defineMetadata([
  { name: 'connectionString', type: 'string', sensitive: true,
    description: 'The Service Bus connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...).' },
  { name: 'namespaceName', type: 'string',
    description: 'Azure AD authentication: the namespace, fully qualified (myns.servicebus.windows.net), instead of connectionString.' },
  ...azureAdFields,
  { name: 'queueName', type: 'string', required: true,
    description: 'The queue. Service Bus names are case-insensitive: it is lower-cased.' },
  // Read as Dapr reads it (dapr-ttl.ts, with `ttl`): a Go duration or whole seconds.
  { name: 'ttlInSeconds', type: 'integer', min: 1, binding: 'output',
    description: "Default time to live of created queues (alias of defaultMessageTimeToLiveInSec): whole seconds or a " +
      "duration such as 1h; a request's 'ttlInSeconds' metadata sets one message's time to live." },
  { name: 'maxRetriableErrorsPerSec', type: 'integer', default: 10, min: 0, binding: 'input',
    description: 'Failed deliveries handled per second at most: after a failure the next message waits (0: no limit).' },
  { name: 'minConnectionRecoveryInSec', type: 'integer', default: 2, min: 0,
    description: 'First wait before reconnecting the receiver after a connection failure.' },
  { name: 'maxConnectionRecoveryInSec', type: 'integer', default: 300, min: 0,
    description: 'Longest wait between receiver reconnect attempts (the wait doubles from the minimum).' },
  { name: 'maxActiveMessages', type: 'integer', default: 1, min: 1, binding: 'input',
    description: 'Messages locked at once by this sidecar, at most.' },
  { name: 'maxConcurrentHandlers', type: 'integer', default: 1, binding: 'input',
    description: 'Handler calls to the app at once; 0 (or less) = no limit of its own, as in Dapr.' },
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
  { name: 'handlerTimeoutInSec', type: 'integer', default: 0,
    description: "Read by Dapr's Service Bus pub/sub only: the binding (daprd's as qscale's) never times out a handler." },
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
  /** The connection string as given (secret); '' with Azure AD. */
  connectionString: string;
  /** Its parts; with Azure AD, the namespace alone (no key, no emulator). */
  connection: ConnectionParts;
  /** namespaceName: authenticate with Azure AD instead of a shared access key. */
  azureAd: AzureAdSettings | undefined;
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
  publishMaxRetries: number;
  publishInitialRetryIntervalMs: number;
  redelivery: RedeliveryPolicy;
  create: QueueCreationProperties;
  /** Metadata accepted as daprd accepts it but with no effect here either: one line each, logged once. */
  notices: string[];
}

export function componentContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseServiceBusComponent(c: ResolvedComponent): ServiceBusSettings {
  const ctx = componentContext(c);
  const m = serviceBusMetadata.parse(withoutTtl(c.metadata), ctx);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${ctx.subject}: ${message}`, { ...ctx.where(field), field });
  const { connection: parts, azureAd } = serviceBusAuth(m, fail);
  const queueName = m.queueName.trim().toLowerCase();
  if (parts.entityPath !== undefined && parts.entityPath.toLowerCase() !== queueName) {
    throw fail(`the connection string's EntityPath '${parts.entityPath}' is not queueName '${queueName}'`, 'queueName');
  }
  const defaultMessageTtlSec = serviceBusChecks(m, c.metadata, fail);
  const notices: string[] = [];
  if (m.handlerTimeoutInSec !== 0) {
    const w = ctx.where('handlerTimeoutInSec');
    notices.push(`${w.file}:${w.line}: ${ctx.subject}: handlerTimeoutInSec has no effect on a binding: daprd reads it for the Service Bus pub/sub only, so a slow handler keeps its message (its lock renewed) until it answers`);
  }
  return {
    connectionString: m.connectionString ?? '',
    connection: parts,
    azureAd,
    queueName,
    maxRetriableErrorsPerSec: m.maxRetriableErrorsPerSec,
    minConnectionRecoveryMs: m.minConnectionRecoveryInSec * 1000,
    maxConnectionRecoveryMs: m.maxConnectionRecoveryInSec * 1000,
    maxActiveMessages: m.maxActiveMessages,
    maxConcurrentHandlers: m.maxConcurrentHandlers,
    lockRenewalMs: m.lockRenewalInSec * 1000,
    timeoutMs: m.timeoutInSec * 1000,
    disableEntityManagement: m.disableEntityManagement,
    publishMaxRetries: m.publishMaxRetries,
    publishInitialRetryIntervalMs: m.publishInitialRetryIntervalInMs,
    redelivery: redeliveryPolicy(m, ctx),
    create: {
      lockDurationSec: m.lockDurationInSec,
      defaultMessageTtlSec,
      maxDeliveryCount: m.maxDeliveryCount,
      autoDeleteOnIdleSec: m.autoDeleteOnIdleInSec === 0 ? undefined : m.autoDeleteOnIdleInSec,
    },
    notices,
  };
}

/**
 * namespaceName as Dapr passes it to the SDK: the namespace's host name (myns.servicebus.windows.net), a port
 * allowed. A bare name has no domain the SDK could reach, so it is refused here rather than at the first connect.
 */
function namespaceParts(ns: string, fail: (message: string, field: string) => ConfigError): ConnectionParts {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d+)?$/.test(ns) || !/[.:]/.test(ns)) {
    throw fail(`metadata 'namespaceName' must be the namespace's fully qualified host name, such as myns.servicebus.windows.net, got '${ns}'`, 'namespaceName');
  }
  return {
    endpoint: `sb://${ns}/`, host: ns, keyName: undefined, key: undefined, signature: undefined, entityPath: undefined,
    emulator: false, withoutEntityPath: '',
  };
}

type Fail = (message: string, field: string) => ConfigError;

/** connectionString, or namespaceName with Azure AD, as daprd reads them for the Service Bus binding and pub/sub alike. */
export function serviceBusAuth(
  m: { connectionString: string | undefined; namespaceName: string | undefined } & AzureAdMetadata, fail: Fail,
): { connection: ConnectionParts; azureAd: AzureAdSettings | undefined } {
  if (m.connectionString !== undefined && m.namespaceName !== undefined) {
    throw fail('connectionString and namespaceName cannot both be specified', 'namespaceName');
  }
  if (m.connectionString !== undefined) {
    const p = parseConnectionString(m.connectionString);
    if (typeof p === 'string') throw fail(`metadata 'connectionString' is not a Service Bus connection string: ${p}`, 'connectionString');
    return { connection: p, azureAd: undefined };
  }
  if (m.namespaceName === undefined) {
    throw fail("missing required metadata 'connectionString' (either connectionString or namespaceName is required)", 'connectionString');
  }
  const connection = namespaceParts(m.namespaceName.trim(), fail);
  try {
    return { connection, azureAd: parseAzureAd(m) };
  } catch (err) {
    if (err instanceof AzureAdSettingError) throw fail(`metadata '${err.field}': ${err.message}`, err.field);
    throw err;
  }
}

/**
 * daprd's checks of the fields the binding and the pub/sub share, and the default message time to live of what they
 * create: defaultMessageTimeToLiveInSec wins; without it, `ttl` / `ttlInSeconds` (a duration or whole seconds), in
 * whole seconds, which must come to more than 0.
 */
export function serviceBusChecks(
  m: { autoDeleteOnIdleInSec: number; minConnectionRecoveryInSec: number; maxConnectionRecoveryInSec: number; defaultMessageTimeToLiveInSec: number | undefined },
  metadata: Readonly<Record<string, string>>, fail: Fail,
): number | undefined {
  if (m.autoDeleteOnIdleInSec !== 0 && m.autoDeleteOnIdleInSec < 300) {
    throw fail(`autoDeleteOnIdleInSec must be 0 (disabled) or at least 300, got ${m.autoDeleteOnIdleInSec}`, 'autoDeleteOnIdleInSec');
  }
  if (m.maxConnectionRecoveryInSec < m.minConnectionRecoveryInSec) {
    throw fail(`maxConnectionRecoveryInSec (${m.maxConnectionRecoveryInSec}) is below minConnectionRecoveryInSec (${m.minConnectionRecoveryInSec})`,
      'maxConnectionRecoveryInSec');
  }
  if (m.defaultMessageTimeToLiveInSec !== undefined) return m.defaultMessageTimeToLiveInSec;
  const ttl = daprTtl(metadata);
  if (ttl === undefined) return undefined;
  if ('error' in ttl) throw fail(`metadata '${ttl.key}' must be ${ttl.error}, got '${ttl.value}'`, ttl.key);
  const sec = Math.trunc(ttl.ms / 1000);
  if (sec <= 0) {
    throw fail(`metadata '${ttl.key}' must come to at least 1 second (Dapr: defaultMessageTimeToLiveInSec must be greater than 0), got '${ttl.value}'`, ttl.key);
  }
  return sec;
}
