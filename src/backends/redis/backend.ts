/**
 * bindings.qscale.redis: a Redis stream read through a consumer group.
 *
 * Why streams and not a list with LMOVE: the consumer group keeps, inside Redis, who holds each message, since when
 * (idle time) and how many times it was delivered. Crash recovery (XAUTOCLAIM of entries idle past the visibility
 * timeout) and delivery counts then survive any restart without lease bookkeeping of our own, and KEDA's
 * redis-streams trigger reads the very same group. Acked entries are deleted, so the stream holds exactly the
 * queue: XLEN = ready + in flight.
 *
 * A failed delivery is not retried in a hot loop: the entry is marked as idle for (visibility timeout − redelivery
 * wait), so the claim sweep (every second, by any consumer) redelivers it once the wait is over, with its count + 1;
 * the wait is therefore at most the visibility timeout. At maxDeliveryCount it moves to the dead-letter stream with
 * what went wrong on its last delivery. Long handlers keep their entries by renewing them every third of the
 * visibility timeout.
 *
 * Dead letters are named by their entry id in the dead-letter stream, which never changes while they are there. A
 * requeue and the queue purge run as Lua scripts (scripts.ts): each is one atomic step inside Redis. So does a
 * consumer's turn while messages wait: the acks of its answered messages and the read of the next ones, one command.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BrokerError, errorMessage } from '../../errors.js';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, Purgeable,
  QueueDepth, ReceiveOptions, ResolvedComponent,
} from '../types.js';
import { settle } from '../types.js';
import type { Logger } from '../../util/log.js';
import { connectRedis, describeRedisError, describeTarget } from './connection.js';
import { redisMetadata, type RedisSettings } from './metadata.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import {
  ackAndDeleteMany, ackThenReadNew, claimIdle, deadLetter, handBack, handedBackCount, deleteDeadLetters, deleteDeadLettersUpTo, deliveryCounts, ensureGroup, entryTime,
  groupCounts, isEntryId, lastEntryId, purgeReady, readDeadLetters, readNew, releaseForRetry, renew, requeueDeadLetters,
  queueEntryFrom, type QueueEntry,
} from './stream.js';
import { sleep } from '../../util/abort.js';
import { Wakeup } from '../../util/wakeup.js';
import { withTimeout } from '../../util/timeout.js';
import { redeliveryDelayMs } from '../redelivery.js';
import { DEPTH, SEND, bounded, isNoAnswer, receiveUnreachable, unreachable, type BrokerAddress } from '../unreachable.js';
import { BrokerState } from '../broker-state.js';

const BLOCK_MS = 1000;
const SWEEP_EVERY_MS = 1000;
/** The longest an ack waits for the loop's next read while other work is pending (see receive). */
const ACK_HOLD_MS = 50;
/**
 * Read-ahead serves only handlers faster than this on average (an EWMA of start → answer). It saves one Redis round
 * trip between a handler's answer and its next message — a fraction of a millisecond here, a few across a network —
 * which is worth it for a handler that takes about as long; a slower handler gains next to nothing, and the entries
 * held for it would wait in this receiver while another replica (one KEDA added for them) could start them now.
 * Until its first answers are in, a receiver reads only for its free slots.
 */
const READ_AHEAD_HANDLER_MS = 10;
/** Weight of the latest handler duration in that average. */
const HANDLER_EWMA_WEIGHT = 0.2;
/** Entries one step of requeue-all or of the queue purge handles: each step is short, so Redis serves others between. */
const BATCH = 500;
/** A failure reason longer than this is cut: the first bytes say what went wrong. */
const REASON_MAX = 1000;

