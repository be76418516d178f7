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
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { BrokerError, errorMessage } from '../../errors.js';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, QueueDepth,
  ReceiveOptions, ResolvedComponent,
} from '../types.js';
import { settle } from '../types.js';
import type { Logger } from '../../util/log.js';
import { AmqpLink, describeAmqpError } from './link.js';
import { ManagementClient } from './management.js';
import {
  DEAD_LETTER_REASON_HEADER, DELIVERY_COUNT_HEADER, SOURCE_QUEUE_HEADER, deliveryCountOf, metadataOf, publishOptions,
  republishOptions,
} from './message.js';
import type { RabbitmqSettings } from './metadata.js';
import { managementUrlFromAmqp, vhostOf } from './url.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import { rabbitmqMetadata } from './metadata.js';
import { sleep, whenAborted } from '../../util/abort.js';
import { redeliveryDelayMs, redeliveryDelays } from '../redelivery.js';
import { retryQueueName, retryQueueOptions } from './retry.js';
import { DEPTH, SEND, bounded, receiveUnreachable, type BrokerAddress } from '../unreachable.js';
import { BrokerState } from '../broker-state.js';

export class RabbitmqBackend implements Backend, Pingable {
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
        const p: Promise<void> = this.handle(ch, msg, handler).finally(() => active.delete(p));
        active.add(p);
      }, { noAck: false });
      state.working();
      await Promise.race([ended, aborted]);
      if (signal.aborted) await ch.cancel(consumerTag).catch(() => undefined);
    } finally {
      // Waiting here keeps "at most concurrency handler calls" true across a reconnect too.
      while (active.size > 0) await Promise.allSettled([...active]);
      await ch.close().catch(() => undefined);
    }
  }

  private async handle(ch: ConfirmChannel, msg: ConsumeMessage, handler: MessageHandler): Promise<void> {
    const deliveryCount = deliveryCountOf(msg);
    this.localInFlight++;
    try {
      let ok = false;
      try {
        ok = settle(await handler({
          id: (msg.properties.messageId as string | undefined) ?? `${msg.fields.deliveryTag}`,
          data: msg.content,
          metadata: metadataOf(msg),
          deliveryCount,
        })).ok;
      } catch (err) {
        this.log.debug(`handler failed: ${errorMessage(err)}`);
      }
      if (ok) {
        safely(() => ch.ack(msg));
      } else if (deliveryCount >= this.s.maxDeliveryCount) {
        await confirmPublish(ch, this.s.deadLetterQueue, msg.content, republishOptions(msg, {
          [DELIVERY_COUNT_HEADER]: deliveryCount,
          [DEAD_LETTER_REASON_HEADER]: `failed ${deliveryCount} deliveries (maxDeliveryCount ${this.s.maxDeliveryCount})`,
          [SOURCE_QUEUE_HEADER]: this.s.queueName,
        }, false));
        ch.ack(msg);
        this.log.warn(`message ${String(msg.properties.messageId ?? '')} dead-lettered to '${this.s.deadLetterQueue}' after ${deliveryCount} deliveries`);
      } else {
        // The redelivery backoff: through the retry queue of this wait, or straight back when there is none.
        const delay = redeliveryDelayMs(this.s.redelivery, deliveryCount);
        const to = delay > 0 ? retryQueueName(this.s.queueName, delay) : this.s.queueName;
        // Declared right before use: a retry queue deleted by hand must not swallow the message.
        if (delay > 0) await ch.assertQueue(to, retryQueueOptions(this.s.queueName, delay));
        await confirmPublish(ch, to, msg.content, republishOptions(msg, { [DELIVERY_COUNT_HEADER]: deliveryCount }, true));
        ch.ack(msg);
      }
    } catch (err) {
      // The channel went away before the outcome was applied: the broker puts the message back by itself.
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

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const conn = await this.link.get(this.waitMs);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const out: DeadLetter[] = [];
    try {
      // No dead-letter queue yet (nothing ever read this queue): nothing was dead-lettered.
      const exists = await ch.checkQueue(this.s.deadLetterQueue).then(() => true, (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)));
      while (exists && out.length < limit) {
        const m = await ch.get(this.s.deadLetterQueue, { noAck: false });
        if (m === false) break;
        const h = m.properties.headers ?? {};
        out.push({
          id: (m.properties.messageId as string | undefined) ?? `${m.fields.deliveryTag}`,
          data: m.content,
          metadata: metadataOf(m),
          deliveryCount: Number(h[DELIVERY_COUNT_HEADER] ?? 0),
          reason: String(h[DEAD_LETTER_REASON_HEADER] ?? 'dead-lettered'),
        });
      }
    } finally {
      // Closing without acking puts every peeked message back, in order.
      await ch.close().catch(() => undefined);
    }
    return out;
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


