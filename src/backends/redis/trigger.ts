/**
 * KEDA's `redis-streams` trigger, read from the same stream and group the backend uses. As in KEDA: with
 * consumerGroup and lagCount, the metric is the group's lag (entries not yet delivered); with consumerGroup alone,
 * its pending entries (delivered, not acked); without consumerGroup, the stream length. Since qscale deletes acked
 * entries, streamLength is the whole queue (ready + in flight) — the metric the examples use.
 */
import type { Redis } from 'ioredis';
import { defineMetadata } from '../../components/metadata.js';
import { ConfigError, errorMessage } from '../../errors.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerConnection, boundedRead } from '../trigger-support.js';
import type { MetricAndActivity, MetricType, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { connectRedis, describeRedisError, describeTarget, type RedisTarget } from './connection.js';
import { groupCounts } from './stream.js';
import { parseHostPort } from './metadata.js';

export const redisStreamsTriggerMetadata = defineMetadata([
  { name: 'address', type: 'string', description: 'host:port (usually addressFromEnv); or host and port.' },
  { name: 'host', type: 'string', description: 'Redis host (with port).' },
  { name: 'port', type: 'integer', min: 1, max: 65535, description: 'Redis port (with host).' },
  { name: 'username', type: 'string', description: 'ACL user (TriggerAuthentication).' },
  { name: 'password', type: 'string', sensitive: true, description: 'Password (TriggerAuthentication).' },
  { name: 'databaseIndex', type: 'integer', default: 0, min: 0, description: 'Database index.' },
  { name: 'enableTLS', type: 'boolean', default: false, description: 'Connect with TLS.' },
  { name: 'stream', type: 'string', required: true, description: 'The stream (the queue).' },
  { name: 'consumerGroup', type: 'string', description: 'Consumer group: enables pendingEntriesCount and lagCount.' },
  { name: 'pendingEntriesCount', type: 'number', default: 5, description: 'Target pending entries per replica.' },
  { name: 'streamLength', type: 'number', default: 5, description: 'Target stream length per replica.' },
  { name: 'lagCount', type: 'number', description: 'Target lag per replica (needs consumerGroup).' },
  { name: 'activationLagCount', type: 'number', default: 0, description: 'Active when the metric is strictly above this.' },
] as const);

type Measure = 'lag' | 'pending' | 'length';

interface RedisStreamsSettings extends QueueTriggerParams {
  measure: Measure;
  group: string | undefined;
  target: number;
  conn: RedisTarget;
}

export function parseRedisStreamsTrigger(trigger: ResolvedTrigger): RedisStreamsSettings {
  const md = redisStreamsTriggerMetadata.parse(trigger.metadata, trigger);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), field });
  const addressText = md.address ?? (md.host !== undefined ? (md.port !== undefined ? `${md.host}:${md.port}` : md.host) : undefined);
  if (addressText === undefined) throw fail('no address given (give address / addressFromEnv, or host and port)', 'address');
  const hp = parseHostPort(addressText);
  if (!hp) throw fail(`address must be host:port such as 127.0.0.1:6379, got '${addressText}'`, md.address !== undefined ? 'address' : 'host');
  let measure: Measure = 'length';
  let target = md.streamLength;
  if (md.consumerGroup !== undefined) {
    if (md.lagCount !== undefined) {
      measure = 'lag';
      target = md.lagCount;
    } else {
      measure = 'pending';
      target = md.pendingEntriesCount;
    }
  } else if (md.lagCount !== undefined) {
    throw fail('lagCount needs consumerGroup', 'lagCount');
  }
  if (!(target > 0)) throw fail(`the target must be a number > 0, got ${target}`, measure === 'lag' ? 'lagCount' : measure === 'pending' ? 'pendingEntriesCount' : 'streamLength');
  return {
    queueName: md.stream,
    target,
    activationTarget: md.activationLagCount,
    measure,
    group: md.consumerGroup,
    conn: { ...hp, username: md.username, password: md.password, db: md.databaseIndex, tls: md.enableTLS, reconnectWaitMs: 1000 },
  };
}

/** KEDA's metric name: s<index>-redis-streams-<stream>, with characters a metric name cannot hold replaced. */
export function redisStreamsMetricName(index: number, stream: string): string {
  return `s${index}-` + `redis-streams-${stream}`.replace(/[/.:%]/g, '-');
}

class RedisStreamsScaler implements Scaler {
  readonly metricName: string;
  readonly metricType: MetricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly link: TriggerConnection<Redis>;

  constructor(private readonly trigger: ResolvedTrigger, private readonly s: RedisStreamsSettings) {
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
    let value: number;
    if (this.s.measure === 'length') value = await c.xlen(this.s.queueName);
    else {
      const g = await groupCounts(c, this.s.queueName, this.s.group ?? '');
      value = this.s.measure === 'lag' ? g.lag : g.pending;
    }
    // Redis answers 0 for a stream that does not exist: a wrong name must not read as an empty queue.
    if (value === 0 && (await c.exists(this.s.queueName)) === 0) {
      throw new Error(`the stream does not exist (the binding creates it, with its consumer group, when it starts)`);
    }
    return value;
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

export const redisStreamsTrigger: TriggerDefinition = {
  type: 'redis-streams',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parseRedisStreamsTrigger(trigger);
    return { queueName, target, activationTarget };
  },
  create(trigger) {
    return new RedisStreamsScaler(trigger, parseRedisStreamsTrigger(trigger));
  },
};