export class RedisBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
  readonly name: string;
  readonly type: string;
  private client: Redis | undefined;
  private readonly readers = new Set<Redis>();
  /** Each receive loop's entries read ahead: close() hands them back. */
  private readonly buffers = new Set<Buffered[]>();
  private readonly log: Logger;
  private readonly subject: string;
  private readonly where: string;
  private readonly consumer = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly waitMs: number;
  /** Bound of one send or depth call (initTimeout): an outage never blocks its caller longer. */
  private readonly callMs: number;
  private readonly address: BrokerAddress;
  /** Why the main connection's last attempt failed, while it is not ready: the broker is known to be down. */
  private lastError: string | undefined;
  private readonly redactor: Redactor;
  private closed = false;

  constructor(private readonly component: ResolvedComponent, private readonly s: RedisSettings, ctx: BackendContext) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    this.where = describeTarget(s);
    this.log = ctx.logger.child({ component: component.name });
    this.waitMs = Math.max(component.initTimeoutMs, s.reconnectWaitMs + 5000);
    this.callMs = component.initTimeoutMs;
    this.redactor = redactorFor(redisMetadata.fields, component.metadata);
    this.address = { subject: this.subject, broker: 'Redis', where: this.where };
  }

  async init(): Promise<void> {
    const client = await this.connect(this.component.initTimeoutMs, `qscale:${this.name}`);
    this.client = client;
    try {
      await ensureGroup(client, this.s.stream, this.s.group);
    } catch (err) {
      throw new BrokerError(`${this.subject}: cannot create consumer group '${this.s.group}' on stream '${this.s.stream}' at ${this.where}: ${describeRedisError(err, this.redactor)}`);
    }
    this.log.info(`connected to Redis at ${this.where}, stream '${this.s.stream}', group '${this.s.group}'`);
  }

  private async connect(timeoutMs: number, name: string): Promise<Redis> {
    let c: Redis;
    try {
      c = await connectRedis(this.s, timeoutMs, name);
    } catch (err) {
      throw new BrokerError(`${this.subject}: cannot connect to Redis at ${this.where}: ${this.redactor.text(errorMessage(err))}`);
    }
    // Debug lines only: an outage reaches the user once, through a receive loop's onBrokerState or the errors of
    // send and depth.
    let down = false;
    c.on('error', (err: unknown) => {
      const cause = describeRedisError(err, this.redactor);
      if (c === this.client && c.status !== 'ready') this.lastError = cause;
      if (!down && !this.closed) this.log.debug(`Redis connection error: ${cause}`);
    });
    c.on('close', () => {
      if (!this.closed && !down) {
        down = true;
        this.log.debug(`Redis connection to ${this.where} dropped; reconnecting`);
      }
    });
    c.on('ready', () => {
      if (down) this.log.debug(`reconnected to Redis at ${this.where}`);
      down = false;
      if (c === this.client) this.lastError = undefined;
    });
    return c;
  }

  /**
   * Tells `state` when a connection a receive loop depends on cannot come back: a reconnect attempt failed, or it
   * connected and got no answer within callMs — then it is dropped and tried again, since ioredis would wait for an
   * answer forever. A connection that drops and comes right back is no outage. Commands wait through a reconnect,
   * so the loop itself sees nothing meanwhile.
   */
  private watchReconnects(c: Redis, state: BrokerState): () => void {
    let reconnecting = false;
    let silent: NodeJS.Timeout | undefined;
    const report = (cause: string): void => {
      if (!this.closed) state.lost(receiveUnreachable(this.address, cause));
    };
    const onReconnecting = (): void => {
      reconnecting = true;
      clearTimeout(silent);
    };
    const onError = (err: unknown): void => {
      if (reconnecting) report(describeRedisError(err, this.redactor));
    };
    const onConnect = (): void => {
      clearTimeout(silent);
      if (!reconnecting) return;
      silent = setTimeout(() => {
        report(`connected, but no answer within ${this.callMs} ms`);
        c.disconnect(true);
      }, this.callMs);
    };
    const onReady = (): void => {
      reconnecting = false;
      clearTimeout(silent);
    };
    c.on('reconnecting', onReconnecting);
    c.on('error', onError);
    c.on('connect', onConnect);
    c.on('ready', onReady);
    return () => {
      clearTimeout(silent);
      c.off('reconnecting', onReconnecting);
      c.off('error', onError);
      c.off('connect', onConnect);
      c.off('ready', onReady);
    };
  }

  private get redis(): Redis {
    if (!this.client) throw new BrokerError(`${this.subject}: used before init()`);
    return this.client;
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    await this.call(SEND, (r) => r.xadd(this.s.stream, '*', 'data', data, 'meta', JSON.stringify(metadata)));
  }

  async receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { signal } = options;
    const concurrency = Math.max(1, Math.floor(options.concurrency));
    const readAhead = this.s.readAhead;
    // XREADGROUP BLOCK holds its connection: each receive() reads on its own one.
    const reader = await this.connect(this.waitMs, `qscale:${this.name}:reader`);
    this.readers.add(reader);
    const state = new BrokerState(options.onBrokerState, this.log);
    const unwatch = [this.watchReconnects(reader, state), this.watchReconnects(this.redis, state)];
    // Deliveries not finished yet (answered, outcome being recorded): stopping waits for them.
    const active = new Set<Promise<void>>();
    // Deliveries whose handler has not answered yet: what concurrency bounds.
    let busy = 0;
    // Entries whose handler still works: renewed. A failed one leaves at once, so renewal never cuts its wait short.
    const working = new Set<string>();
    // Entries read and not yet handed to a handler (at most free slots + readAhead), oldest first. They are pending
    // in the group under this consumer; one left here too long, and all of them on stop, are handed back.
    const buffer: Buffered[] = [];
    this.buffers.add(buffer);
    const period = Math.max(200, Math.floor(this.s.visibilityMs / 3));
    const renewer = setInterval(() => {
      renew(this.redis, this.s.stream, this.s.group, this.consumer, [...working]).catch(() => undefined);
      // Buffered for a whole period (its handlers are slow): another consumer may be idle, and it must never reach
      // its visibility timeout here (it would be claimed and delivered twice). Given back, it is claimable at once.
      const old = Date.now() - period;
      let n = 0;
      while (n < buffer.length && (buffer[n] as Buffered).at <= old) n++;
      if (n > 0) void this.handBack(buffer.splice(0, n), 'waited too long for a free handler');
    }, period);
    // A finished handler, a read coming back, or a stop wakes the loop; nothing is left behind per wait.
    const wake = new Wakeup();
    signal.addEventListener('abort', wake.poke);
    // Acks of answered handlers wait for the loop's next read (one command: the acks, then the read) while more is
    // going on (a handler still working, a read under way), at most ACK_HOLD_MS; else they go out at the end of
    // the turn, on the main connection, so an ack never waits when nothing else is pending.
    const acks = new AckBatch();
    let holdTimer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      clearTimeout(holdTimer);
      holdTimer = undefined;
      const batch = acks.take();
      if (!batch) return;
      try {
        batch.settle(ackAndDeleteMany(this.redis, this.s.stream, this.s.group, batch.ids));
      } catch (err) {
        batch.settle(Promise.reject(err));
      }
    };
    // Once the loop has stopped, no turn comes to send them: each ack goes out right after its turn.
    let stopped = false;
    let flushQueued = false;
    const ack = (id: string): Promise<void> => {
      const done = acks.add(id);
      if (stopped && !flushQueued) {
        flushQueued = true;
        setImmediate(() => {
          flushQueued = false;
          flush();
        });
      }
      return done;
    };
    // The handlers' average duration, ms (undefined until the first answer): read-ahead only while it is short.
    let handlerMs: number | undefined;
    const start = (e: QueueEntry, count: number): void => {
      working.add(e.id);
      busy++;
      const began = performance.now();
      let answered = false;
      const answer = (): void => {
        if (answered) return;
        answered = true;
        const took = performance.now() - began;
        handlerMs = handlerMs === undefined ? took : handlerMs + HANDLER_EWMA_WEIGHT * (took - handlerMs);
        working.delete(e.id);
        busy--;
        wake.poke();
      };
      const p: Promise<void> = this.handle(e, count, handler, answer, ack).finally(() => {
        answer();
        active.delete(p);
      });
      active.add(p);
    };
    const stopping = (): boolean => signal.aborted || this.closed;
    let lastSweep = 0;
    // The last read got all it asked for: more is likely there, so the next read does not block.
    let backlog = false;
    // The read under way (one at a time, on the reader connection); blocking: it may wait up to BLOCK_MS.
    let reading: Promise<void> | undefined;
    let blocking = false;
    const read = async (room: number): Promise<void> => {
      try {
        if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
          lastSweep = Date.now();
          // Acks first (the same connection, so before the claim): an answered entry is never claimed again.
          flush();
          const claimed = await claimIdle(this.redis, this.s.stream, this.s.group, this.consumer, this.s.visibilityMs, room, queueEntryFrom);
          if (claimed.length > 0) {
            const counts = await deliveryCounts(this.redis, this.s.stream, this.s.group, claimed.map((e) => e.id));
            const at = Date.now();
            for (const e of claimed) {
              const n = counts.get(e.id) ?? 1;
              // Delivered past the maximum without an outcome: its consumers kept dying on it.
              if (n > this.s.maxDeliveryCount) {
                await this.toDeadLetters(e, n - 1, `the visibility timeout (${this.s.visibilityMs / 1000} s) expired on the last delivery: its consumer stopped or hung`);
              } else buffer.push({ e, count: n, at });
            }
            return;
          }
        }
        const batch = acks.take();
        clearTimeout(holdTimer);
        holdTimer = undefined;
        // Acks waiting, or a backlog there: one command acks them and reads what is there without BLOCK. Else a
        // read that may block, meanwhile acks go out on the main connection.
        let fresh: QueueEntry[];
        if (batch || backlog) {
          const got = await ackThenReadNew(reader, this.s.stream, this.s.group, this.consumer, batch?.ids ?? [], room);
          batch?.settle(got.acked === undefined ? Promise.resolve() : Promise.reject(got.acked));
          if (got.readFailed !== undefined) throw got.readFailed;
          fresh = got.entries;
        } else {
          blocking = true;
          fresh = await readNew(reader, this.s.stream, this.s.group, this.consumer, room, BLOCK_MS, queueEntryFrom);
        }
        backlog = fresh.length === room;
        state.working();
        const at = Date.now();
        for (const e of fresh) buffer.push({ e, count: 1, at });
      } catch (err) {
        backlog = false;
        flush();
        if (stopping()) return;
        const text = describeRedisError(err, this.redactor);
        // The stream or group was deleted under us: make them again and go on.
        if (/NOGROUP/i.test(text)) await ensureGroup(this.redis, this.s.stream, this.s.group).catch(() => undefined);
        else state.lost(new BrokerError(`${this.subject}: cannot read stream '${this.s.stream}' at ${this.where}: ${text}`));
        await sleep(Math.max(100, this.s.reconnectWaitMs), signal);
      } finally {
        blocking = false;
      }
    };
    try {
      while (!stopping()) {
        // Free slots take buffered entries first: no round trip between a handler's answer and the next message.
        while (busy < concurrency && buffer.length > 0) {
          const b = buffer.shift() as Buffered;
          start(b.e, b.count);
        }
        // Refill in batches: once the buffer is down to half, read what fills the free slots and the buffer.
        const ahead = handlerMs !== undefined && handlerMs < READ_AHEAD_HANDLER_MS ? readAhead : 0;
        const room = concurrency - busy + ahead - buffer.length;
        if (reading === undefined && room > 0 && buffer.length <= ahead >> 1) {
          reading = read(room).finally(() => {
            reading = undefined;
            wake.poke();
          });
        }
        if (acks.size > 0) {
          // Held for the next read while something else is pending: a handler at work, or a read that answers at
          // once; bounded by ACK_HOLD_MS. Else (idle, or the read may block) out now.
          if ((busy > 0 || reading !== undefined) && !blocking) holdTimer ??= setTimeout(flush, ACK_HOLD_MS);
          else flush();
        }
        await wake.wait(Infinity);
        // Every handler answering in this turn frees its slot and queues its ack before the loop goes on.
        if (!stopping()) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      stopped = true;
      signal.removeEventListener('abort', wake.poke);
      // A read under way lands its entries in the buffer (or fails): they are handed back with the rest.
      while (reading !== undefined) await reading;
      flush();
      await this.handBack(buffer.splice(0), 'the receiver stopped');
      this.buffers.delete(buffer);
      for (const off of unwatch) off();
      while (active.size > 0) await Promise.allSettled([...active]);
      clearTimeout(holdTimer);
      clearInterval(renewer);
      this.readers.delete(reader);
      reader.disconnect();
    }
  }

  /**
   * Gives back entries read ahead and never delivered (scripts.ts): any consumer's claim sweep takes them at once,
   * with the delivery count they had before the read. If that fails (connection gone), they are still pending under
   * this consumer and come back after the visibility timeout, like entries of a consumer that crashed.
   */
  private async handBack(entries: Buffered[], why: string): Promise<void> {
    const c = this.client;
    if (entries.length === 0 || !c) return;
    try {
      await withTimeout(handBack(c, this.s.stream, this.s.group, this.consumer, this.s.visibilityMs,
        entries.map((b) => ({ id: b.e.id, before: b.count - 1 }))), this.callMs, 'hand back');
      this.log.debug(`handed back ${entries.length} entries read ahead (${why})`);
    } catch (err) {
      this.log.warn(`${entries.length} entries read ahead not handed back (${why}): ${describeRedisError(err, this.redactor)}; other consumers take them after the visibility timeout (${this.s.visibilityMs / 1000} s)`);
    }
  }

  private async handle(
    e: QueueEntry, deliveryCount: number, handler: MessageHandler, answered: () => void, ack: (id: string) => Promise<void>,
  ): Promise<void> {
    let outcome: { ok: boolean; reason: string };
    try {
      const enqueuedAt = entryTime(e.id);
      outcome = settle(await handler({ id: e.id, data: e.data, metadata: e.meta, deliveryCount, ...(enqueuedAt === undefined ? {} : { enqueuedAt }) }));
    } catch (err) {
      outcome = settle(undefined, err);
      this.log.debug(`handler failed: ${errorMessage(err)}`);
    }
    if (outcome.ok) {
      const acked = ack(e.id);
      answered();
      try {
        await acked;
      } catch (err) {
        // Still pending in the group: the claim sweep redelivers it after the visibility timeout.
        this.log.warn(`outcome of message ${e.id} not recorded: ${describeRedisError(err, this.redactor)}`);
      }
      return;
    }
    answered();
    try {
      if (deliveryCount >= this.s.maxDeliveryCount) await this.toDeadLetters(e, deliveryCount, outcome.reason);
      else {
        // Claimable once idle for the visibility timeout: looking idle for (timeout − wait) already, it is after the wait.
        const wait = Math.min(this.s.visibilityMs, redeliveryDelayMs(this.s.redelivery, deliveryCount));
        await releaseForRetry(this.redis, this.s.stream, this.s.group, this.consumer, e.id, this.s.visibilityMs - wait);
      }
    } catch (err) {
      // Still pending in the group: the claim sweep redelivers it after the visibility timeout.
      this.log.warn(`outcome of message ${e.id} not recorded: ${describeRedisError(err, this.redactor)}`);
    }
  }

  /** `why`: what went wrong on the last delivery. */
  private async toDeadLetters(e: QueueEntry, deliveryCount: number, why: string): Promise<void> {
    const reason = `MaxDeliveryCountExceeded: failed on delivery ${deliveryCount} of ${this.s.maxDeliveryCount}: ${why}`.slice(0, REASON_MAX);
    await deadLetter(this.redis, this.s.stream, this.s.group, this.s.deadLetterStream, e, deliveryCount, reason);
    this.log.warn(`message ${e.id} dead-lettered to '${this.s.deadLetterStream}' after ${deliveryCount} deliveries`);
  }

  /**
   * ready: entries not yet delivered to the group (lag), plus those read ahead and not handed to a handler: this
   * process's buffers and the entries handed back. inFlight: the rest of the group's pending entries, every
   * consumer's (another replica's buffer among them: Redis cannot tell it apart).
   */
  async depth(): Promise<QueueDepth> {
    const [g, back, dead] = await this.call(DEPTH, (r) => Promise.all([
      groupCounts(r, this.s.stream, this.s.group),
      handedBackCount(r, this.s.stream, this.s.group),
      r.xlen(this.s.deadLetterStream),
    ]));
    let waiting = back;
    for (const b of this.buffers) waiting += b.length;
    waiting = Math.min(waiting, g.pending);
    return { ready: g.lag + waiting, inFlight: g.pending - waiting, deadLettered: dead };
  }

  async ping(): Promise<void> {
    await this.call('ping', (r) => r.ping());
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.call(LIST_DEAD, (r) => readDeadLetters(r, this.s.deadLetterStream, '-', '+', limit));
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    if (!isEntryId(id)) return undefined;
    const [found] = await this.call(LIST_DEAD, (r) => readDeadLetters(r, this.s.deadLetterStream, id, id, 1));
    return found;
  }

  /** Each dead letter moves in one atomic step (scripts.ts): added to the queue and deleted, or neither. */
  async requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const dlq = this.s.deadLetterStream;
    if (ids !== 'all') return this.call(REQUEUE_DEAD, (r) => requeueDeadLetters(r, dlq, this.s.stream, entryIds(ids)));
    // The ones there now: dead letters written meanwhile (a consumer still failing) wait for the next requeue.
    const last = await this.call(REQUEUE_DEAD, (r) => lastEntryId(r, dlq));
    let moved = 0;
    while (last !== undefined) {
      const page = await this.call(REQUEUE_DEAD, (r) => readDeadLetters(r, dlq, '-', last, BATCH));
      if (page.length === 0) break;
      moved += await this.call(REQUEUE_DEAD, (r) => requeueDeadLetters(r, dlq, this.s.stream, page.map((d) => d.id)));
    }
    return moved;
  }

  async purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const dlq = this.s.deadLetterStream;
    if (ids !== 'all') return this.call(PURGE_DEAD, (r) => deleteDeadLetters(r, dlq, entryIds(ids)));
    return this.call(PURGE_DEAD, async (r) => {
      const last = await lastEntryId(r, dlq);
      return last === undefined ? 0 : deleteDeadLettersUpTo(r, dlq, last);
    });
  }

  /**
   * Deletes the entries the group was never handed (what depth() counts as ready), up to the newest one there when
   * the purge starts; entries a consumer holds and dead letters stay (scripts.ts).
   */
  async purge(): Promise<number> {
    const last = await this.call(PURGE, (r) => lastEntryId(r, this.s.stream));
    let deleted = 0;
    for (let n = BATCH; last !== undefined && n >= BATCH;) {
      const before = deleted;
      n = await this.call(PURGE, (r) => purgeReady(r, this.s.stream, this.s.group, last, BATCH, before));
      deleted += n;
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Entries read ahead go back before anything closes: other consumers take them at once.
    await Promise.all([...this.buffers].map((b) => this.handBack(b.splice(0), 'the component closed')));
    for (const r of this.readers) r.disconnect();
    const c = this.client;
    this.client = undefined;
    if (c) {
      // Tidy the group's consumer list, but never drop a consumer that still holds entries: that would lose them.
      // Only with a live connection, and bounded: a close must never wait on a broker that went away.
      if (c.status === 'ready') {
        try {
          await withTimeout((async () => {
            const mine = (await c.call('XPENDING', this.s.stream, this.s.group, '-', '+', '1', this.consumer)) as unknown[];
            if (Array.isArray(mine) && mine.length === 0) await c.call('XGROUP', 'DELCONSUMER', this.s.stream, this.s.group, this.consumer);
            await c.quit();
          })(), 2000, 'close');
        } catch {
          // best effort
        }
      }
      c.disconnect();
    }
  }

  /**
   * One command of send / depth / ping / the dead-letter and purge calls. While the connection is down and its last attempt failed, it fails at once
   * and is not queued (a queued send would still run after the caller was told it failed); while a reconnect is under
   * way it waits for it; either way never longer than callMs.
   */
  private async call<T>(doing: string, run: (r: Redis) => Promise<T>): Promise<T> {
    const r = this.redis;
    const meanwhile = `qscale reconnects every ${this.s.reconnectWaitMs / 1000} s (reconnectWaitInSeconds)`;
    if (r.status !== 'ready') {
      if (this.lastError !== undefined) throw unreachable(this.address, doing, this.lastError, meanwhile);
      let settle = (): void => undefined;
      const stop = (): void => {
        r.off('ready', settle);
        r.off('error', settle);
      };
      await bounded(this.address, doing, this.callMs, new Promise<void>((resolve, reject) => {
        settle = (): void => {
          stop();
          if (r.status === 'ready') resolve();
          else reject(unreachable(this.address, doing, this.lastError ?? 'connection lost', meanwhile));
        };
        r.on('ready', settle);
        r.on('error', settle);
      }), stop);
    }
    try {
      return await bounded(this.address, doing, this.callMs, run(r));
    } catch (err) {
      // The connection went down under the command: say so rather than only that no answer came.
      if (isNoAnswer(err) && r.status !== 'ready' && this.lastError !== undefined) {
        throw unreachable(this.address, doing, this.lastError, meanwhile, true);
      }
      if (err instanceof BrokerError) throw err;
      throw new BrokerError(`${this.subject}: cannot ${doing} (stream '${this.s.stream}' at ${this.where}): ${describeRedisError(err, this.redactor)}`);
    }
  }
}

