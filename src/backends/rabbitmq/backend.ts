/**
 * bindings.rabbitmq: Dapr's RabbitMQ binding (same queue declaration, same message mapping) with what Dapr lacks:
 * publisher confirms, leases bounded by concurrency, counted redeliveries with a dead-letter queue, and depth.
 *
 * Failed deliveries: the message is republished with `x-delivery-count` incremented, confirmed, and only then is the
 * original acked: to the retry queue of its redelivery wait, from which RabbitMQ moves it back to the tail of its
 * queue when the wait is over (retry.ts); at maxDeliveryCount to the dead-letter queue the same way.
 * The count lives in the message itself, so it survives restarts of qscale and of the broker (durable queue), and the
 * queue keeps exactly the declaration daprd gives it (a quorum queue's delivery-limit would need a different queue
 * type, which a queue daprd already created refuses). The price: a retried message loses its place in line, and a
 * crash between confirm and ack can duplicate it (at-least-once, like every redelivery).
 * A dead letter carries why (the handler's answer on its last delivery), its id and when, in headers (message.ts);
 * browsing and replaying them is in dead-letters.ts and scanDeadLetters().
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, GetMessage, Message, Options } from 'amqplib';
import { BrokerError, errorMessage } from '../../errors.js';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, Purgeable, QueueDepth,
  QueueMessage, ReceiveOptions, ResolvedComponent,
} from '../types.js';
import { settle } from '../types.js';
import type { Logger } from '../../util/log.js';
import { AmqpLink, describeAmqpError } from './link.js';
import { ManagementClient } from './management.js';
import {
  DEAD_LETTER_ID_HEADER, DELIVERY_COUNT_HEADER, deliveryCountOf, enqueuedAtOf, metadataOf, publishOptions, republishOptions,
} from './message.js';
import { deadLetterHeaders, deadLetterIdOf, deadLetterReason, pick, requeueOptions, toDeadLetter, type Selection } from './dead-letters.js';
import type { RabbitmqSettings } from './metadata.js';
import { managementUrlFromAmqp, vhostOf } from './url.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import { rabbitmqMetadata } from './metadata.js';
import { sleep, whenAborted } from '../../util/abort.js';
import { redeliveryDelayMs, redeliveryDelays } from '../redelivery.js';
import { retryQueueName, retryQueueOptions } from './retry.js';
import { DEPTH, SEND, bounded, receiveUnreachable, type BrokerAddress } from '../unreachable.js';
import { BrokerState } from '../broker-state.js';

export class RabbitmqBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
  readonly name: string;
  readonly type: string;
  private readonly link: AmqpLink;
  private readonly log: Logger;
  private readonly subject: string;
  private readonly management: ManagementClient;
  private readonly vhost: string;
  /** How long deadLetters() waits for a dropped connection to come back. */
  private readonly waitMs: number;
  /** Bound of one send or depth call (initTimeout): an outage never blocks its caller longer. */
  private readonly callMs: number;
  private readonly address: BrokerAddress;
  private readonly redactor: Redactor;
  private pub: { conn: ChannelModel; ch: ConfirmChannel } | undefined;
  private admin: { conn: ChannelModel; ch: Channel } | undefined;
  private localInFlight = 0;
  /** Ids of messages the broker returned as unroutable, seen before their confirm. */
  private readonly returned = new Set<string>();
  /** When the management API last failed: not asked again for a while, so depth() stays fast without it. */
  private managementDownAt = -Infinity;
  private closed = false;

  constructor(private readonly component: ResolvedComponent, private readonly s: RabbitmqSettings, ctx: BackendContext) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    this.log = ctx.logger.child({ component: component.name });
    this.redactor = redactorFor(rabbitmqMetadata.fields, component.metadata);
    this.link = new AmqpLink({ url: s.url, tls: s.tls, reconnectWaitMs: s.reconnectWaitMs, logger: this.log, subject: this.subject,
      connectionName: `qscale:${component.name}`, redactor: this.redactor });
    this.management = new ManagementClient(s.managementUrl ?? managementUrlFromAmqp(s.url), 3000);
    this.vhost = vhostOf(s.url);
    this.waitMs = Math.max(component.initTimeoutMs, s.reconnectWaitMs + 2000);
    this.callMs = component.initTimeoutMs;
    this.address = { subject: this.subject, broker: 'RabbitMQ', where: this.link.where };
  }

  async init(): Promise<void> {
    const started = Date.now();
    await this.link.open(this.component.initTimeoutMs);
    try {
      const ch = await this.adminChannel(this.component.initTimeoutMs);
      // Only the queue, as daprd declares it: the dead-letter and retry queues belong to a component that reads.
      await ch.assertQueue(this.s.queueName, this.queueOptions());
    } catch (err) {
      throw new BrokerError(`${this.subject}: cannot declare queue '${this.s.queueName}' on ${this.link.where}: ${describeAmqpError(err, this.secrets())}`);
    }
    this.log.info(`connected to RabbitMQ at ${this.link.where}, queue '${this.s.queueName}' (${Date.now() - started} ms)`);
  }

  /** Dapr's declaration: durable, auto-delete, exclusive, x-message-ttl and x-max-priority only when given. */
  private queueOptions(): Options.AssertQueue {
    const args: Record<string, number> = {};
    if (this.s.queueTtlMs !== undefined) args['x-message-ttl'] = Math.floor(this.s.queueTtlMs);
    if (this.s.maxPriority !== undefined) args['x-max-priority'] = this.s.maxPriority;
    return { durable: this.s.durable, autoDelete: this.s.autoDelete, exclusive: this.s.exclusive, arguments: args };
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    // mandatory: a message the broker cannot route (the queue was deleted) comes back instead of vanishing.
    const opts = { ...publishOptions(metadata, this.s.contentType), mandatory: true };
    const id = opts.messageId as string;
    const deadline = Date.now() + this.callMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    let redeclared = false;
    for (;;) {
      // A broker known to be down fails the send here, at once.
      const ch = await this.publishChannel(left(), SEND);
      try {
        await bounded(this.address, SEND, left(), confirmPublish(ch, this.s.queueName, data, opts));
        // The broker returns an unroutable message before it confirms it.
        if (!this.returned.delete(id)) return;
        if (redeclared) throw new Error(`queue '${this.s.queueName}' does not exist and could not be re-created`);
        this.log.warn(`queue '${this.s.queueName}' vanished; declaring it again`);
        await (await this.adminChannel(left(), SEND)).assertQueue(this.s.queueName, this.queueOptions());
        redeclared = true;
      } catch (err) {
        if (err instanceof BrokerError) throw err;
        // A dropped connection loses unconfirmed publishes: publish again once it is back (at-least-once).
        const dropped = this.pub?.ch !== ch || /closed/i.test(errorMessage(err));
        if (this.closed || Date.now() >= deadline || !dropped) {
          throw new BrokerError(`${this.subject}: publish to queue '${this.s.queueName}' not confirmed: ${describeAmqpError(err, this.secrets())}`);
        }
      }
    }
  }

  async receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { signal } = options;
    const concurrency = Math.max(1, Math.floor(options.concurrency));
    const prefetch = this.s.prefetchCount > 0 ? Math.min(this.s.prefetchCount, concurrency) : concurrency;
    const state = new BrokerState(options.onBrokerState, this.log);
    const unlisten = this.link.onReconnectFailure((cause) => state.lost(receiveUnreachable(this.address, cause)));
    try {
      while (!signal.aborted && !this.closed) {
        let conn: ChannelModel;
        try {
          conn = await this.link.get(this.s.reconnectWaitMs + 60_000, { signal });
        } catch {
          continue;
        }
        try {
          await this.consumeSession(conn, handler, prefetch, signal, state);
        } catch (err) {
          if (signal.aborted || this.closed) break;
          const cause = describeAmqpError(err, this.secrets());
          this.log.debug(`consuming '${this.s.queueName}' stopped: ${cause}; retrying`);
          await sleep(Math.min(1000, this.s.reconnectWaitMs), signal);
          // A channel that died with its connection is the link's to report (its reconnect says why); one whose
          // connection lives on failed for a reason of the queue's own (deleted, declared otherwise, no access).
          if (this.link.current === conn && !signal.aborted) {
            state.lost(new BrokerError(`${this.subject}: cannot consume queue '${this.s.queueName}' on RabbitMQ at ${this.link.where}: ${cause}`));
          }
        }
      }
    } finally {
      unlisten();
    }
  }

  /** One channel's life: consume until it closes or the signal aborts; then every started handler is settled. */
  private async consumeSession(conn: ChannelModel, handler: MessageHandler, prefetch: number, signal: AbortSignal, state: BrokerState): Promise<void> {
    const ch = await conn.createConfirmChannel();
    ch.on('error', (err: Error) => this.log.debug(`RabbitMQ channel error: ${describeAmqpError(err, this.secrets())}`));
    const ended = new Promise<void>((resolve) => ch.once('close', () => resolve()));
    const active = new Set<Promise<void>>();
    const acks = new AckBatch(ch);
    // Made before consume(): a delivery can arrive (and its handler abort) before consume() resolves.
    const aborted = whenAborted(signal);
    try {
      // Declared again on every (re)connect, as daprd does: an auto-delete or deleted queue comes back.
      await ch.assertQueue(this.s.queueName, this.queueOptions());
      // Before the first delivery: a dead letter published to a queue that does not exist would vanish.
      await ch.assertQueue(this.s.deadLetterQueue, { durable: true });
      // Per-consumer prefetch = what we can hand to the app right now: nothing waits leased in this process.
      await ch.prefetch(prefetch, false);
      const { consumerTag } = await ch.consume(this.s.queueName, (msg) => {
        if (msg === null) {
          // The broker cancelled the consumer (queue deleted): start over, which re-reports a missing queue.
          void ch.close().catch(() => undefined);
          return;
        }
        if (signal.aborted) {
          safely(() => ch.nack(msg, false, true));
          return;
        }
        acks.delivered(msg);
        const p: Promise<void> = this.handle(ch, msg, handler, acks).finally(() => active.delete(p));
        active.add(p);
      }, { noAck: false });
      state.working();
      await Promise.race([ended, aborted]);
      if (signal.aborted) await ch.cancel(consumerTag).catch(() => undefined);
    } finally {
      // Waiting here keeps "at most concurrency handler calls" true across a reconnect too.
      while (active.size > 0) await Promise.allSettled([...active]);
      // The last answers' acks go out before the channel closes (a close would hand them back to the queue).
      acks.flush();
      await ch.close().catch(() => undefined);
    }
  }

  private async handle(ch: ConfirmChannel, msg: ConsumeMessage, handler: MessageHandler, acks: AckBatch): Promise<void> {
    const deliveryCount = deliveryCountOf(msg);
    this.localInFlight++;
    try {
      let outcome: { ok: boolean; reason: string };
      try {
        const m: QueueMessage = {
          id: (msg.properties.messageId as string | undefined) ?? `${msg.fields.deliveryTag}`,
          data: msg.content,
          metadata: metadataOf(msg),
          deliveryCount,
        };
        const enqueuedAt = enqueuedAtOf(msg);
        outcome = settle(await handler(enqueuedAt === undefined ? m : { ...m, enqueuedAt }));
      } catch (err) {
        outcome = settle(undefined, err);
        this.log.debug(`handler failed: ${errorMessage(err)}`);
      }
      if (outcome.ok) {
        acks.done(msg);
      } else if (deliveryCount >= this.s.maxDeliveryCount) {
        const reason = deadLetterReason(deliveryCount, this.s.maxDeliveryCount, outcome.reason);
        const headers = deadLetterHeaders(deliveryCount, reason, this.s.queueName);
        await confirmPublish(ch, this.s.deadLetterQueue, msg.content, republishOptions(msg, headers, false));
        acks.done(msg);
        this.log.warn(`message ${String(msg.properties.messageId ?? '')} dead-lettered to '${this.s.deadLetterQueue}' ` +
          `as ${String(headers[DEAD_LETTER_ID_HEADER])}: ${reason}`);
      } else {
        // The redelivery backoff: through the retry queue of this wait, or straight back when there is none.
        const delay = redeliveryDelayMs(this.s.redelivery, deliveryCount);
        const to = delay > 0 ? retryQueueName(this.s.queueName, delay) : this.s.queueName;
        // Declared right before use: a retry queue deleted by hand must not swallow the message.
        if (delay > 0) await ch.assertQueue(to, retryQueueOptions(this.s.queueName, delay));
        await confirmPublish(ch, to, msg.content, republishOptions(msg, { [DELIVERY_COUNT_HEADER]: deliveryCount }, true));
        acks.done(msg);
      }
    } catch (err) {
      // The channel went away before the outcome was applied: the broker puts the message back by itself.
      acks.abandoned(msg);
      this.log.debug(`outcome not applied (${errorMessage(err)}); the broker redelivers the message`);
    } finally {
      this.localInFlight--;
    }
  }

  /**
   * ready: the queue's ready messages (passive declare, exact). inFlight: unacked messages of every consumer, from the
   * management API (trails by up to 5 s); without it, only this process's unacked messages. deadLettered: the DLQ's
   * ready messages.
   */
  async depth(): Promise<QueueDepth> {
    let ready = await this.count(this.s.queueName);
    // Messages waiting out a redelivery backoff are waiting to be delivered too.
    for (const delay of this.retryDelays()) ready += await this.count(retryQueueName(this.s.queueName, delay)).catch(() => 0);
    const deadLettered = await this.count(this.s.deadLetterQueue).catch(() => 0);
    let inFlight = this.localInFlight;
    if (Date.now() - this.managementDownAt > 30_000) {
      try {
        const q = await this.management.queue(this.vhost, this.s.queueName);
        if (q) inFlight = Math.max(q.unacked, this.localInFlight);
      } catch (err) {
        this.managementDownAt = Date.now();
        this.log.debug(`management API unavailable, counting this process's unacked messages only: ${errorMessage(err)}`);
      }
    }
    return { ready, inFlight, deadLettered };
  }

  async ping(): Promise<void> {
    await this.count(this.s.queueName);
  }

  /** Oldest first: the dead-letter queue's order. */
  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    if (limit <= 0) return out;
    await this.scanDeadLetters('list the dead letters', {
      visit: (m) => (out.push(toDeadLetter(m)), 'keep'),
      done: () => out.length >= limit,
    }, {});
    return out;
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    let found: DeadLetter | undefined;
    await this.scanDeadLetters('show a dead letter', {
      visit: (m) => {
        if (deadLetterIdOf(m) === id) found = toDeadLetter(m);
        return 'keep';
      },
      done: () => found !== undefined,
    }, {});
    return found;
  }

  /**
   * Each dead letter named is published to the queue as a fresh message (requeueOptions) and, once the broker
   * confirmed it, acked off the dead-letter queue: a crash between the two leaves a duplicate, never a loss.
   */
  async requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const returned = new Set<string>();
    return this.scanDeadLetters('requeue dead letters', pick(ids), {
      prepare: async (ch) => {
        // Declared as the binding declares it: a queue deleted by hand comes back. A publish that finds no queue
        // anyway (mandatory) comes back before its confirm, and then nothing is acked off the dead letters.
        await ch.assertQueue(this.s.queueName, this.queueOptions());
        ch.on('return', (r: Message) => returned.add(String(r.properties.messageId)));
      },
      take: async (ch, m) => {
        const opts = requeueOptions(m);
        await confirmPublish(ch, this.s.queueName, m.content, opts);
        if (returned.has(String(opts.messageId))) throw new Error(`queue '${this.s.queueName}' does not exist: the message came back unrouted`);
      },
    });
  }

  async purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    if (ids === 'all') return this.purgeReady(this.s.deadLetterQueue, 'purge dead letters');
    return this.scanDeadLetters('purge dead letters', pick(ids), {});
  }

  /**
   * The ready messages of the queue and of its retry queues: a failed message waiting out its backoff is as good as
   * ready (depth() counts it so) and would otherwise come back after the purge. The retry queues go first, as
   * messages flow from them into the queue. Unacked messages are not touched (RabbitMQ's purge leaves them): a
   * message in a handler, here or in another process, is acked, retried or dead-lettered as usual, and one a
   * consumer gives back unhandled (a drain, a lost connection) returns to the queue after the purge.
   */
  async purge(): Promise<number> {
    let n = 0;
    for (const delay of this.retryDelays()) n += await this.purgeReady(retryQueueName(this.s.queueName, delay), 'purge the queue');
    return n + (await this.purgeReady(this.s.queueName, 'purge the queue'));
  }

  /**
   * Reads the dead-letter queue front to back with basic.get, on a channel of its own, at most as many messages as
   * it held when the scan began (dead letters arriving meanwhile wait for the next scan), until `done`. A message
   * `visit` takes is handed to `take` (publish it elsewhere) and acked once that succeeded, in batches; when the
   * scan ends, however it ends, every message not acked goes back to its place in line (nack, requeue).
   * Returns how many were taken.
   */
  private async scanDeadLetters(doing: string, select: Selection, action: ScanAction): Promise<number> {
    const conn = await this.link.get(this.waitMs, { doing });
    const dlq = this.s.deadLetterQueue;
    let ch: ConfirmChannel | undefined;
    let taken = 0;
    const pending: Array<{ m: GetMessage; applied: Promise<void> }> = [];
    const settle = async (): Promise<void> => {
      for (const p of pending.splice(0)) {
        await this.step(doing, p.applied);
        ch?.ack(p.m);
        taken++;
      }
    };
    try {
      ch = await this.step(doing, conn.createConfirmChannel());
      ch.on('error', (err: Error) => this.log.debug(`RabbitMQ dead-letter channel error: ${describeAmqpError(err, this.secrets())}`));
      // No dead-letter queue yet (nothing ever read this queue): nothing was dead-lettered.
      const held = await this.step(doing, ch.checkQueue(dlq)).then((q) => q.messageCount, (err: unknown) => (isNotFound(err) ? 0 : Promise.reject(err)));
      if (held === 0 || select.done()) return 0;
      await action.prepare?.(ch);
      for (let i = 0; i < held && !select.done(); i++) {
        const m = await this.step(doing, ch.get(dlq, { noAck: false }));
        if (m === false) break;
        if (select.visit(m) !== 'take') continue;
        const applied = action.take ? action.take(ch, m) : Promise.resolve();
        applied.catch(() => undefined); // awaited in settle(); a failure there ends the scan
        pending.push({ m, applied });
        if (pending.length >= SCAN_BATCH) await settle();
      }
      await settle();
      return taken;
    } catch (err) {
      if (err instanceof BrokerError) throw err;
      throw new BrokerError(`${this.subject}: cannot ${doing} (queue '${dlq}' on RabbitMQ at ${this.link.where}): ${describeAmqpError(err, this.secrets())}` +
        (taken > 0 ? ` (${taken} done before it failed)` : ''));
    } finally {
      const c = ch;
      if (c) {
        safely(() => c.nackAll(true));
        await c.close().catch(() => undefined);
      }
    }
  }

  /** RabbitMQ's purge of one queue (its ready messages); a queue that does not exist holds none. */
  private async purgeReady(queue: string, doing: string): Promise<number> {
    const conn = await this.link.get(this.waitMs, { doing });
    // A channel of its own: a missing queue closes the channel it was asked on.
    const ch = await this.step(doing, conn.createChannel());
    ch.on('error', () => undefined);
    try {
      return (await this.step(doing, ch.purgeQueue(queue))).messageCount;
    } catch (err) {
      if (isNotFound(err)) return 0;
      if (err instanceof BrokerError) throw err;
      throw new BrokerError(`${this.subject}: cannot ${doing} (queue '${queue}' on RabbitMQ at ${this.link.where}): ${describeAmqpError(err, this.secrets())}`);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** One call of a dead-letter or purge operation, bounded like send and depth (initTimeout). */
  private step<T>(doing: string, p: Promise<T>): Promise<T> {
    return bounded(this.address, doing, this.callMs, p);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.link.close();
  }

  /** The waits of the redelivery policy: one retry queue each. */
  private retryDelays(): number[] {
    return redeliveryDelays(this.s.redelivery, this.s.maxDeliveryCount);
  }

  private secrets(): Redactor {
    return this.redactor;
  }

  private async count(queue: string): Promise<number> {
    const ch = await this.adminChannel(this.callMs, DEPTH);
    try {
      return (await bounded(this.address, DEPTH, this.callMs, ch.checkQueue(queue))).messageCount;
    } catch (err) {
      if (err instanceof BrokerError) throw err;
      throw new BrokerError(`${this.subject}: cannot read queue '${queue}': ${describeAmqpError(err, this.secrets())}`);
    }
  }

  /** `doing`: fail at once when the broker is known to be down (see AmqpLink.get). */
  private async adminChannel(timeoutMs: number, doing?: string): Promise<Channel> {
    const conn = await this.link.get(timeoutMs, doing === undefined ? {} : { doing });
    if (this.admin?.conn === conn) return this.admin.ch;
    const ch = await conn.createChannel();
    const entry = { conn, ch };
    ch.on('error', () => undefined); // a failed passive declare closes the channel: the next call opens another
    ch.on('close', () => { if (this.admin === entry) this.admin = undefined; });
    this.admin = entry;
    return ch;
  }

  private async publishChannel(timeoutMs: number, doing: string): Promise<ConfirmChannel> {
    const conn = await this.link.get(timeoutMs, { doing });
    if (this.pub?.conn === conn) return this.pub.ch;
    const ch = await conn.createConfirmChannel();
    const entry = { conn, ch };
    ch.on('error', (err: Error) => this.log.warn(`RabbitMQ publish channel error: ${describeAmqpError(err, this.secrets())}`));
    ch.on('close', () => { if (this.pub === entry) this.pub = undefined; });
    ch.on('return', (msg: { properties: { messageId?: unknown } }) => {
      if (typeof msg.properties.messageId === 'string') this.returned.add(msg.properties.messageId);
    });
    this.pub = entry;
    return ch;
  }
}

function confirmPublish(ch: ConfirmChannel, queue: string, data: Buffer, opts: Options.Publish): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      ch.sendToQueue(queue, data, opts, (err: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(`broker refused the message (${String(err)})`));
        else resolve();
      });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** Dead letters taken at once before their publishes are awaited and they are acked. */
