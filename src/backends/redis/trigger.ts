/**
 * KEDA's `redis-streams` trigger, read from the same stream and group the backend uses. As in KEDA: with
 * consumerGroup and lagCount, the metric is the group's lag (XINFO GROUPS, Redis 7 or later); with consumerGroup
 * alone, its pending entries (XPENDING); without consumerGroup, the stream length (XLEN) — lagCount without a
 * consumerGroup is not used. Since qscale deletes acked entries, streamLength is the whole queue (ready + in flight).
 * A stream that does not exist reads 0 for length and lag, as KEDA reads it (said once: a misspelt name would
 * otherwise look like an idle queue); pending entries of a missing stream or group are an error, as in KEDA.
 */
import type { Redis } from 'ioredis';
import { errorMessage } from '../../errors.js';
import { createLogger } from '../../util/log.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerConnection, boundedRead } from '../trigger-support.js';
import { defineTriggerMetadata, parseGoBool, positiveTarget, triggerError } from '../trigger-metadata.js';
import type { MetricAndActivity, MetricType, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { connectRedis, describeRedisError, describeTarget, type RedisTarget } from './connection.js';

const CONNECTION = ['triggerMetadata', 'authParams', 'resolvedEnv'] as const;
const CREDENTIALS = ['triggerMetadata', 'resolvedEnv', 'authParams'] as const;

export const redisStreamsTriggerMetadata = defineTriggerMetadata([
  { name: 'address', aliases: ['addresses'], type: 'string', from: CONNECTION,
    description: 'host:port (a comma-separated list: the first is used), usually addressFromEnv; or host and port.' },
  { name: 'host', aliases: ['hosts'], type: 'string', from: CREDENTIALS, description: 'Redis host(s), with port(s).' },
  { name: 'port', aliases: ['ports'], type: 'string', from: CREDENTIALS, description: 'Redis port(s), with host(s).' },
  { name: 'username', type: 'string', from: CREDENTIALS, description: 'ACL user.' },
  { name: 'password', type: 'string', from: CREDENTIALS, sensitive: true, description: 'Password.' },
  { name: 'databaseIndex', type: 'int', description: 'Database index (default 0).' },
  { name: 'enableTLS', type: 'string', description: 'true or false (Go ParseBool): connect with TLS. Or tls in the TriggerAuthentication.' },
  { name: 'tls', type: 'string', from: ['authParams'], description: 'enable or disable: connect with TLS.' },
  { name: 'unsafeSsl', type: 'bool', default: 'false', description: 'Skip verifying the server\'s certificate.' },
  { name: 'cert', aliases: ['Cert'], type: 'string', from: ['authParams'], sensitive: true, description: 'PEM client certificate.' },
  { name: 'key', type: 'string', from: ['authParams'], sensitive: true, description: 'PEM client key.' },
  { name: 'keyPassword', type: 'string', from: ['authParams'], sensitive: true, description: 'Decrypts key.' },
  { name: 'ca', type: 'string', from: ['authParams'], sensitive: true, description: 'PEM CA to trust.' },
  { name: 'stream', type: 'string', required: true, description: 'The stream (the queue).' },
  { name: 'consumerGroup', type: 'string', description: 'Consumer group: enables pendingEntriesCount and lagCount.' },
  { name: 'pendingEntriesCount', type: 'int', default: '5', description: 'Target pending entries per replica (with consumerGroup).' },
  { name: 'streamLength', type: 'int', default: '5', description: 'Target stream length per replica (without consumerGroup).' },
  { name: 'lagCount', type: 'int', description: 'Target lag per replica (with consumerGroup; ignored without one, as in KEDA).' },
  { name: 'activationLagCount', type: 'int', default: '0', description: 'Active when the metric is strictly above this.' },
] as const);

type Measure = 'lag' | 'pending' | 'length';

export interface RedisStreamsSettings extends QueueTriggerParams {
  measure: Measure;
  group: string | undefined;
  conn: RedisTarget;
}

const list = (v: string | undefined): string[] => (v === undefined ? [] : v.split(',').map((x) => x.trim()));

/** host:port as go-redis dials it ("" host is localhost); undefined when it can never be dialled. */
function hostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function parseRedisStreamsTrigger(trigger: ResolvedTrigger): RedisStreamsSettings {
  const md = redisStreamsTriggerMetadata.parse(trigger);
  // KEDA's validateRedisAddress: hosts and ports pair up into addresses, after any address given.
  const addresses = list(md.address);
  const hosts = list(md.host);
  const ports = list(md.port);
  if (hosts.length > 0 && ports.length > 0) {
    if (hosts.length !== ports.length) throw triggerError(trigger, `host gives ${hosts.length} host(s) and port ${ports.length} port(s): they must pair up`, 'port');
    hosts.forEach((h, i) => addresses.push(h.includes(':') ? `[${h}]:${ports[i]}` : `${h}:${ports[i]}`));
  }
  const first = addresses[0];
  if (first === undefined || first === '') {
    throw triggerError(
      trigger,
      md.host !== undefined ? 'host needs port (KEDA joins them into an address; a host alone gives none)' : md.port !== undefined ? 'port needs host' : 'no address given: give address (or addressFromEnv), or host and port',
      md.host !== undefined ? 'host' : md.port !== undefined ? 'port' : 'address',
    );
  }
  // KEDA's SetEnableTLS.
  if (md.enableTLS !== undefined && md.tls !== undefined) throw triggerError(trigger, 'TLS is set both by enableTLS and by the TriggerAuthentication\'s tls: give one', 'enableTLS');
  let tls = false;
  if (md.enableTLS !== undefined) {
    const b = parseGoBool(md.enableTLS);
    if (b === undefined) {
      throw triggerError(trigger, `metadata 'enableTLS' must be true or false (KEDA reads it with Go's ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got '${md.enableTLS}'`, 'enableTLS');
    }
    tls = b;
  }
  if (md.tls !== undefined) {
    if (md.tls !== 'enable' && md.tls !== 'disable') throw triggerError(trigger, `TriggerAuthentication parameter 'tls' must be enable or disable, got '${md.tls}'`, 'tls');
    tls = md.tls === 'enable';
  }
  let measure: Measure = 'length';
  let target = md.streamLength;
  let targetField = 'streamLength';
  if (md.consumerGroup !== undefined) {
    if (md.lagCount !== undefined && md.lagCount !== 0) {
      measure = 'lag';
      target = md.lagCount;
      targetField = 'lagCount';
    } else {
      measure = 'pending';
      target = md.pendingEntriesCount;
      targetField = 'pendingEntriesCount';
    }
  }
  positiveTarget(trigger, target, targetField);
  // What KEDA parses but can never dial, or qscale cannot apply: refused now, with the reason.
  const hp = hostPort(first);
  if (!hp) {
    throw triggerError(trigger, `the address must be host:port such as 127.0.0.1:6379 (go-redis dials nothing else), got '${first}'`, md.address !== undefined ? 'address' : 'host');
  }
  if (tls && (md.ca !== undefined || md.cert !== undefined || md.key !== undefined || md.unsafeSsl)) {
    throw triggerError(trigger, 'TLS with ca, cert, key or unsafeSsl is not supported by qscale yet: use enableTLS with a certificate the system trusts', md.unsafeSsl ? 'unsafeSsl' : 'tls');
  }
  return {
    queueName: md.stream,
    target,
    activationTarget: md.activationLagCount,
    measure,
    group: md.consumerGroup,
    conn: { ...hp, username: md.username, password: md.password, db: md.databaseIndex ?? 0, tls, reconnectWaitMs: 1000 },
  };
}

/** KEDA's metric name: s<index>-redis-streams-<stream>, with / . : % ( ) made dashes. */
export function redisStreamsMetricName(index: number, stream: string): string {
  return `s${index}-` + `redis-streams-${stream}`.replace(/[/.:%()]/g, '-');
}

/** KEDA's lag read: XINFO GROUPS' lag (-1 when Redis cannot tell, as go-redis reads NULL); no group yet: the length. */
async function readLag(c: Redis, stream: string, group: string): Promise<{ value: number; missing: boolean }> {
  const info = String(await c.info('server'));
  const version = /^redis_version:(\d+)/m.exec(info)?.[1];
  if (version === undefined) throw new Error('could not find the Redis version (INFO server)');
  if (Number(version) < 7) throw new Error(`Redis 7 or later is needed for lagCount (XINFO GROUPS lag), this server is ${version}`);
  let groups: unknown;
  try {
    groups = await c.call('XINFO', 'GROUPS', stream);
  } catch (err) {
    if (/^ERR no such key/.test(errorMessage(err))) return { value: 0, missing: true };
    throw err;
  }
  for (const g of Array.isArray(groups) ? (groups as unknown[]) : []) {
    if (!Array.isArray(g)) continue;
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
    if (String(fields.get('name')) !== group) continue;
    const lag = fields.get('lag');
    return { value: lag === null || lag === undefined ? -1 : Number(lag), missing: false };
  }
  return { value: await c.xlen(stream), missing: false };
}

export interface RedisStreamsScalerOptions {
  /** Where the one notice about a stream that does not exist goes (default: the supervisor's log, as a warning). */
  notify?: (line: string) => void;
}

class RedisStreamsScaler implements Scaler {
  readonly metricName: string;
  readonly metricType: MetricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly link: TriggerConnection<Redis>;

  private noticed = false;

  constructor(
    private readonly trigger: ResolvedTrigger,
    private readonly s: RedisStreamsSettings,
    private readonly opts: RedisStreamsScalerOptions = {},
  ) {
    this.metricName = redisStreamsMetricName(trigger.index, s.queueName);
    this.metricType = trigger.metricType;
    this.target = s.target;
    this.activationTarget = s.activationTarget;
    this.describes =
      s.measure === 'lag'
        ? `entries of stream ${s.queueName} not yet delivered to group ${s.group ?? ''} (lag)`
        : s.measure === 'pending'
          ? `entries of stream ${s.queueName} delivered to group ${s.group ?? ''} and not acked (pending)`
          : `entries in stream ${s.queueName} (XLEN: ready + in flight, acked entries are deleted)`;
    this.link = new TriggerConnection(
      trigger.subject,
      () => connectRedis(this.s.conn, TRIGGER_READ_TIMEOUT_MS, 'qscale-keda'),
      async (c) => {
        c.disconnect();
      },
    );
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    const value = await boundedRead(() => this.read(), {
      subject: this.trigger.subject,
      what: `stream '${this.s.queueName}'`,
      where: describeTarget(this.s.conn),
      describe: (err) => describeRedisError(err, this.s.conn.password) || errorMessage(err),
      // A connection whose commands hang (ioredis queues them while it reconnects) is dropped; the next read dials anew.
      onTimeout: () => this.link.reset(),
    });
    return { value, active: value > this.activationTarget };
  }

  private async read(): Promise<number> {
    const c = await this.link.get();
    const stream = this.s.queueName;
    if (this.s.measure === 'pending') {
      // XPENDING's summary; a stream or group that does not exist is Redis' NOGROUP error, as KEDA reports it.
      const summary = (await c.call('XPENDING', stream, this.s.group ?? '')) as unknown[];
      return Number(summary[0] ?? 0);
    }
    let value: number;
    let missing: boolean;
    if (this.s.measure === 'lag') ({ value, missing } = await readLag(c, stream, this.s.group ?? ''));
    else {
      value = await c.xlen(stream);
      missing = value === 0 && (await c.exists(stream)) === 0;
    }
    if (missing) this.notice();
    return value;
  }

  private notice(): void {
    if (this.noticed) return;
    this.noticed = true;
    const line =
      `${this.trigger.subject}: stream '${this.s.queueName}' does not exist at ${describeTarget(this.s.conn)}; it reads as 0, as KEDA reads it ` +
      '(the binding creates it when it starts: check the stream name if it never appears)';
    if (this.opts.notify) this.opts.notify(line);
    else createLogger('supervisor').warn(line);
  }

  /** A blocking XREAD on its own connection: Redis itself says when an entry lands. */
  watchArrivals(onArrival: () => void): () => void {
    let stopped = false;
    let watcher: Redis | undefined;
    const loop = async (): Promise<void> => {
      // From the newest entry's id, not '$': '$' anew on each call would miss entries added between two calls.
      let lastId: string | undefined;
      while (!stopped) {
        try {
          watcher ??= await connectRedis(this.s.conn, TRIGGER_READ_TIMEOUT_MS, 'qscale-keda:watch');
          if (stopped) {
            watcher.disconnect(); // connected after stop(): nobody else will close it
            break;
          }
          if (lastId === undefined) {
            const newest = (await watcher.call('XREVRANGE', this.s.queueName, '+', '-', 'COUNT', '1')) as unknown[][];
            lastId = newest[0]?.[0] !== undefined ? String(newest[0][0]) : '0-0';
          }
          const reply = (await watcher.call('XREAD', 'COUNT', '1', 'BLOCK', '5000', 'STREAMS', this.s.queueName, lastId)) as unknown;
          const entries = Array.isArray(reply) ? ((reply as unknown[][])[0]?.[1] as unknown[][] | undefined) : undefined;
          const id = entries?.[0]?.[0];
          if (id !== undefined) {
            lastId = String(id);
            onArrival();
          }
        } catch {
          if (stopped) break;
          watcher?.disconnect();
          watcher = undefined;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    void loop();
    return () => {
      stopped = true;
      watcher?.disconnect();
    };
  }

  async close(): Promise<void> {
    await this.link.close();
  }
}

export function createRedisStreamsScaler(trigger: ResolvedTrigger, opts: RedisStreamsScalerOptions = {}): Scaler {
  return new RedisStreamsScaler(trigger, parseRedisStreamsTrigger(trigger), opts);
}

export const redisStreamsTrigger: TriggerDefinition = {
  type: 'redis-streams',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parseRedisStreamsTrigger(trigger);
    return { queueName, target, activationTarget };
  },
  subscriptionRef(trigger) {
    const { queueName, group } = parseRedisStreamsTrigger(trigger);
    return { pubsubType: 'pubsub.redis', stream: queueName, ...(group !== undefined ? { consumerGroup: group } : {}) };
  },
  create(trigger) {
    return createRedisStreamsScaler(trigger);
  },
};
