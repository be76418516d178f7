/**
 * bindings.qscale.redis metadata. A qscale binding type (Dapr has no Redis queue binding with consumer groups), with
 * Dapr's Redis connection field names (redisHost, redisPassword, ...) so a Dapr user recognises them.
 */
import { defineMetadata, type MetadataContext } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import { redeliveryFields, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';
import type { ResolvedComponent } from '../types.js';

export const REDIS_TYPE = 'bindings.qscale.redis';

export const redisMetadata = defineMetadata([
  { name: 'redisHost', type: 'string', required: true, aliases: ['host', 'address'],
    description: 'host:port of the Redis server, e.g. 127.0.0.1:6379.' },
  { name: 'redisUsername', type: 'string', aliases: ['username'], description: 'ACL user (Redis 6+).' },
  { name: 'redisPassword', type: 'string', sensitive: true, aliases: ['password'], description: 'Password.' },
  { name: 'redisDB', type: 'integer', default: 0, min: 0, aliases: ['databaseIndex'], description: 'Database index.' },
  { name: 'enableTLS', type: 'boolean', default: false, description: 'Connect with TLS.' },
  { name: 'queueName', type: 'string', required: true, aliases: ['stream'], description: 'The stream key that is the queue.' },
  { name: 'consumerGroup', type: 'string', default: 'qscale',
    description: 'Consumer group all replicas share (what KEDA\'s redis-streams trigger names consumerGroup).' },
  { name: 'maxDeliveryCount', type: 'integer', default: 10, min: 1,
    description: 'Deliveries before a failing message moves to the dead-letter stream.' },
  { name: 'deadLetterQueue', type: 'string', description: "Dead-letter stream. Default '<queueName>:dlq'." },
  { name: 'visibilityTimeoutInSeconds', type: 'integer', default: 30, min: 1,
    description: 'A message held this long by a consumer that stopped renewing it (crashed) is given to another.' },
  { name: 'readAheadCount', type: 'integer', default: 16, min: 0, max: 1000,
    description: 'Entries a receiver reads beyond its free handler slots and keeps ready, so a finished handler gets its next message at once (0: off).' },
  { name: 'reconnectWaitInSeconds', type: 'number', default: 1, min: 0,
    description: 'Seconds between reconnect attempts after the connection dropped.' },
  ...redeliveryFields,
] as const);

export interface RedisSettings {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
  stream: string;
  group: string;
  maxDeliveryCount: number;
  deadLetterStream: string;
  visibilityMs: number;
  /** Entries read beyond the free handler slots (0: none). */
  readAhead: number;
  reconnectWaitMs: number;
  redelivery: RedeliveryPolicy;
}

export function componentContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

/** host:port (port 6379 when absent); an IPv6 address goes in brackets. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const t = text.trim().replace(/^rediss?:\/\//, '');
  const m = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d{1,5}))?$/.exec(t);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : 6379;
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

export function parseRedisComponent(c: ResolvedComponent): RedisSettings {
  const ctx = componentContext(c);
  const m = redisMetadata.parse(c.metadata, ctx);
  const hp = parseHostPort(m.redisHost);
  if (!hp) {
    throw new ConfigError(`${ctx.subject}: metadata 'redisHost' must be host:port such as 127.0.0.1:6379, got '${m.redisHost}'`, {
      ...ctx.where('redisHost'),
      field: 'redisHost',
    });
  }
  return {
    ...hp,
    username: m.redisUsername,
    password: m.redisPassword,
    db: m.redisDB,
    tls: m.enableTLS,
    stream: m.queueName,
    group: m.consumerGroup,
    maxDeliveryCount: m.maxDeliveryCount,
    deadLetterStream: m.deadLetterQueue ?? `${m.queueName}:dlq`,
    visibilityMs: m.visibilityTimeoutInSeconds * 1000,
    readAhead: m.readAheadCount,
    reconnectWaitMs: m.reconnectWaitInSeconds * 1000,
    redelivery: redeliveryPolicy(m, ctx),
  };
}
