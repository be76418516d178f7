/**
 * bindings.rabbitmq metadata: Dapr's fields and defaults (components-contrib bindings/rabbitmq), plus qscale's
 * dead-letter and management-API extensions. Declared once: parsing, errors and redaction all come from here.
 */
import { defineMetadata, type MetadataContext } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import { redeliveryFields, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';
import { daprTtl, withoutTtl } from '../dapr-ttl.js';
import type { ResolvedComponent } from '../types.js';

export const RABBITMQ_TYPE = 'bindings.rabbitmq';

export const rabbitmqMetadata = defineMetadata([
  { name: 'host', type: 'string', required: true, sensitive: true,
    description: 'Connection string amqp://[user][:password]@host[:port][/vhost] (or amqps://).' },
  { name: 'queueName', type: 'string', required: true, description: 'RabbitMQ queue name.' },
  { name: 'durable', type: 'boolean', default: false,
    description: 'Declare the queue durable; messages are always published persistent, as Dapr does.' },
  { name: 'deleteWhenUnused', type: 'boolean', default: false, description: 'Declare the queue auto-delete.' },
  { name: 'exclusive', type: 'boolean', default: false, description: 'Declare the queue exclusive to the connection.' },
  // Both read as Dapr reads them (dapr-ttl.ts): a Go duration or whole seconds, `ttl` first.
  { name: 'ttlInSeconds', type: 'integer', min: 0,
    description: 'Queue-level message time to live (x-message-ttl): whole seconds or a duration such as 60s. Omitted: messages never expire.' },
  { name: 'ttl', type: 'duration',
    description: 'Queue-level message time to live as a duration (60s) or whole seconds; wins over ttlInSeconds.' },
  { name: 'prefetchCount', type: 'integer', default: 0, min: 0, binding: 'input',
    description: 'Upper bound on unacked deliveries per consumer; qscale never leases more than its concurrency.' },
  // Dapr's metadata.yaml documents a default of 1, but the binding only declares x-max-priority when the field is
  // given; declaring it otherwise would make the queue incompatible with one daprd created.
  { name: 'maxPriority', type: 'integer', min: 1, max: 255,
    description: 'Declare a priority queue (x-max-priority). Omitted: a plain queue.' },
  { name: 'contentType', type: 'string', default: 'text/plain',
    description: 'Content type of published messages unless the request metadata gives one.' },
  { name: 'reconnectWaitInSeconds', type: 'number', default: 5, min: 0,
    description: 'Seconds to wait between reconnect attempts after the connection dropped.' },
  { name: 'caCert', type: 'string', description: 'CA certificate (PEM) for amqps.' },
  { name: 'clientCert', type: 'string', description: 'Client certificate (PEM) for mutual TLS.' },
  { name: 'clientKey', type: 'string', sensitive: true, description: 'Client key (PEM) for mutual TLS.' },
  { name: 'externalSasl', type: 'boolean', default: false, aliases: ['saslExternal'],
    description: 'With TLS, authenticate with SASL EXTERNAL (user from the certificate).' },
  { name: 'maxDeliveryCount', type: 'integer', default: 10, min: 1,
    description: 'qscale: deliveries before a failing message is moved to the dead-letter queue.' },
  { name: 'deadLetterQueue', type: 'string',
    description: "qscale: the dead-letter queue. Default '<queueName>-dlq'." },
  { name: 'managementUrl', type: 'string', sensitive: true,
    description: 'qscale: management API base URL (http://user:pass@host:15672) used to count unacked messages. ' +
      'Default: derived from host; when unreachable only this process\'s unacked messages are counted.' },
  ...redeliveryFields,
] as const);

export interface RabbitmqSettings {
  url: string;
  queueName: string;
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
  queueTtlMs: number | undefined;
  prefetchCount: number;
  maxPriority: number | undefined;
  contentType: string;
  reconnectWaitMs: number;
  tls: { ca?: string; cert?: string; key?: string; external: boolean };
  maxDeliveryCount: number;
  deadLetterQueue: string;
  managementUrl: string | undefined;
  redelivery: RedeliveryPolicy;
}

export function componentContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseRabbitmqComponent(c: ResolvedComponent): RabbitmqSettings {
  const ctx = componentContext(c);
  const m = rabbitmqMetadata.parse(withoutTtl(c.metadata), ctx);
  const url = checkAmqpUrl(m.host, ctx);
  const ttl = daprTtl(c.metadata);
  if (ttl && 'error' in ttl) throw configError(ctx, ttl.key, `metadata '${ttl.key}' must be ${ttl.error}, got '${ttl.value}'`);
  // Go's Duration / time.Millisecond: whole milliseconds. 0 is declared as is, as Dapr declares it.
  const ttlMs = ttl ? Math.trunc(ttl.ms) : undefined;
  return {
    url,
    queueName: m.queueName,
    durable: m.durable,
    autoDelete: m.deleteWhenUnused,
    exclusive: m.exclusive,
    queueTtlMs: ttlMs,
    prefetchCount: m.prefetchCount,
    maxPriority: m.maxPriority,
    contentType: m.contentType,
    reconnectWaitMs: m.reconnectWaitInSeconds * 1000,
    tls: {
      ...(m.caCert ? { ca: m.caCert } : {}),
      ...(m.clientCert ? { cert: m.clientCert } : {}),
      ...(m.clientKey ? { key: m.clientKey } : {}),
      external: m.externalSasl,
    },
    maxDeliveryCount: m.maxDeliveryCount,
    deadLetterQueue: m.deadLetterQueue ?? `${m.queueName}-dlq`,
    managementUrl: m.managementUrl,
    redelivery: redeliveryPolicy(m, ctx),
  };
}

function checkAmqpUrl(host: string, ctx: MetadataContext): string {
  let u: URL;
  try {
    u = new URL(host);
  } catch {
    throw configError(ctx, 'host', "metadata 'host' must be a URL such as amqp://user:password@host:5672 (value redacted)");
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
    throw configError(ctx, 'host', `metadata 'host' must start with amqp:// or amqps://, got '${u.protocol}//...'`);
  }
  return host;
}

function configError(ctx: MetadataContext, field: string, message: string): ConfigError {
  return new ConfigError(`${ctx.subject}: ${message}`, { ...ctx.where(field), field });
}