const SCAN_BATCH = 100;

interface ScanAction {
  /** Before the first message is read (only when there is one). */
  prepare?(ch: ConfirmChannel): Promise<void>;
  /** What taking one means besides acking it off the dead-letter queue (a requeue publishes it). */
  take?(ch: ConfirmChannel, m: GetMessage): Promise<void>;
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 404;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // channel already closed: the broker requeues what was not acked
  }
}

/**
 * The acks of one consumer channel. Every delivery is tracked in tag order from its arrival until it is acked; the
 * messages whose outcome is applied (handled, or republished to a retry or dead-letter queue and confirmed) are
 * acked together after the event-loop turn: the finished run at the front of the line with one `multiple` ack, each
 * finished one behind a message still in a handler with an ack of its own (AMQP has no ack of a list, and holding it
 * back would keep its prefetch slot). A lone answer, with no other handler working, is acked at once. A message
 * whose outcome could not be applied stays unacked (the broker redelivers it when the channel closes), and a
 * `multiple` ack never reaches past it.
 */
export class AckBatch {
  /** Unacked deliveries, lowest tag first; `done`: its outcome is applied and it waits for its ack. */
  private readonly line: Array<{ msg: Message; done: boolean; abandoned?: boolean }> = [];
  private working = 0;
  private doneCount = 0;
  private queued = false;

