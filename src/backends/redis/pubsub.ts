/**
 * pubsub.redis: Dapr's Redis Streams pub/sub on the keys and fields daprd uses, so an event published here is read by
 * a real daprd and the other way round, and KEDA's redis-streams trigger reads the group daprd would read.
 *
 * - topic = stream key; an app = consumer group named consumerID (default: the app id), made at id 0 with MKSTREAM
 *   (prepare, or subscribe), so entries written before it existed are delivered too. Every replica reads as the
 *   consumer of that same name in the group, as daprd does.
 * - publish: XADD <topic> [MAXLEN ~ maxLenApprox | MINID ~ <now − streamTTL>] * data <bytes> metadata <JSON>.
 * - subscribe: XREADGROUP COUNT queueDepth; at most `concurrency` handlers, and up to queueDepth entries waiting in
 *   the replica beside them, as daprd's worker queue holds them (they count as pending for KEDA). A processed entry is
 *   XACKed and stays in the stream, as with daprd (trim with maxLenApprox or streamTTL). A failed one stays pending:
 *   every redeliverInterval, entries pending longer than processingTimeout are claimed (XAUTOCLAIM) and delivered
 *   again, their deliveryCount the group's delivery counter.
 *
 * Two differences a user can notice, both in docs/pubsub-brokers.md: entries this replica still holds are renewed
 * (daprd cancels a handler at processingTimeout and lets the entry go; qscale cannot cancel a running handler, so it
 * keeps the entry until the handler answers; a replica that dies loses its entries to the others after
 * processingTimeout, as with daprd), and a failed event is left pending until it is processed (daprd 1.17+ acks it
 * once the resiliency policy's retries are spent).
 */
import type { Redis } from 'ioredis';
import { BrokerError, errorMessage } from '../../errors.js';
import type { MessageHandler, MessageMetadata, QueueMessage, ResolvedComponent } from '../types.js';
import { settle } from '../types.js';
import type { MetadataSpec } from '../../components/metadata.js';
import type { PubSub, PubSubContext, PubSubDefinition, SubscribeRequest } from '../../pubsub/types.js';
import type { ReceiveOptions } from '../types.js';
import type { Logger } from '../../util/log.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import { goMarshal } from '../../sidecar/http/go-json.js';
import { sleep } from '../../util/abort.js';
import { Wakeup } from '../../util/wakeup.js';
import { withTimeout } from '../../util/timeout.js';
import { BrokerState } from '../broker-state.js';
import { SEND, bounded, receiveUnreachable, unreachable, type BrokerAddress } from '../unreachable.js';
import { connectRedis, describeRedisError, describeTarget, type RedisTarget } from './connection.js';
import { claimIdle, deliveryCounts, ensureGroup, entryTime, readNew, renew, type StreamEntry } from './stream.js';
import {
  REDIS_PUBSUB_TYPE, parseRedisPubSub, redisPubSubMetadata, redisPubSubNotices, type RedisPubSubSettings,
} from './pubsub-metadata.js';
import { withMetadataTemplates } from '../../components/templates.js';

const BLOCK_MS = 1000;
/** Reconnect wait of every connection (daprd's client settings for it are accepted and ignored). */
const RECONNECT_WAIT_MS = 500;
const MEANWHILE = `qscale reconnects every ${RECONNECT_WAIT_MS} ms`;

interface Held {
  entry: StreamEntry;
  deliveryCount: number;
}

export class RedisPubSub implements PubSub {
  readonly name: string;
  readonly type: string;
  private readonly s: RedisPubSubSettings;
  /** consumerID: the consumer group on every topic and the consumer's name in it. */
  readonly consumerGroup: string;
  private readonly target: RedisTarget;
  private readonly log: Logger;
  private readonly subject: string;
  private readonly where: string;
  private readonly address: BrokerAddress;
  private readonly redactor: Redactor;
  private readonly initTimeoutMs: number;
  private readonly notices: string[];
  private client: Redis | undefined;
  private readonly readers = new Set<Redis>();
  /** Why the main connection's last attempt failed, while it is not ready. */
  private lastError: string | undefined;
  private closed = false;

