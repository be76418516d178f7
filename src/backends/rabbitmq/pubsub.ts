/**
 * pubsub.rabbitmq: Dapr's RabbitMQ pub/sub on one AMQP connection that comes back by itself (link.ts).
 *
 * Names and declarations are daprd's, so a queue daprd made is declared again unchanged and KEDA's rabbitmq trigger
 * reads the queue an app consumes: each topic is an exchange named after it (exchangeKind, durable,
 * deletedWhenUnused); each app's subscription the queue `<consumerID>-<topic>` (consumerID defaults to the app id;
 * subscription metadata queueName overrides it) bound to it with the subscription's routingKey(s); with
 * enableDeadLetter, the queue dead-letters into the fanout exchange `dlx-<queue>`, bound to the queue `dlq-<queue>`.
 *
 * A failed event is nacked as daprd nacks it: requeueInFailure false (the default) drops it, or dead-letters it with
 * enableDeadLetter; requeueInFailure true puts it back in the queue. qscale holds it back first for the shared
 * redelivery wait (retryBackoff, doubling to retryBackoffMax; 0s = at once as daprd), so a poison event does not
 * spin. An event in hand when the subscriber stops goes back to the queue, whatever requeueInFailure says, as in
 * daprd. Published events are always confirmed by the broker before publish() resolves.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import type { MetadataSpec } from '../../components/metadata.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import type { Logger } from '../../util/log.js';
import { sleep, whenAborted } from '../../util/abort.js';
import type { PubSub, PubSubContext, PubSubDefinition, SubscribeRequest } from '../../pubsub/types.js';
import { settle, type MessageHandler, type MessageMetadata, type ReceiveOptions, type ResolvedComponent } from '../types.js';
import { BrokerState } from '../broker-state.js';
import { redeliveryDelayMs } from '../redelivery.js';
import { SEND, bounded, receiveUnreachable, type BrokerAddress } from '../unreachable.js';
import { AmqpLink, describeAmqpError } from './link.js';
import { pubsubDeliveryCount, pubsubMetadataOf, pubsubPublishOptions } from './pubsub-message.js';
import {
  RABBITMQ_PUBSUB_TYPE, parseRabbitmqPubSub, rabbitmqPubSubMetadata, type RabbitmqPubSubSettings,
} from './pubsub-metadata.js';

const PREPARE = 'prepare the subscription';

/** daprd's names for a subscription's dead-letter exchange and queue. */
export function deadLetterNames(queue: string): { exchange: string; queue: string } {
  return { exchange: `dlx-${queue}`, queue: `dlq-${queue}` };
}

/** The queue daprd consumes for `topic`: subscription metadata queueName, else `<consumerID>-<topic>`. */
export function rabbitmqSubscriptionQueue(consumerID: string, sub: SubscribeRequest): string {
  const explicit = sub.metadata.queueName;
  return explicit !== undefined && explicit !== '' ? explicit : `${consumerID}-${sub.topic}`;
}

/** A subscription's declaration: the queue's arguments, read from the component and the subscription metadata. */
interface Topology {
  queue: string;
  args: Record<string, unknown>;
  routingKeys: string[];
}

export class RabbitmqPubSub implements PubSub {
  readonly name: string;
  readonly type: string;
  private readonly link: AmqpLink;
  private readonly log: Logger;
  private readonly subject: string;
  private readonly address: BrokerAddress;
  private readonly redactor: Redactor;
  private readonly consumerID: string;
  /** Bound of one publish or prepare: an outage never blocks its caller longer. */
  private readonly callMs: number;
  private pub: { conn: ChannelModel; ch: ConfirmChannel; exchanges: Set<string> } | undefined;
  private readonly said = new Set<string>();
  private closed = false;

