/**
 * pubsub.redis metadata: every field of Dapr's metadata.yaml (components-contrib pubsub/redis), with what daprd's code
 * does where it differs from that file, and for each field whether qscale uses it, accepts and ignores it, or refuses
 * it (named, with the way out). docs/pubsub-brokers.md lists the same table.
 */
import { defineMetadata, type FieldSpec, type MetadataContext } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import type { ResolvedComponent } from '../types.js';
import type { RedisTarget } from './connection.js';
import { componentContext, parseHostPort } from './metadata.js';

export const REDIS_PUBSUB_TYPE = 'pubsub.redis';

/** A client tuning field of go-redis: qscale reconnects forever and bounds each call by initTimeout instead. */
const TUNING = 'Accepted and ignored by qscale (a go-redis client setting).';
const SENTINEL = 'Accepted and ignored: only read with failover, which qscale refuses.';
const OIDC = 'Accepted and ignored: only read with useOIDC, which qscale refuses.';

export const redisPubSubMetadata = defineMetadata([
  { name: 'redisHost', type: 'string', required: true, description: 'host:port of the Redis server (port 6379 when absent).' },
  { name: 'redisPort', type: 'string', description: 'Port, when redisHost has none; must match the one in redisHost otherwise.' },
  { name: 'redisUsername', type: 'string', default: '', description: 'ACL user (Redis 6+).' },
  { name: 'redisPassword', type: 'string', default: '', sensitive: true, description: 'Password.' },
  { name: 'redisDB', type: 'integer', default: 0, min: 0, description: 'Database index.' },
  { name: 'redisType', type: 'string', default: 'node', enum: ['node', 'cluster'], description: "Refused when 'cluster': qscale connects to one node." },
  { name: 'enableTLS', type: 'boolean', default: false, description: 'Connect with TLS.' },
  { name: 'insecureSkipTLSVerify', type: 'boolean', default: false, description: 'Refused when true: qscale always verifies the certificate.' },
  { name: 'clientCert', type: 'string', description: 'Refused when set: qscale has no client-certificate TLS for Redis.' },
  { name: 'clientKey', type: 'string', sensitive: true, description: 'Refused when set (see clientCert).' },
  { name: 'consumerID', type: 'string',
    description: "The consumer group of this app on every topic (stream), and its consumer name in the group. Default: the app id." },
  // daprd's code starts from redeliverInterval 15s and processingTimeout 60s; metadata.yaml has the two swapped.
  { name: 'redeliverInterval', type: 'duration', default: '15s',
    description: 'How often pending entries are checked for redelivery; a bare number is milliseconds; 0 turns redelivery off.' },
  { name: 'processingTimeout', type: 'duration', default: '60s',
    description: 'How long an entry stays pending before another delivery; a bare number is milliseconds; 0 turns redelivery off.' },
  { name: 'queueDepth', type: 'integer', default: 100, min: 1,
    description: 'Entries read at once (XREADGROUP COUNT) and held by a replica besides those in handlers.' },
  { name: 'concurrency', type: 'integer', default: 10, min: 1, description: 'Handlers at once (the sidecar\'s limit applies too; the lower wins).' },
  { name: 'maxLenApprox', type: 'integer', min: 0, description: 'XADD MAXLEN ~: the stream is trimmed to about this many entries.' },
  { name: 'streamTTL', type: 'duration', description: 'XADD MINID ~: entries older than this are trimmed (maxLenApprox wins when both are set).' },
  { name: 'failover', type: 'boolean', default: false, description: 'Refused when true: qscale connects to one Redis node, not through Sentinel.' },
  { name: 'sentinelMasterName', type: 'string', description: SENTINEL },
  { name: 'sentinelUsername', type: 'string', default: '', description: SENTINEL },
  { name: 'sentinelPassword', type: 'string', default: '', sensitive: true, description: SENTINEL },
  { name: 'useEntraID', type: 'boolean', default: false, description: 'Refused when true: qscale has no Entra ID login for Redis.' },
  { name: 'useOIDC', type: 'boolean', default: false, description: 'Refused when true: qscale has no OIDC login for Redis.' },
  { name: 'oidcTokenEndpoint', type: 'string', description: OIDC },
  { name: 'oidcClientID', type: 'string', description: OIDC },
  { name: 'oidcClientAssertionCert', type: 'string', description: OIDC },
  { name: 'oidcClientAssertionKey', type: 'string', sensitive: true, description: OIDC },
  { name: 'oidcResource', type: 'string', description: OIDC },
  { name: 'oidcAudience', type: 'string', description: OIDC },
  { name: 'oidcScopes', type: 'string', default: 'openid', description: OIDC },
  { name: 'oidcKid', type: 'string', description: OIDC },
  { name: 'oidcCACert', type: 'string', description: OIDC },
  // Client tuning: go-redis durations read a bare number as milliseconds and -1 as "off"; kept as text, never parsed.
  { name: 'redisMaxRetries', type: 'string', description: TUNING },
  { name: 'redisMinRetryInterval', type: 'string', default: '8ms', description: TUNING },
  { name: 'redisMaxRetryInterval', type: 'string', default: '512ms', description: TUNING },
  { name: 'dialTimeout', type: 'string', default: '5s', description: TUNING },
  { name: 'readTimeout', type: 'string', default: '3', description: TUNING },
  { name: 'writeTimeout', type: 'string', description: TUNING },
  { name: 'poolSize', type: 'string', description: TUNING },
  { name: 'poolTimeout', type: 'string', description: TUNING },
  { name: 'maxConnAge', type: 'string', description: TUNING },
  { name: 'minIdleConns', type: 'string', default: '0', description: TUNING },
  { name: 'idleCheckFrequency', type: 'string', default: '1m', description: TUNING },
  { name: 'idleTimeout', type: 'string', default: '5m', description: TUNING },
] as const);

