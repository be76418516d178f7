/**
 * What real Dapr (1.18) declares about the component types qscale serves or points to: the type names daprd
 * registers, the versions, the metadata fields (from each component's metadata.yaml in dapr/components-contrib) and
 * which fields are required. A compact statement of those facts in qscale's own form; test/cluster/facts.test.ts
 * compares names and required flags with the upstream files where they are at hand.
 *
 * Field lists are written `name`, `name!` (required) or `name=a|b|c` (allowed values). A component must satisfy one
 * of its authentication profiles: every required field of that profile present.
 */

export interface DaprField {
  name: string;
  required: boolean;
  allowed?: readonly string[];
}

export interface DaprProfile {
  title: string;
  fields: readonly DaprField[];
}

export interface DaprComponentFacts {
  /** Every spec.type daprd registers for it (aliases included). */
  types: readonly string[];
  versions: readonly string[];
  /** Its metadata.yaml in dapr/components-contrib. */
  source: string;
  /** For bindings: which directions the component serves. */
  input?: boolean;
  output?: boolean;
  fields: readonly DaprField[];
  profiles: readonly DaprProfile[];
  /** Declared required, yet daprd's component reads an absent value as a default: no error when absent. */
  defaultedInCode?: Readonly<Record<string, string>>;
  /** Not declared in metadata.yaml, yet the component's code reads them: no warning. */
  readByCode?: Readonly<Record<string, string>>;
  /** Fields of readByCode whose values the code checks (allowed values), in the `fields` notation. */
  codeFields?: readonly DaprField[];
}

function fields(spec: string): DaprField[] {
  return spec.split(/\s+/).filter(Boolean).map((token) => {
    const [head, allowed] = token.split('=') as [string, string | undefined];
    const required = head.endsWith('!');
    return { name: required ? head.slice(0, -1) : head, required, ...(allowed ? { allowed: allowed.split('|') } : {}) };
  });
}

const profile = (title: string, spec: string): DaprProfile => ({ title, fields: fields(spec) });

/** components-contrib's built-in "azuread" profile: these fields join the component's own Azure AD fields. */
const AZURE_AD = 'azureTenantId azureClientId azureClientSecret azureCertificate azureCertificateFile azureCertificatePassword azureEnvironment=AzurePublicCloud|AzureChinaCloud|AzureUSGovernmentCloud';

/** Metadata daprd itself reads for every binding (pkg/runtime/processor/binding). */
export const BINDING_RUNTIME_FIELDS: readonly DaprField[] = fields('direction route');
/** Metadata daprd itself reads for every pub/sub (consumerID; topic scoping in pkg/scopes). */
export const PUBSUB_RUNTIME_FIELDS: readonly DaprField[] = fields('consumerID publishingScopes subscriptionScopes allowedTopics protectedTopics');

/**
 * concurrencyMode: read through pubsub.Concurrency (components-contrib pubsub/concurrency.go) by the pub/sub types
 * that call it; an other value fails the component's init ("invalid concurrencyMode").
 */
const CONCURRENCY_MODE = fields('concurrencyMode=parallel|single');
const readsConcurrencyMode = (metadataGo: string): Pick<DaprComponentFacts, 'readByCode' | 'codeFields'> => ({
  readByCode: { concurrencyMode: `${metadataGo} reads it through pubsub.Concurrency (pubsub/concurrency.go)` },
  codeFields: CONCURRENCY_MODE,
});

const SERVICEBUS_COMMON = 'maxRetriableErrorsPerSec minConnectionRecoveryInSec maxConnectionRecoveryInSec maxActiveMessages maxConcurrentHandlers lockRenewalInSec timeoutInSec disableEntityManagement lockDurationInSec autoDeleteOnIdleInSec defaultMessageTimeToLiveInSec maxDeliveryCount handlerTimeoutInSec publishMaxRetries publishInitialRetryIntervalInMs';
const SERVICEBUS_PROFILES = [profile('Connection string', 'connectionString!'), profile('Azure AD', `namespaceName! ${AZURE_AD}`)];

const REDIS_PROFILES = [
  profile('Username and password', 'redisUsername redisPassword sentinelUsername sentinelPassword'),
  profile('OIDC private_key_jwt', 'useOIDC oidcTokenEndpoint! oidcClientID! oidcClientAssertionCert! oidcClientAssertionKey! oidcResource oidcAudience oidcScopes oidcKid oidcCACert redisUsername'),
  profile('Azure AD', `useEntraID enableTLS! ${AZURE_AD}`),
];

