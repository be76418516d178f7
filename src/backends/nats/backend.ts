/**
 * NATS JetStream behind `bindings.qscale.nats-jetstream`: a work-queue stream and a durable pull consumer with
 * explicit acks. ack_wait is the visibility timeout, extended by progress acks (working()) while the handler works;
 * a failed handler naks with the redelivery wait as its delay: JetStream itself holds the message back that long.
 *
 * Dead letters: on the last allowed delivery that fails, the message is published to the stream `<stream>-dlq`
 * (confirmed by JetStream, de-duplicated by a message id) and then termed. Doing it in the failure path rather than
 * from the MAX_DELIVERIES advisory means no second subscriber that must be running at the right moment (advisories
 * are not stored), and the copy is made while the message is still in hand. The consumer's max_deliver is one more
 * than maxDeliveryCount: if a receiver dies during the last delivery, the extra delivery moves the message to the
 * dead-letter stream without calling the handler again.
 */
import type {
  StorageType,
  Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, NatsConnection,
} from 'nats';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, QueueDepth,
  ReceiveOptions, ResolvedComponent,
} from '../types.js';
import { settle } from '../types.js';
import { BrokerError, errorMessage } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { natsMetadata } from './metadata.js';
import { connectNats, describe, natsLib, scrubNats, type NatsTarget } from './connect.js';
import { sleep } from '../../util/abort.js';
import { withTimeout } from '../../util/timeout.js';
import { DEPTH, SEND, bounded, noAnswer, receiveUnreachable, unreachable, type BrokerAddress } from '../unreachable.js';
import { BrokerState } from '../broker-state.js';
import { Wakeup } from '../../util/wakeup.js';
import { redeliveryDelayMs, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';

const FETCH_EXPIRES_MS = 1000;
const REASON = 'Qscale-Dead-Letter-Reason';
const COUNT = 'Qscale-Delivery-Count';
const ORIGIN = 'Qscale-Original-Id';

export class NatsBackend implements Backend, Pingable {
  readonly name: string;
  readonly type: string;
  private readonly subject: string;
  private readonly target: NatsTarget;
  private readonly stream: string;
  private readonly natsSubject: string;
  private readonly durable: string;
  private readonly dlq: string;
  private readonly ackWaitMs: number;
  private readonly maxDeliveries: number;
  private readonly redelivery: RedeliveryPolicy;
  private readonly handlerCap: number;
  private readonly createStream: boolean;
  private readonly storage: StorageType;
  private readonly initTimeoutMs: number;
  private readonly logger: Logger;
  private nc: NatsConnection | undefined;
  private jsm: JetStreamManager | undefined;
  private js: JetStreamClient | undefined;
  private closed = false;
  /** Between a disconnect and the reconnect: the server is known to be unreachable. */
  private disconnected = false;
  /** Counts disconnects and reconnects: a pull that saw none in its life really reached the server. */
  private connectionChanges = 0;
  /** Receive loops told of each failed reconnect attempt (see watchStatus). */
  private readonly lostListeners = new Set<() => void>();
  private readonly batches = new Set<ConsumerMessages>();

  constructor(component: ResolvedComponent, ctx: BackendContext) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    const md = natsMetadata.parse(component.metadata, { subject: this.subject, where: component.where });
    this.target = { urls: md.natsURL, user: md.user, password: md.password, token: md.token };
    this.stream = md.stream;
    this.natsSubject = md.subject ?? md.stream;
    this.durable = md.consumer ?? `${md.stream}-consumer`;
    this.dlq = `${md.stream}-dlq`;
    this.ackWaitMs = md.ackWait;
    this.maxDeliveries = md.maxDeliveryCount;
    this.redelivery = redeliveryPolicy(md, { subject: this.subject, where: component.where });
    this.handlerCap = md.maxConcurrentHandlers ?? Number.POSITIVE_INFINITY;
    this.createStream = md.createStream;
    this.storage = md.storage === 'memory' ? natsLib().StorageType.Memory : natsLib().StorageType.File;
    this.initTimeoutMs = component.initTimeoutMs;
    this.logger = ctx.logger.child({ component: component.name, stream: this.stream });
  }

  private brokerError(what: string, err: unknown): BrokerError {
    return new BrokerError(
      `${this.subject}: ${what} NATS JetStream at ${describe(this.target)}: ${scrubNats(errorMessage(err), this.target)}`,
      { cause: err },
    );
  }

  async init(): Promise<void> {
    if (this.nc) return;
    let nc: NatsConnection | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within initTimeout (${this.initTimeoutMs} ms)`)), this.initTimeoutMs);
    });
    try {
      await Promise.race([
        (async () => {
          nc = await connectNats(this.target, `qscale:${this.name}`, this.initTimeoutMs);
          const jsm = await nc.jetstreamManager({ timeout: this.initTimeoutMs });
          await this.ensureStreams(jsm);
          await this.ensureConsumer(jsm);
          this.jsm = jsm;
          this.js = nc.jetstream({ timeout: this.initTimeoutMs });
        })(),
        timeout,
      ]);
    } catch (err) {
      await nc?.close().catch(() => undefined);
      throw err instanceof BrokerError ? err : this.brokerError('cannot use', err);
    } finally {
      clearTimeout(timer);
    }
    this.nc = nc;
    void this.watchStatus(nc);
    this.logger.info({ server: describe(this.target), consumer: this.durable }, 'NATS JetStream queue ready');
  }

  /**
   * Follows the connection. Debug lines only: receive loops report an outage (onBrokerState) and send and depth fail
   * with a clear error, so the user hears of it once. The client starts a reconnect attempt at once after a
   * disconnect and each 250 ms after a failed one: from the second attempt on, the server is away, not just a
   * dropped connection that came right back.
   */
  private async watchStatus(nc: NatsConnection | undefined): Promise<void> {
    if (!nc) return;
    let attempts = 0;
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.disconnected = true;
        this.connectionChanges++;
        attempts = 0;
        this.logger.debug('NATS connection lost, reconnecting');
      } else if (s.type === 'reconnecting') {
        if (this.disconnected && ++attempts >= 2) for (const l of [...this.lostListeners]) l();
      } else if (s.type === 'reconnect') {
        this.disconnected = false;
        this.connectionChanges++;
        this.logger.debug('NATS connection back');
        for (const b of this.batches) b.stop();
      }
    }
  }

  /**
   * One request of send / depth, bounded by initTimeout. While the connection is lost it fails at once: the client
   * would buffer a publish and keep the caller waiting until the server is back or the request times out.
   */
  private async call<T>(doing: string, run: () => Promise<T>): Promise<T> {
    const address: BrokerAddress = { subject: this.subject, broker: 'NATS JetStream', where: describe(this.target) };
    if (this.disconnected || this.nc?.isClosed()) {
      throw unreachable(address, doing, 'connection lost', 'qscale reconnects every 250 ms');
    }
    try {
      return await bounded(address, doing, this.initTimeoutMs, run());
    } catch (err) {
      // The connection went down under the request: say so rather than only that no answer came.
      if (this.disconnected) throw unreachable(address, doing, 'connection lost', 'qscale reconnects every 250 ms', true);
      if (err instanceof BrokerError) throw err;
      // The client's own request timeout: the same words as ours.
      if ((err as { code?: unknown }).code === 'TIMEOUT') throw noAnswer(address, doing, this.initTimeoutMs, err);
      throw this.brokerError(`cannot ${doing}:`, err);
    }
  }

  private async ensureStreams(jsm: JetStreamManager): Promise<void> {
    const info = await jsm.streams.info(this.stream).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!info) {
      if (!this.createStream) {
        throw new BrokerError(`${this.subject}: stream '${this.stream}' not found on NATS JetStream at ${describe(this.target)} (createStream is false)`);
      }
      await jsm.streams.add({
        name: this.stream,
        subjects: [this.natsSubject],
        retention: natsLib().RetentionPolicy.Workqueue,
        storage: this.storage,
      });
    } else if (!info.config.subjects?.some((s) => subjectMatches(s, this.natsSubject))) {
      throw new BrokerError(
        `${this.subject}: stream '${this.stream}' does not take subject '${this.natsSubject}' (its subjects: ${(info.config.subjects ?? []).join(', ')})`,
      );
    }
    const dlq = await jsm.streams.info(this.dlq).catch(() => undefined);
    if (!dlq) await jsm.streams.add({ name: this.dlq, subjects: [this.dlq], storage: this.storage });
  }

  private async ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const wanted = { ack_wait: natsLib().nanos(this.ackWaitMs), max_deliver: this.maxDeliveries + 1 };
    const existing = await jsm.consumers.info(this.stream, this.durable).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!existing) {
      await jsm.consumers.add(this.stream, {
        durable_name: this.durable,
        ack_policy: natsLib().AckPolicy.Explicit,
        deliver_policy: natsLib().DeliverPolicy.All,
        filter_subject: this.natsSubject,
        ...wanted,
      });
    } else if (existing.config.ack_wait !== wanted.ack_wait || existing.config.max_deliver !== wanted.max_deliver) {
      await jsm.consumers.update(this.stream, this.durable, wanted);
    }
  }

  private client(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (!this.js || !this.jsm || this.closed) throw new BrokerError(`${this.subject}: used before init() or after close()`);
    return { js: this.js, jsm: this.jsm };
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    const { js } = this.client();
    const h = natsLib().headers();
    for (const [k, v] of Object.entries(metadata)) h.set(k, v);
    await this.call(SEND, () => js.publish(this.natsSubject, data, { headers: h }));
  }

  async receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { js } = this.client();
    const { signal } = options;
    const limit = Math.max(1, Math.min(options.concurrency, this.handlerCap));
    const inFlight = new Set<Promise<void>>();
    let consumer: Consumer | undefined;
    const state = new BrokerState(options.onBrokerState, this.logger);
    const address: BrokerAddress = { subject: this.subject, broker: 'NATS JetStream', where: describe(this.target) };
    const lost = (): void => state.lost(receiveUnreachable(address, 'connection lost'));
    this.lostListeners.add(lost);
    // A finished handler or a stop wakes the loop; nothing is left behind per wait (see util/wakeup.ts).
    const wake = new Wakeup();
    signal.addEventListener('abort', wake.poke);
    while (!signal.aborted && !this.closed) {
      const free = limit - inFlight.size;
      if (free <= 0) {
        await wake.wait(Infinity);
        continue;
      }
      let batch: ConsumerMessages | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const stop = (): void => batch?.stop();
      // A pull cut short by a lost connection ends like one that expired: only one the connection outlived counts.
      const changes = this.connectionChanges;
      try {
        consumer ??= await js.consumers.get(this.stream, this.durable);
        // Only as many as there are free handlers: a message waiting in a buffer would burn its ack_wait.
        batch = await consumer.fetch({ max_messages: free, expires: FETCH_EXPIRES_MS });
        signal.addEventListener('abort', stop, { once: true });
        // A pull request dies with the connection that sent it; the iterator may never hear of it, so it is cut
        // after a reconnect and, failing that, after a deadline.
        this.batches.add(batch);
        watchdog = setTimeout(stop, FETCH_EXPIRES_MS + 2000);
        for await (const m of batch) {
          if (signal.aborted || this.closed) {
            m.nak();
            continue;
          }
          const p: Promise<void> = this.handle(m, handler).finally(() => {
            inFlight.delete(p);
            wake.poke();
          });
          inFlight.add(p);
        }
        if (!this.disconnected && this.connectionChanges === changes && !signal.aborted) state.working();
      } catch (err) {
        // While the connection is lost, a failed request says nothing new: the reconnect attempts report it.
        if (this.disconnected || signal.aborted || this.closed) this.logger.debug(`cannot pull messages: ${scrubNats(errorMessage(err), this.target)}`);
        else state.lost(this.brokerError('cannot pull messages from', err));
        consumer = undefined;
        await sleep(500, signal);
      } finally {
        signal.removeEventListener('abort', stop);
        clearTimeout(watchdog);
        if (batch) this.batches.delete(batch);
      }
    }
    signal.removeEventListener('abort', wake.poke);
    this.lostListeners.delete(lost);
    await Promise.allSettled([...inFlight]);
  }

  private async handle(m: JsMsg, handler: MessageHandler): Promise<void> {
    const deliveryCount = m.info.deliveryCount;
    if (deliveryCount > this.maxDeliveries) {
      await this.setAside(m, deliveryCount - 1, `lease expired on the last of ${this.maxDeliveries} deliveries`);
      return;
    }
    const metadata: MessageMetadata = {};
    for (const k of m.headers?.keys() ?? []) {
      if (!/^(nats|qscale)-/i.test(k)) metadata[k] = m.headers?.get(k) ?? '';
    }
    const working = setInterval(() => m.working(), Math.max(200, this.ackWaitMs / 3));
    let ok = false;
    try {
      ok = settle(await handler({ id: `${this.stream}:${m.seq}`, data: Buffer.from(m.data), metadata, deliveryCount })).ok;
    } catch (err) {
      this.logger.warn({ id: m.seq, error: errorMessage(err) }, 'handler threw: message not processed');
    } finally {
      clearInterval(working);
    }
    if (ok) {
      await this.confirmAck(m);
    } else if (deliveryCount >= this.maxDeliveries) {
      await this.setAside(m, deliveryCount, `handler failed ${deliveryCount} deliveries`);
    } else {
      m.nak(redeliveryDelayMs(this.redelivery, deliveryCount));
    }
  }

  /**
   * Waits for the server to confirm the ack. One attempt only: the client refuses a second ack of the same message,
   * and an ack that was lost means the message is delivered again (at least once, never lost).
   */
  private async confirmAck(m: JsMsg): Promise<void> {
    try {
      // ackAck's own timeout does not fire when the request was lost in a reconnect: bounded here.
      await withTimeout(m.ackAck({ timeout: 5000 }), 6000, 'ack not confirmed within 6000 ms');
    } catch (err) {
      this.logger.warn({ id: m.seq, error: scrubNats(errorMessage(err), this.target) }, 'ack not confirmed: the message may be delivered again');
    }
  }

  private async setAside(m: JsMsg, deliveries: number, reason: string): Promise<void> {
    const { js } = this.client();
    const h = natsLib().headers();
    for (const k of m.headers?.keys() ?? []) if (!/^nats-/i.test(k)) h.set(k, m.headers?.get(k) ?? '');
    h.set(REASON, reason);
    h.set(COUNT, String(deliveries));
    h.set(ORIGIN, `${this.stream}:${m.seq}`);
    try {
      // The id makes a repeat (a term lost in a reconnect, then this again) a no-op in the dead-letter stream.
      await js.publish(this.dlq, m.data, { headers: h, msgID: `${this.stream}:${m.seq}` });
    } catch (err) {
      this.logger.warn({ id: m.seq, error: scrubNats(errorMessage(err), this.target) }, 'dead-letter publish failed: the message stays for redelivery');
      m.nak(redeliveryDelayMs(this.redelivery, deliveries));
      return;
    }
    m.term();
    this.logger.warn({ id: m.seq, deliveries, reason }, 'message dead-lettered');
  }

  async depth(): Promise<QueueDepth> {
    const { jsm } = this.client();
    const [c, d] = await this.call(DEPTH, () => Promise.all([
      jsm.consumers.info(this.stream, this.durable),
      jsm.streams.info(this.dlq).catch(() => undefined),
    ]));
    return { ready: c.num_pending, inFlight: c.num_ack_pending, deadLettered: d?.state.messages ?? 0 };
  }

  async ping(): Promise<void> {
    try {
      await this.client().jsm.getAccountInfo();
    } catch (err) {
      throw err instanceof BrokerError ? err : this.brokerError('cannot reach', err);
    }
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const { jsm } = this.client();
    const info = await jsm.streams.info(this.dlq);
    const out: DeadLetter[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit; seq++) {
      const sm = await jsm.streams.getMessage(this.dlq, { seq }).catch(() => undefined);
      if (!sm) continue;
      const metadata: MessageMetadata = {};
      for (const k of sm.header.keys()) if (!/^(nats|qscale)-/i.test(k)) metadata[k] = sm.header.get(k);
      out.push({
        id: sm.header.get(ORIGIN) || `${this.dlq}:${seq}`,
        data: Buffer.from(sm.data),
        metadata,
        deliveryCount: Number(sm.header.get(COUNT)) || 0,
        reason: sm.header.get(REASON),
      });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const nc = this.nc;
    this.nc = undefined;
    if (!nc) return;
    // Naks and terms are fire-and-forget: flush them out first, but never wait long for a server that may be gone.
    await withTimeout(nc.flush(), 2000, 'flush not confirmed within 2000 ms').catch(() => undefined);
    await nc.close().catch(() => undefined);
  }
}

function isNotFound(err: unknown): boolean {
  return /not found/i.test(errorMessage(err));
}

/** NATS subject matching: `*` one token, `>` the rest. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