/** What qscale does with a declared field: uses it, accepts and ignores it, or refuses it when set (true). */
export type FieldUse = 'used' | 'ignored' | 'refused';

const IGNORED_NOTES = new Set([TUNING, SENTINEL, OIDC]);
const REFUSED = new Set(['redisType', 'insecureSkipTLSVerify', 'clientCert', 'clientKey', 'failover', 'useEntraID', 'useOIDC']);

export function redisPubSubFieldUse(f: FieldSpec): FieldUse {
  if (IGNORED_NOTES.has(f.description)) return 'ignored';
  return REFUSED.has(f.name) ? 'refused' : 'used';
}

/** Where to connect (a RedisTarget but for the reconnect wait, which daprd's metadata does not set), and the rest. */
export interface RedisPubSubSettings extends Omit<RedisTarget, 'reconnectWaitMs'> {
  /** Undefined: the app id. */
  consumerID: string | undefined;
  redeliverIntervalMs: number;
  processingTimeoutMs: number;
  queueDepth: number;
  concurrency: number;
  maxLenApprox: number | undefined;
  streamTtlMs: number | undefined;
}

/** daprd's Redis settings read a bare number in a duration as milliseconds, where qscale's durations read seconds. */
const MILLIS_WHEN_BARE = ['redeliverInterval', 'processingTimeout', 'streamTTL'];

function withLegacyMillis(raw: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    const bareMillis = MILLIS_WHEN_BARE.some((n) => n.toLowerCase() === k.toLowerCase()) && /^\s*\d+\s*$/.test(v);
    out[k] = bareMillis ? `${v.trim()}ms` : v;
  }
  return out;
}

function refuse(ctx: MetadataContext, field: string, why: string): never {
  throw new ConfigError(`${ctx.subject}: metadata '${field}' ${why}`, { ...ctx.where(field), field });
}

export function parseRedisPubSub(c: ResolvedComponent): RedisPubSubSettings {
  const ctx = componentContext(c);
  const m = redisPubSubMetadata.parse(withLegacyMillis(c.metadata), ctx);
  if (m.redisType === 'cluster') refuse(ctx, 'redisType', "'cluster' is not supported: qscale connects to one Redis node (use 'node', or a single node's address)");
  if (m.failover) refuse(ctx, 'failover', 'true is not supported: qscale connects to one Redis node, not through Sentinel (point redisHost at the master)');
  if (m.useEntraID) refuse(ctx, 'useEntraID', 'true is not supported: qscale has no Entra ID login for Redis (use redisUsername / redisPassword locally)');
  if (m.useOIDC) refuse(ctx, 'useOIDC', 'true is not supported: qscale has no OIDC login for Redis (use redisUsername / redisPassword locally)');
  if (m.insecureSkipTLSVerify) refuse(ctx, 'insecureSkipTLSVerify', 'true is not supported: qscale always verifies the server certificate');
  if (m.clientCert) refuse(ctx, 'clientCert', 'is not supported: qscale has no client-certificate TLS for Redis');
  if (m.clientKey) refuse(ctx, 'clientKey', 'is not supported: qscale has no client-certificate TLS for Redis');
  const hp = parseHostPort(m.redisHost);
  if (!hp || m.redisHost.includes(',')) {
    refuse(ctx, 'redisHost', `must be one host:port such as 127.0.0.1:6379, got '${m.redisHost}'`);
  }
  let port = hp.port;
  if (m.redisPort !== undefined && m.redisPort.trim() !== '') {
    const p = Number(m.redisPort.trim());
    if (!Number.isInteger(p) || p < 1 || p > 65535) refuse(ctx, 'redisPort', `must be a port number, got '${m.redisPort}'`);
    const hostHasPort = /:\d+$/.test(m.redisHost.trim().replace(/^\[[^\]]*\]/, ''));
    if (hostHasPort && p !== hp.port) {
      refuse(ctx, 'redisPort', `is ${p} but redisHost '${m.redisHost}' already has port ${hp.port}: remove one of them (daprd refuses this too)`);
    }
    port = p;
  }
  return {
    host: hp.host,
    port,
    username: m.redisUsername || undefined,
    password: m.redisPassword || undefined,
    db: m.redisDB,
    tls: m.enableTLS,
    consumerID: m.consumerID?.trim() || undefined,
    redeliverIntervalMs: m.redeliverInterval,
    processingTimeoutMs: m.processingTimeout,
    queueDepth: m.queueDepth,
    concurrency: m.concurrency,
    maxLenApprox: m.maxLenApprox || undefined,
    streamTtlMs: m.streamTTL || undefined,
  };
}

/**
 * What daprd would do differently with this component, said once at start: it reads a duration string in
 * redeliverInterval as nothing (only a bare number of milliseconds) and keeps 15s there.
 */
export function redisPubSubNotices(c: ResolvedComponent): string[] {
  const out: string[] = [];
  const key = Object.keys(c.metadata).find((k) => k.toLowerCase() === 'redeliverinterval');
  const v = key === undefined ? undefined : c.metadata[key]?.trim();
  if (v && !/^\d+$/.test(v)) {
    out.push(`metadata 'redeliverInterval' is '${v}': daprd reads only a bare number of milliseconds there and keeps its 15s for anything else; write it in milliseconds for the same behaviour on a cluster`);
  }
  return out;
}