  constructor(component: ResolvedComponent, ctx: PubSubContext) {
    const c = withMetadataTemplates(component, ctx.appId);
    this.name = c.name;
    this.type = c.type;
    this.s = parseRedisPubSub(c);
    this.consumerGroup = this.s.consumerID ?? ctx.appId;
    this.target = { ...this.s, reconnectWaitMs: RECONNECT_WAIT_MS };
    this.subject = `component ${c.name} (${c.type})`;
    this.where = describeTarget(this.target);
    this.address = { subject: this.subject, broker: 'Redis', where: this.where };
    this.log = ctx.logger.child({ component: c.name });
    this.redactor = redactorFor(redisPubSubMetadata.fields, c.metadata);
    this.initTimeoutMs = c.initTimeoutMs;
    this.notices = redisPubSubNotices(c);
  }

  async init(): Promise<void> {
    for (const n of this.notices) this.log.warn(`${this.subject}: ${n}`);
    if (this.s.maxLenApprox !== undefined && this.s.streamTtlMs !== undefined) {
      this.log.warn(`${this.subject}: maxLenApprox and streamTTL are both set: only maxLenApprox trims the streams, as in daprd`);
    }
    this.client = await this.connect(this.initTimeoutMs, `qscale:${this.name}`);
    this.log.info(`connected to Redis at ${this.where}, consumer group '${this.consumerGroup}'`);
  }

  private async connect(timeoutMs: number, connectionName: string): Promise<Redis> {
    let c: Redis;
    try {
      c = await connectRedis(this.target, timeoutMs, connectionName);
    } catch (err) {
      throw new BrokerError(`${this.subject}: cannot connect to Redis at ${this.where}: ${this.redactor.text(errorMessage(err))}`);
    }
    c.on('error', (err: unknown) => {
      if (c === this.client && c.status !== 'ready') this.lastError = describeRedisError(err, this.redactor);
      this.log.debug(`Redis connection error: ${describeRedisError(err, this.redactor)}`);
    });
    c.on('ready', () => {
      if (c === this.client) this.lastError = undefined;
    });
    return c;
  }

  private get redis(): Redis {
    if (!this.client || this.closed) throw new BrokerError(`${this.subject}: used before init() or after close()`);
    return this.client;
  }

  /** One command of publish / prepare: at once an error while Redis is known to be down, never longer than initTimeout. */
  private async call<T>(doing: string, run: (r: Redis) => Promise<T>): Promise<T> {
    const r = this.redis;
    if (r.status !== 'ready' && this.lastError !== undefined) throw unreachable(this.address, doing, this.lastError, MEANWHILE);
    try {
      return await bounded(this.address, doing, this.initTimeoutMs, run(r));
    } catch (err) {
      if (err instanceof BrokerError) throw err;
      throw new BrokerError(`${this.subject}: cannot ${doing} at ${this.where}: ${describeRedisError(err, this.redactor)}`);
    }
  }

  async publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<void> {
    const trim: string[] = this.s.maxLenApprox !== undefined
      ? ['MAXLEN', '~', String(this.s.maxLenApprox)]
      : this.s.streamTtlMs !== undefined ? ['MINID', '~', `${Date.now() - this.s.streamTtlMs}-1`] : [];
    await this.call(SEND, (r) => r.callBuffer('XADD', topic, ...trim, '*', 'data', data, 'metadata', goMarshal(metadata)));
  }

  async prepare(sub: SubscribeRequest): Promise<void> {
    await this.call(`create consumer group '${this.consumerGroup}' on stream '${sub.topic}'`, (r) => ensureGroup(r, sub.topic, this.consumerGroup));
  }