  constructor(private readonly component: ResolvedComponent, private readonly s: RabbitmqPubSubSettings, ctx: PubSubContext) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    this.log = ctx.logger.child({ component: component.name });
    this.consumerID = s.consumerID ?? ctx.appId;
    this.redactor = redactorFor(rabbitmqPubSubMetadata.fields, component.metadata);
    this.link = new AmqpLink({
      url: s.url, tls: s.tls, reconnectWaitMs: s.reconnectWaitMs, logger: this.log, subject: this.subject,
      connectionName: s.connectionName ?? `qscale:${component.name}`, redactor: this.redactor,
      heartbeatSeconds: s.heartbeatSeconds, reconnectField: 'reconnectWaitSeconds',
    });
    this.callMs = component.initTimeoutMs;
    this.address = { subject: this.subject, broker: 'RabbitMQ', where: this.link.where };
  }

  async init(): Promise<void> {
    const started = Date.now();
    for (const n of this.s.notices) this.log.warn(n);
    await this.link.open(this.component.initTimeoutMs);
    this.log.info(`connected to RabbitMQ at ${this.link.where}, consumer id '${this.consumerID}' (${Date.now() - started} ms)`);
  }

  async publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<void> {
    if (this.closed) throw new BrokerError(`${this.subject}: closed`);
    const opts = pubsubPublishOptions(metadata, this.s, (why) => this.once(`drop:${why}`, () => this.log.warn(`${this.subject}: ${why} (said once)`)));
    const routingKey = metadata.routingKey ?? '';
    const deadline = Date.now() + this.callMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    for (;;) {
      // A broker known to be down fails the publish here, at once.
      const entry = await this.publishChannel(left());
      try {
        await bounded(this.address, SEND, left(), this.ensureExchange(entry, topic));
        await bounded(this.address, SEND, left(), confirmPublish(entry.ch, topic, routingKey, data, opts));
        return;
      } catch (err) {
        if (err instanceof BrokerError) throw err;
        // A dropped connection loses unconfirmed publishes: publish again once it is back (at-least-once).
        const dropped = this.pub !== entry && this.link.current !== entry.conn;
        if (this.closed || Date.now() >= deadline || !dropped) {
          throw new BrokerError(`${this.subject}: publish to topic '${topic}' (exchange '${topic}') not confirmed: ${this.describe(err)}${exchangeHint(err)}`);
        }
      }
    }
  }

  async prepare(sub: SubscribeRequest): Promise<void> {
    const t = this.topology(sub);
    const conn = await this.link.get(this.callMs, { doing: PREPARE });
    const ch = await conn.createChannel();
    ch.on('error', () => undefined); // a refused declaration closes the channel; the error comes from the call
    try {
      await bounded(this.address, PREPARE, this.callMs, this.declare(ch, sub.topic, t));
      this.log.debug(`subscription of topic '${sub.topic}' prepared: queue '${t.queue}'`);
    } catch (err) {
      if (err instanceof BrokerError) throw err;
      throw this.declareError(sub.topic, t.queue, err);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async subscribe(sub: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const t = this.topology(sub);
    const { signal } = options;
    const limit = this.s.single ? 1 : Math.max(1, Math.floor(options.concurrency));
    const state = new BrokerState(options.onBrokerState, this.log);
    const unlisten = this.link.onReconnectFailure((cause) => state.lost(receiveUnreachable(this.address, cause)));
    const failures = new FailureCounts();
    try {
      while (!signal.aborted && !this.closed) {
        let conn: ChannelModel;
        try {
          conn = await this.link.get(this.s.reconnectWaitMs + 60_000, { signal });
        } catch {
          continue;
        }
        try {
          await this.consumeSession(conn, sub.topic, t, handler, limit, signal, state, failures);
        } catch (err) {
          if (signal.aborted || this.closed) break;
          this.log.debug(`consuming '${t.queue}' stopped: ${this.describe(err)}; retrying`);
          await sleep(Math.min(1000, this.s.reconnectWaitMs), signal);
          // A channel that died with its connection is the link's to report; one whose connection lives on failed
          // for a reason of the subscription's own (declared otherwise, deleted, no access): the user must act.
          if (this.link.current === conn && !signal.aborted) state.lost(this.declareError(sub.topic, t.queue, err));
        }
      }
    } finally {
      unlisten();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.link.close();
  }

  /** One channel's life: declare as daprd does on every (re)connect, consume until it closes or the signal aborts. */
  private async consumeSession(
    conn: ChannelModel, topic: string, t: Topology, handler: MessageHandler, limit: number, signal: AbortSignal,
    state: BrokerState, failures: FailureCounts,
  ): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log.debug(`RabbitMQ channel error: ${this.describe(err)}`));
    const lost = new AbortController();
    const ended = new Promise<void>((resolve) => ch.once('close', () => {
      lost.abort();
      resolve();
    }));
    // What cuts a requeue wait short: the subscriber stopping, or the channel going (the broker requeues by itself).
    const stopping = AbortSignal.any([signal, lost.signal]);
    const active = new Set<Promise<void>>();
    const backlog: ConsumeMessage[] = [];
    const aborted = whenAborted(signal);
    const start = (msg: ConsumeMessage): void => {
      const p: Promise<void> = this.handle(ch, topic, msg, handler, stopping, failures).finally(() => {
        active.delete(p);
        pump();
      });
      active.add(p);
    };
    // autoAck: the broker pushes without limit, so deliveries wait here for a free handler (and are lost on a stop).
    const pump = (): void => {
      while (backlog.length > 0 && active.size < limit && !signal.aborted) start(backlog.shift()!);
    };
    try {
      await this.declare(ch, topic, t);
      if (!this.s.autoAck) {
        const prefetch = this.s.prefetchCount > 0 ? Math.min(this.s.prefetchCount, limit) : limit;
        await ch.prefetch(prefetch, false);
      }
      const { consumerTag } = await ch.consume(t.queue, (msg) => {
        if (msg === null) {
          // The broker cancelled the consumer (queue deleted): start over, which declares it again.
          void ch.close().catch(() => undefined);
          return;
        }
        if (signal.aborted) {
          if (!this.s.autoAck) safely(() => ch.nack(msg, false, true));
          return;
        }
        if (this.s.autoAck) {
          backlog.push(msg);
          pump();
        } else {
          start(msg);
        }
      }, { noAck: this.s.autoAck, consumerTag: uniqueConsumerTag(t.queue) });
      state.working();
      await Promise.race([ended, aborted]);
      if (signal.aborted) await ch.cancel(consumerTag).catch(() => undefined);
    } finally {
      if (backlog.length > 0) this.log.warn(`${backlog.length} event(s) of queue '${t.queue}' were taken with autoAck and not handled before the stop: they are lost`);
      // Waiting here keeps "at most concurrency handler calls" true across a reconnect too.
      while (active.size > 0) await Promise.allSettled([...active]);
      await ch.close().catch(() => undefined);
    }
  }

  private async handle(
    ch: Channel, topic: string, msg: ConsumeMessage, handler: MessageHandler, stopping: AbortSignal, failures: FailureCounts,
  ): Promise<void> {
    const key = eventKey(msg);
    const deliveryCount = Math.max(pubsubDeliveryCount(msg), failures.get(key) + 1);
    let outcome: { ok: boolean; reason: string };
    try {
      outcome = settle(await handler({
        id: key,
        data: msg.content,
        metadata: pubsubMetadataOf(msg, this.s.propertiesToMetadata),
        deliveryCount,
        ...(typeof msg.properties.timestamp === 'number' ? { enqueuedAt: msg.properties.timestamp * 1000 } : {}),
      }));
    } catch (err) {
      outcome = settle(undefined, err);
    }
    if (this.s.autoAck) {
      if (!outcome.ok) this.log.debug(`event ${key} of topic '${topic}' failed (${outcome.reason}); autoAck: the broker has already forgotten it`);
      return;
    }
    if (outcome.ok) {
      failures.delete(key);
      safely(() => ch.ack(msg));
      return;
    }
    if (stopping.aborted) {
      // Stopping (or the channel is gone): back in the queue, as daprd leaves it unsettled when its context ends.
      safely(() => ch.nack(msg, false, true));
      return;
    }
    if (this.s.requeueInFailure) {
      const n = failures.bump(key);
      await sleep(redeliveryDelayMs(this.s.redelivery, n), stopping);
      safely(() => ch.nack(msg, false, true));
      return;
    }
    failures.delete(key);
    safely(() => ch.nack(msg, false, false));
    if (this.s.enableDeadLetter) {
      this.log.debug(`event ${key} of topic '${topic}' failed (${outcome.reason}): dead-lettered to '${deadLetterNames(queueOf(msg)).queue}'`);
    } else {
      this.once(`dropped:${topic}`, () => this.log.warn(`${this.subject}: an event of topic '${topic}' failed (${outcome.reason}) and was dropped, ` +
        'as daprd drops it with requeueInFailure false: set requeueInFailure: "true" to have it delivered again, or enableDeadLetter: "true" to keep it (said once per topic)'));
    }
  }

  /** The subscription's queue and arguments; subscription metadata daprd reads is checked here, before any call. */
  private topology(sub: SubscribeRequest): Topology {
    if (this.consumerID === '') throw new ConfigError(`${this.subject}: consumerID is required for a subscription without a queueName (no app id either)`, { field: 'consumerID' });
    const queue = rabbitmqSubscriptionQueue(this.consumerID, sub);
    const md = sub.metadata;
    const bad = (field: string, what: string): ConfigError =>
      new ConfigError(`${this.subject}: subscription to topic '${sub.topic}': metadata '${field}' must be ${what}, got '${md[field] ?? ''}'`, { field });
    const uint = (field: string): number | undefined => {
      const v = md[field];
      if (v === undefined || v === '') return undefined;
      if (!/^\d+$/.test(v)) throw bad(field, 'a whole number');
      return Number(v);
    };
    const args: Record<string, unknown> = {};
    if (this.s.enableDeadLetter) args['x-dead-letter-exchange'] = deadLetterNames(queue).exchange;
    Object.assign(args, this.lengthArgs());
    const maxPriority = uint('maxPriority');
    if (maxPriority !== undefined) args['x-max-priority'] = Math.min(255, maxPriority);
    const queueType = md.queueType;
    if (queueType !== undefined && queueType !== '' && queueType !== 'classic' && queueType !== 'quorum') throw bad('queueType', 'classic or quorum');
    args['x-queue-type'] = queueType || 'classic';
    if (/^(1|true|t|yes|y|on)$/i.test(md.singleActiveConsumer ?? '')) args['x-single-active-consumer'] = true;
    const maxLenBytes = uint('maxLenBytes');
    if (maxLenBytes !== undefined) args['x-max-length-bytes'] = maxLenBytes;
    const maxLen = uint('maxLen');
    if (maxLen !== undefined) args['x-max-length'] = maxLen;
    return { queue, args, routingKeys: (md.routingKey ?? '').split(',') };
  }

  private lengthArgs(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.s.maxLen !== undefined) out['x-max-length'] = this.s.maxLen;
    if (this.s.maxLenBytes !== undefined) out['x-max-length-bytes'] = this.s.maxLenBytes;
    return out;
  }

  /** daprd's prepareSubscription: the topic's exchange, the dead-letter pair, the queue, its bindings. */
  private async declare(ch: Channel, topic: string, t: Topology): Promise<void> {
    await ch.assertExchange(topic, this.s.exchangeKind, { durable: this.s.durable, autoDelete: this.s.autoDelete });
    if (this.s.enableDeadLetter) {
      const dl = deadLetterNames(t.queue);
      // Always durable, as daprd declares them; the queue lazy, so dead letters stay on disk.
      await ch.assertExchange(dl.exchange, 'fanout', { durable: true, autoDelete: this.s.autoDelete });
      await ch.assertQueue(dl.queue, { durable: true, autoDelete: this.s.autoDelete, arguments: { ...this.lengthArgs(), 'x-queue-mode': 'lazy' } });
      await ch.bindQueue(dl.queue, dl.exchange, '');
    }
    await ch.assertQueue(t.queue, { durable: this.s.durable, autoDelete: this.s.autoDelete, arguments: t.args });
    for (const key of t.routingKeys) await ch.bindQueue(t.queue, topic, key);
  }

  private declareError(topic: string, queue: string, err: unknown): BrokerError {
    const cause = this.describe(err);
    let hint = exchangeHint(err);
    if (/inequivalent arg/i.test(cause) && /queue/i.test(cause)) {
      hint = `: queue '${queue}' exists with other settings (durable, deletedWhenUnused, enableDeadLetter, maxLen, maxLenBytes or the subscription's queueType / maxPriority); ` +
        'set the component like the side that declared it, or delete the queue';
    }
    return new BrokerError(`${this.subject}: cannot ${PREPARE} of topic '${topic}' (queue '${queue}') on RabbitMQ at ${this.link.where}: ${cause}${hint}`);
  }

  private async ensureExchange(entry: { ch: ConfirmChannel; exchanges: Set<string> }, topic: string): Promise<void> {
    if (entry.exchanges.has(topic)) return;
    await entry.ch.assertExchange(topic, this.s.exchangeKind, { durable: this.s.durable, autoDelete: this.s.autoDelete });
    entry.exchanges.add(topic);
  }

  private async publishChannel(timeoutMs: number): Promise<{ conn: ChannelModel; ch: ConfirmChannel; exchanges: Set<string> }> {
    const conn = await this.link.get(timeoutMs, { doing: SEND });
    if (this.pub?.conn === conn) return this.pub;
    const ch = await conn.createConfirmChannel();
    const entry = { conn, ch, exchanges: new Set<string>() };
    ch.on('error', (err: Error) => this.log.debug(`RabbitMQ publish channel error: ${this.describe(err)}`));
    ch.on('close', () => { if (this.pub === entry) this.pub = undefined; });
    this.pub = entry;
    return entry;
  }

  private describe(err: unknown): string {
    return describeAmqpError(err, this.redactor);
  }

  private once(key: string, say: () => void): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    say();
  }
}