  constructor(private readonly ch: Pick<Channel, 'ack'>) {}

  /** A delivery handed to a handler (deliveries come in tag order). */
  delivered(msg: Message): void {
    this.line.push({ msg, done: false });
    this.working++;
  }

  /** The message's outcome is applied: ack it with this turn's others. */
  done(msg: Message): void {
    const entry = this.line.find((e) => e.msg === msg);
    if (!entry || entry.done || entry.abandoned) return;
    entry.done = true;
    this.working--;
    this.doneCount++;
    if (this.working === 0) this.flush();
    else if (!this.queued) {
      this.queued = true;
      setImmediate(() => this.flush());
    }
  }

  /** The outcome could not be applied: the message stays unacked, and no `multiple` ack covers it. */
  abandoned(msg: Message): void {
    const entry = this.line.find((e) => e.msg === msg);
    if (entry && !entry.done && !entry.abandoned) {
      entry.abandoned = true;
      this.working--;
      if (this.working === 0 && this.doneCount > 0) this.flush();
    }
  }

  /** How many deliveries wait for an ack or an outcome (for tests). */
  get unacked(): number {
    return this.line.length;
  }

  /** Sends the acks waiting now. A closed channel throws: the broker requeues what it holds, nothing to do. */
  flush(): void {
    this.queued = false;
    if (this.doneCount === 0) return;
    let front = 0;
    while (front < this.line.length && this.line[front]!.done) front++;
    const last = this.line[front - 1];
    if (last) safely(() => this.ch.ack(last.msg, front > 1));
    const rest = this.line.splice(0, front).length;
    this.doneCount -= rest;
    for (let i = 0; i < this.line.length && this.doneCount > 0;) {
      const e = this.line[i]!;
      if (!e.done) {
        i++;
        continue;
      }
      safely(() => this.ch.ack(e.msg));
      this.line.splice(i, 1);
      this.doneCount--;
    }
  }
}