export const DAPR_COMPONENTS: readonly DaprComponentFacts[] = [
  {
    types: ['bindings.azure.servicebusqueues', 'bindings.azure.servicebus.queues'],
    versions: ['v1'],
    source: 'bindings/azure/servicebusqueues/metadata.yaml',
    input: true,
    output: true,
    fields: fields(`queueName! ttlInSeconds ${SERVICEBUS_COMMON}`),
    profiles: SERVICEBUS_PROFILES,
  },
  {
    types: ['bindings.rabbitmq'],
    versions: ['v1'],
    source: 'bindings/rabbitmq/metadata.yaml',
    input: true,
    output: true,
    fields: fields('queueName! durable deleteWhenUnused ttl prefetchCount exclusive maxPriority contentType reconnectWaitInSeconds caCert clientCert clientKey externalSasl'),
    profiles: [profile('Connection string', 'host!')],
    readByCode: {
      ttlInSeconds: 'bindings/rabbitmq/rabbitmq.go reads the queue TTL through metadata.TryGetTTL',
      saslExternal: 'bindings/rabbitmq/rabbitmq.go reads it beside externalSasl',
    },
  },
  {
    types: ['secretstores.local.file'],
    versions: ['v1'],
    source: 'secretstores/local/file/metadata.yaml',
    fields: fields('secretsFile! nestedSeparator multiValued'),
    profiles: [],
  },
  {
    types: ['secretstores.local.env'],
    versions: ['v1'],
    source: 'secretstores/local/env/metadata.yaml',
    fields: fields('prefix'),
    profiles: [],
  },
  {
    types: ['pubsub.redis'],
    versions: ['v1'],
    source: 'pubsub/redis/metadata.yaml',
    fields: fields('redisHost! redisPort consumerID enableTLS insecureSkipTLSVerify clientCert clientKey redeliverInterval processingTimeout queueDepth concurrency redisType redisDB redisMaxRetries redisMinRetryInterval redisMaxRetryInterval dialTimeout readTimeout writeTimeout poolSize poolTimeout maxConnAge minIdleConns idleCheckFrequency idleTimeout failover sentinelMasterName maxLenApprox streamTTL'),
    profiles: REDIS_PROFILES,
  },
  {
    types: ['pubsub.jetstream'],
    versions: ['v1'],
    source: 'pubsub/jetstream/metadata.yaml',
    fields: fields('name streamName durableName queueGroupName startSequence startTime flowControl ackWait maxDeliver maxAckPending replicas memoryStorage rateLimit heartbeat deliverPolicy!=all|last|new|sequence|time ackPolicy=explicit|all|none domain apiPrefix concurrency backOff'),
    profiles: [
      profile('Basic Authentication', 'natsURL!'),
      profile('Token Authentication', 'natsURL! token!'),
      profile('JWT Authentication', 'natsURL! jwt! seedKey!'),
      profile('TLS Authentication', 'natsURL! tls_client_cert! tls_client_key!'),
    ],
    defaultedInCode: { deliverPolicy: "pubsub/jetstream/metadata.go reads an empty deliverPolicy as 'all'" },
    ...readsConcurrencyMode('pubsub/jetstream/metadata.go'),
  },
  {
    types: ['pubsub.rabbitmq'],
    versions: ['v1'],
    source: 'pubsub/rabbitmq/metadata.yaml',
    fields: fields('durable publisherConfirm maxLen maxLenBytes concurrency=parallel|single enableDeadLetter prefetchCount exchangeKind=fanout|topic|direct|headers deliveryMode autoAck deletedWhenUnused requeueInFailure reconnectWaitSeconds ttlInSeconds clientName heartBeat publishMessagePropertiesToMetadata'),
    profiles: [
      profile('Connection string', 'connectionString!'),
      profile('RabbitMQ properties', 'hostname protocol username password'),
      profile('Connection string, external SASL and TLS', 'connectionString! caCert! clientCert! clientKey! saslExternal'),
    ],
    ...readsConcurrencyMode('pubsub/rabbitmq/metadata.go'),
  },
  {
    types: ['pubsub.azure.servicebus.queues', 'pubsub.azure.servicebusqueues'],
    versions: ['v1'],
    source: 'pubsub/azure/servicebus/queues/metadata.yaml',
    fields: fields(SERVICEBUS_COMMON),
    profiles: SERVICEBUS_PROFILES,
  },
  {
    types: ['pubsub.azure.servicebus.topics', 'pubsub.azure.servicebus'],
    versions: ['v1'],
    source: 'pubsub/azure/servicebus/topics/metadata.yaml',
    fields: fields(`consumerID ${SERVICEBUS_COMMON}`),
    profiles: SERVICEBUS_PROFILES,
  },
];

export function findDaprComponent(type: string): DaprComponentFacts | undefined {
  return DAPR_COMPONENTS.find((c) => c.types.includes(type));
}

/**
 * Binding types that exist only in qscale, and what to use on a cluster instead. Every `bindings.qscale.*` type of
 * the backend registry has an entry (test/cluster/validate.test.ts checks).
 */
export const QSCALE_ONLY_TYPES: Readonly<Record<string, string>> = {
  'bindings.qscale.embedded':
    'on a cluster use a broker Dapr has, bindings.azure.servicebusqueues or bindings.rabbitmq (`qscale up --embedded` serves those from the embedded queue locally)',
  'bindings.qscale.redis':
    "Dapr's bindings.redis is output-only; for a Redis queue an app reads, use Dapr pub/sub pubsub.redis (the app subscribes to a topic instead of reading a binding), or bindings.rabbitmq / bindings.azure.servicebusqueues",
  'bindings.qscale.nats-jetstream':
    'Dapr has no JetStream binding; use Dapr pub/sub pubsub.jetstream (the app subscribes to a topic instead of reading a binding)',
  'bindings.qscale.postgresql':
    "Dapr has no PostgreSQL input binding (bindings.postgresql is output-only) and no PostgreSQL pub/sub; use bindings.rabbitmq or bindings.azure.servicebusqueues",
  'pubsub.qscale.embedded':
    'use a pub/sub Dapr has, pubsub.redis, pubsub.rabbitmq, pubsub.jetstream or pubsub.azure.servicebus.topics, keeping the topics (`qscale up --embedded` serves those from the embedded queue locally)',
};

/** KEDA trigger types that exist only in qscale, with the way out. */
export const QSCALE_ONLY_TRIGGERS: Readonly<Record<string, string>> = {
  'qscale-embedded': "use the broker's own KEDA scaler: azure-servicebus, rabbitmq, redis-streams, postgresql or nats-jetstream",
};