const LIST_DEAD = 'read the dead letters';
const REQUEUE_DEAD = 'requeue dead letters';
const PURGE_DEAD = 'purge dead letters';
const PURGE = 'purge the queue';

/** The ids that can name an entry, once each: anything else names no dead letter, so it is skipped like an unknown one. */
function entryIds(ids: readonly string[]): string[] {
  return [...new Set(ids.filter(isEntryId))];
}

/** An entry read and not yet handed to a handler: its delivery count and when it was read. */
interface Buffered {
  e: QueueEntry;
  count: number;
  at: number;
}

/** The acks waiting for one round trip: every ack of the batch learns its outcome together (one promise). */
class AckBatch {
  private ids: string[] = [];
  private done: Promise<void> | undefined;
  private resolve: () => void = () => undefined;
  private reject: (err: unknown) => void = () => undefined;

  get size(): number {
    return this.ids.length;
  }

  add(id: string): Promise<void> {
    this.ids.push(id);
    this.done ??= new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    return this.done;
  }

  /** The acks queued so far (undefined: none), to send now; the next ones start a new batch. */
  take(): { ids: string[]; settle: (sent: Promise<void>) => void } | undefined {
    if (this.ids.length === 0) return undefined;
    const { ids, resolve, reject } = this;
    this.ids = [];
    this.done = undefined;
    return { ids, settle: (sent) => void sent.then(resolve, reject) };
  }
}