  async subscribe(sub: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { signal } = options;
    const topic = sub.topic;
    const group = this.consumerGroup;
    const handlers = Math.max(1, Math.min(this.s.concurrency, Math.floor(options.concurrency) || 1));
    const capacity = handlers + this.s.queueDepth;
    const reclaimEveryMs = this.s.processingTimeoutMs > 0 && this.s.redeliverIntervalMs > 0 ? this.s.redeliverIntervalMs : 0;
    const main = this.redis;
    // XREADGROUP BLOCK holds its connection; the loop's other reads go there too, so a stop cuts them all at once.
    const reader = await this.connect(Math.max(this.initTimeoutMs, 5000), `qscale:${this.name}:${topic}`);
    this.readers.add(reader);
    const state = new BrokerState(options.onBrokerState, this.log);
    const describe = (err: unknown): string => describeRedisError(err, this.redactor);
    const unwatch = [reader, main].map((c) => watchOutage(c, this.initTimeoutMs, describe, (cause) => {
      if (!this.closed && !signal.aborted) state.lost(receiveUnreachable(this.address, cause));
    }));
    const waiting: Held[] = [];
    const held = new Map<string, Held>();
    const active = new Set<Promise<void>>();
    const wake = new Wakeup();
    const stop = (): void => {
      wake.poke();
      reader.disconnect();
    };
    signal.addEventListener('abort', stop);
    // Entries this replica holds never look idle, so no sweep (of any replica) takes them while they are worked on.
    const renewer = setInterval(() => {
      if (held.size > 0) renew(main, topic, group, group, [...held.keys()]).catch(() => undefined);
    }, Math.max(200, Math.floor((this.s.processingTimeoutMs || 60_000) / 3)));
    const pump = (): void => {
      while (!signal.aborted && active.size < handlers) {
        const h = waiting.shift();
        if (!h) return;
        const p: Promise<void> = this.handle(topic, h, handler).finally(() => {
          held.delete(h.entry.id);
          active.delete(p);
          pump();
          wake.poke();
        });
        active.add(p);
      }
    };
    const take = (entry: StreamEntry, deliveryCount: number): void => {
      if (held.has(entry.id)) return;
      const h = { entry, deliveryCount };
      held.set(entry.id, h);
      waiting.push(h);
    };
    let groupReady = false;
    let nextSweep = 0;
    try {
      while (!signal.aborted && !this.closed) {
        try {
          if (!groupReady) {
            await ensureGroup(reader, topic, group);
            groupReady = true;
          }
          if (reclaimEveryMs > 0 && Date.now() >= nextSweep) {
            nextSweep = Date.now() + reclaimEveryMs;
            await this.sweep(reader, topic, capacity - held.size, take);
            pump();
          }
          const room = capacity - held.size;
          const untilSweep = reclaimEveryMs > 0 ? Math.max(1, nextSweep - Date.now()) : Infinity;
          if (room <= 0) {
            await wake.wait(untilSweep);
            continue;
          }
          const fresh = await readNew(reader, topic, group, group, Math.min(this.s.queueDepth, room), Math.min(BLOCK_MS, untilSweep));
          state.working();
          for (const e of fresh) take(e, 1);
          pump();
        } catch (err) {
          if (signal.aborted || this.closed) break;
          const text = describeRedisError(err, this.redactor);
          if (/NOGROUP/i.test(text)) {
            groupReady = false;
            this.log.warn(`${this.subject}: consumer group '${group}' of stream '${topic}' is gone (deleted, or Redis lost its data): making it again, as daprd does`);
          } else {
            state.lost(new BrokerError(`${this.subject}: cannot read stream '${topic}' (consumer group '${group}') at ${this.where}: ${text}`));
          }
          await sleep(RECONNECT_WAIT_MS, signal);
        }
      }
    } finally {
      for (const off of unwatch) off();
      signal.removeEventListener('abort', stop);
      // Entries not started stay pending in the group: no longer renewed, another replica takes them after processingTimeout.
      for (const h of waiting.splice(0)) held.delete(h.entry.id);
      while (active.size > 0) await Promise.allSettled([...active]);
      clearInterval(renewer);
      this.readers.delete(reader);
      reader.disconnect();
    }
  }