function exchangeHint(err: unknown): string {
  const msg = errorMessage(err);
  return /inequivalent arg/i.test(msg) && /exchange/i.test(msg)
    ? ': the exchange exists with another kind or durability; set exchangeKind, durable and deletedWhenUnused like the side that declared it, or delete the exchange'
    : '';
}

function confirmPublish(ch: ConfirmChannel, exchange: string, routingKey: string, data: Buffer, opts: Options.Publish): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      ch.publish(exchange, routingKey, data, opts, (err: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(`the broker refused the event (${String(err)})`));
        else resolve();
      });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** Unique per consumer, as daprd makes it (a reused tag would close the channel); AMQP allows 255 bytes. */
function uniqueConsumerTag(queue: string): string {
  const tag = `${queue}-${randomUUID()}`;
  return tag.length > 255 ? tag.slice(tag.length - 255) : tag;
}

/** What names an event across its redeliveries: its message id, else its bytes. */
function eventKey(msg: ConsumeMessage): string {
  const id = msg.properties.messageId as unknown;
  if (typeof id === 'string' && id !== '') return id;
  return createHash('sha1').update(msg.content).digest('hex').slice(0, 20);
}

function queueOf(msg: ConsumeMessage): string {
  return String((msg.fields as { queue?: unknown }).queue ?? '');
}

/** Failed deliveries per event in this process: what the requeue wait doubles on (bounded; oldest forgotten). */
class FailureCounts {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  bump(key: string): number {
    const n = this.get(key) + 1;
    this.counts.delete(key);
    this.counts.set(key, n);
    if (this.counts.size > 10_000) this.counts.delete(this.counts.keys().next().value as string);
    return n;
  }

  delete(key: string): void {
    this.counts.delete(key);
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // channel already closed: the broker requeues what was not settled
  }
}

export const rabbitmqPubSub: PubSubDefinition = {
  types: [RABBITMQ_PUBSUB_TYPE],
  // The registry holds specs of every shape; precise field types stay with this module's own parse calls.
  metadata: rabbitmqPubSubMetadata as unknown as MetadataSpec,
  localOnly: false,
  create(component, ctx) {
    return new RabbitmqPubSub(component, parseRabbitmqPubSub(component), ctx);
  },
};