  /** Takes over entries pending longer than processingTimeout (failed here, or held by a replica that went away). */
  private async sweep(r: Redis, topic: string, room: number, take: (e: StreamEntry, deliveryCount: number) => void): Promise<void> {
    if (room <= 0) return;
    const claimed = await claimIdle(r, topic, this.consumerGroup, this.consumerGroup, this.s.processingTimeoutMs, room);
    if (claimed.length === 0) return;
    const counts = await deliveryCounts(r, topic, this.consumerGroup, claimed.map((e) => e.id));
    for (const e of claimed) take(e, counts.get(e.id) ?? 1);
  }

  private async handle(topic: string, h: Held, handler: MessageHandler): Promise<void> {
    const { entry } = h;
    const enqueuedAt = entryTime(entry.id);
    const msg: QueueMessage = {
      id: entry.id,
      data: entry.data,
      metadata: this.metadataOf(entry),
      deliveryCount: h.deliveryCount,
      ...(enqueuedAt === undefined ? {} : { enqueuedAt }),
    };
    let ok = false;
    try {
      ok = settle(await handler(msg)).ok;
    } catch (err) {
      this.log.debug(`handler failed on entry ${entry.id} of stream '${topic}': ${errorMessage(err)}`);
    }
    // Not processed: it stays pending and comes again once pending longer than processingTimeout.
    if (!ok || this.closed) return;
    try {
      await this.redis.xack(topic, this.consumerGroup, entry.id);
    } catch (err) {
      this.log.warn(`${this.subject}: entry ${entry.id} of stream '${topic}' was processed but not acknowledged (${describeRedisError(err, this.redactor)}): it is delivered again after processingTimeout`);
    }
  }

  /** The `metadata` field daprd writes: a JSON object of strings. */
  private metadataOf(e: StreamEntry): MessageMetadata {
    const raw = e.fields.get('metadata');
    if (!raw) return {};
    try {
      const v = JSON.parse(raw.toString('utf8')) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')) return v as MessageMetadata;
    } catch {
      // reported below
    }
    this.log.warn(`${this.subject}: entry ${e.id}: its metadata field is not a JSON object of strings; delivered without metadata, as daprd does`);
    return {};
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.readers) r.disconnect();
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    // Consumers are named after the group and shared by every replica, as daprd's: none is deleted here.
    if (c.status === 'ready') await withTimeout(c.quit(), 2000, 'quit').catch(() => undefined);
    c.disconnect();
  }
}

/**
 * Calls `lost(cause)` while a connection cannot come back: a reconnect attempt failed, or it connected and gave no
 * answer within `silentMs` (then it is dropped and tried again: ioredis would wait forever). A connection that drops
 * and comes straight back is no outage. Returns the way to stop watching.
 */
function watchOutage(c: Redis, silentMs: number, describe: (err: unknown) => string, lost: (cause: string) => void): () => void {
  let down = false;
  let silence: NodeJS.Timeout | undefined;
  const listeners: Record<string, (...args: unknown[]) => void> = {
    reconnecting: () => {
      down = true;
      clearTimeout(silence);
    },
    error: (err) => {
      if (down) lost(describe(err));
    },
    connect: () => {
      clearTimeout(silence);
      if (down) {
        silence = setTimeout(() => {
          lost(`connected, but no answer within ${silentMs} ms`);
          c.disconnect(true);
        }, silentMs);
      }
    },
    ready: () => {
      down = false;
      clearTimeout(silence);
    },
  };
  for (const [event, fn] of Object.entries(listeners)) c.on(event, fn);
  return () => {
    clearTimeout(silence);
    for (const [event, fn] of Object.entries(listeners)) c.off(event, fn);
  };
}

export const redisPubSub: PubSubDefinition = {
  types: [REDIS_PUBSUB_TYPE],
  // The registry holds specs of every shape; the precise field types stay with this module's own parse.
  metadata: redisPubSubMetadata as unknown as MetadataSpec,
  localOnly: false,
  create: (component, ctx) => new RedisPubSub(component, ctx),
};
