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
 * dead-letter stream without calling the handler again. A dead letter carries what went wrong on its last delivery,
 * its delivery count and its enqueue and dead-letter times in Qscale-* headers; it is named by its sequence in the
 * dead-letter stream, which never changes while it is there.
 */
import type {
  StorageType,
  Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, MsgHdrs, MsgRequest, NatsConnection, StoredMsg,
} from 'nats';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, Purgeable,
  QueueDepth, ReceiveOptions, ResolvedComponent,
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
import { DueTimes, EXPIRY_MARGIN_MS, pullExpiry, retryWait } from './pull-timing.js';

const FETCH_EXPIRES_MS = 1000;
const REASON = 'Qscale-Dead-Letter-Reason';
const COUNT = 'Qscale-Delivery-Count';
const ORIGIN = 'Qscale-Original-Id';
/** ms since the epoch; dead letters written before these were kept have neither (see deadLetterFrom). */
const ENQUEUED_AT = 'Qscale-Enqueued-At';
const DEAD_LETTERED_AT = 'Qscale-Dead-Lettered-At';
/** A failure reason longer than this is cut: the first bytes say what went wrong. */
const REASON_MAX = 1000;
/** Messages one step of the queue purge takes. */
const PURGE_BATCH = 256;

export class NatsBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
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
  /** When this process's failed messages come due again, and when its waiting pull requests expire (pull-timing.ts). */
  private readonly retriesDue = new DueTimes();
  private readonly pullsWaiting = new Map<ConsumerMessages, { expiresAt: number; max: number }>();
  /** Acks of this event-loop turn, sent together at its end (see confirmAck). */
  private acksDue: Array<{ m: JsMsg; confirmed: () => void }> = [];
  private acksTurn: NodeJS.Immediate | undefined;

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
      const stop = (): void => batch?.stop();
      // A pull cut short by a lost connection ends like one that expired: only one the connection outlived counts.
      const changes = this.connectionChanges;
      try {
        consumer ??= await js.consumers.get(this.stream, this.durable);
        // Only as many as there are free handlers: a message waiting in a buffer would burn its ack_wait.
        batch = await this.pull(consumer, free);
        signal.addEventListener('abort', stop, { once: true });
        for await (const m of batch) {
          if (signal.aborted || this.closed) {
            m.nak();
            continue;
          }
          const p: Promise<void> = this.handle(m, handler, () => inFlight.size > 1).finally(() => {
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
        batch?.stop();
      }
    }
    signal.removeEventListener('abort', wake.poke);
    this.lostListeners.delete(lost);
    await Promise.allSettled([...inFlight]);
  }

  /**
   * One pull request for at most `max` messages, ended by JetStream: when all came, or with its 408 once
   * FETCH_EXPIRES_MS have passed on the server. nats.js would also end it from the client, with a timer at
   * 1.05 × expires and a heartbeat monitor that pulls again when it believes two heartbeats missed; both fire on the
   * client's clock while the server's request may still be open. A message JetStream hands the request then is
   * counted as delivered but dropped with the closed subscription: it comes back only after ack_wait, one delivery
   * spent (under load, when the event loop runs those timers before reading a message already received). JetStream's
   * own end of the request follows its last message on the same connection, so waiting for it drops nothing. Those
   * client timers are cleared; a request that died with its connection is stopped on the reconnect (watchStatus)
   * and, failing that, by a deadline well past the server's. Its expiry stays off the due times of this process's
   * retries (pull-timing.ts).
   */
  private async pull(consumer: Consumer, max: number): Promise<ConsumerMessages> {
    const expires = pullExpiry(Date.now(), FETCH_EXPIRES_MS, this.retriesDue.ahead(Date.now()));
    const expiresAt = Date.now() + expires;
    const batch = await consumer.fetch({ max_messages: max, expires });
    (batch as Partial<{ clearTimers(): void }>).clearTimers?.();
    this.batches.add(batch);
    this.pullsWaiting.set(batch, { expiresAt, max });
    const deadline = setTimeout(() => batch.stop(), expires + 5000);
    const ended = (): void => {
      clearTimeout(deadline);
      this.batches.delete(batch);
      // One that ended early was filled or given up: not waiting any more. One that ended at its expiry is kept a
      // moment past it, as the server may expire it a little after this client saw it end.
      if (expiresAt - Date.now() > EXPIRY_MARGIN_MS) this.pullsWaiting.delete(batch);
      else setTimeout(() => this.pullsWaiting.delete(batch), Math.max(0, expiresAt - Date.now()) + EXPIRY_MARGIN_MS).unref();
    };
    void batch.closed().then(ended, ended);
    return batch;
  }

  /** othersWorking: whether other handlers of this receiver are still running (their acks may join this one's). */
  private async handle(m: JsMsg, handler: MessageHandler, othersWorking: () => boolean = () => false): Promise<void> {
    const deliveryCount = m.info.deliveryCount;
    if (deliveryCount > this.maxDeliveries) {
      await this.setAside(m, deliveryCount - 1, `the ack wait (${this.ackWaitMs / 1000} s) expired on the last delivery: its receiver stopped or hung`);
      return;
    }
    const working = setInterval(() => m.working(), Math.max(200, this.ackWaitMs / 3));
    let outcome: { ok: boolean; reason: string };
    try {
      outcome = settle(await handler({
        id: `${this.stream}:${m.seq}`, data: Buffer.from(m.data), metadata: metadataOf(m.headers), deliveryCount,
        enqueuedAt: Math.floor(m.info.timestampNanos / 1e6),
      }));
    } catch (err) {
      outcome = settle(undefined, err);
      this.logger.warn({ id: m.seq, error: errorMessage(err) }, 'handler threw: message not processed');
    } finally {
      clearInterval(working);
    }
    if (outcome.ok) {
      await this.confirmAck(m, othersWorking());
    } else if (deliveryCount >= this.maxDeliveries) {
      await this.setAside(m, deliveryCount, outcome.reason);
    } else {
      this.retryLater(m, deliveryCount);
    }
  }

  /** Naks with the redelivery wait of failed delivery `failedDelivery` (nudged off waiting pulls' expiry). */
  private retryLater(m: JsMsg, failedDelivery: number): void {
    const now = Date.now();
    // A request that got all it asked for is no longer waiting on the server.
    const waiting = [...this.pullsWaiting].filter(([b, p]) => b.getReceived() < p.max).map(([, p]) => p.expiresAt);
    const wait = retryWait(now, redeliveryDelayMs(this.redelivery, failedDelivery), waiting);
    this.retriesDue.add(now + wait);
    m.nak(wait);
  }

  /**
   * Acks and waits for the server to confirm it. The acks of one event-loop turn go out together at its end (one
   * write to the socket, not one per message: each HTTP answer of a sidecar's app is its own I/O callback); a lone ack
   * (no other handler running) goes at once. Each is still confirmed by JetStream on its own. One attempt only: the
   * client refuses a second ack of the same message, and an ack that was lost means the message is delivered again
   * (at least once, never lost).
   */
  private confirmAck(m: JsMsg, othersWorking: boolean): Promise<void> {
    return new Promise((confirmed) => {
      this.acksDue.push({ m, confirmed });
      if (!othersWorking) this.sendAcks();
      else this.acksTurn ??= setImmediate(() => this.sendAcks());
    });
  }

  private sendAcks(): void {
    if (this.acksTurn) clearImmediate(this.acksTurn);
    this.acksTurn = undefined;
    const due = this.acksDue;
    this.acksDue = [];
    if (due.length === 0) return;
    // ackAck's own timeout does not fire when the request was lost in a reconnect: bounded here, one timer for all.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('ack not confirmed within 6000 ms')), 6000);
    });
    late.catch(() => undefined);
    void Promise.all(due.map(async ({ m, confirmed }) => {
      try {
        await Promise.race([m.ackAck({ timeout: 5000 }), late]);
      } catch (err) {
        this.logger.warn({ id: m.seq, error: scrubNats(errorMessage(err), this.target) }, 'ack not confirmed: the message may be delivered again');
      } finally {
        confirmed();
      }
    })).finally(() => clearTimeout(timer));
  }

  /** `why`: what went wrong on the last delivery. */
  private async setAside(m: JsMsg, deliveries: number, why: string): Promise<void> {
    const { js } = this.client();
    const h = natsLib().headers();
    for (const k of m.headers?.keys() ?? []) if (!/^nats-/i.test(k)) h.set(k, m.headers?.get(k) ?? '');
    // A header value is one line: an app's multi-line answer or error is kept on one.
    const reason = `MaxDeliveryCountExceeded: failed on delivery ${deliveries} of ${this.maxDeliveries}: ${why}`
      .replace(/[\r\n]+/g, ' ').slice(0, REASON_MAX);
    h.set(REASON, reason);
    h.set(COUNT, String(deliveries));
    h.set(ORIGIN, `${this.stream}:${m.seq}`);
    h.set(ENQUEUED_AT, String(Math.floor(m.info.timestampNanos / 1e6)));
    h.set(DEAD_LETTERED_AT, String(Date.now()));
    try {
      // The id makes a repeat (a term lost in a reconnect, then this again) a no-op in the dead-letter stream.
      await js.publish(this.dlq, m.data, { headers: h, msgID: `${this.stream}:${m.seq}` });
    } catch (err) {
      this.logger.warn({ id: m.seq, error: scrubNats(errorMessage(err), this.target) }, 'dead-letter publish failed: the message stays for redelivery');
      this.retryLater(m, deliveries);
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
    const out: DeadLetter[] = [];
    for (let seq = 1; out.length < limit;) {
      const sm = await this.nextDeadLetter(seq, LIST_DEAD);
      if (!sm) break;
      out.push(deadLetterFrom(sm));
      seq = sm.seq + 1;
    }
    return out;
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    const seq = sequenceOf(id);
    if (seq === undefined) return undefined;
    const sm = await this.storedDeadLetter({ seq }, LIST_DEAD);
    return sm ? deadLetterFrom(sm) : undefined;
  }

  /**
   * Publishes each dead letter's body and metadata to the queue's subject (a new message: its delivery count starts
   * at 1), then deletes it from the dead-letter stream: a requeue cut between the two leaves a copy in both, never in
   * neither. The publish carries a message id made of the dead letter's sequence and time, so repeating it (after
   * such a cut, or two requeues at once) is ignored by JetStream's duplicate window instead of queued twice.
   */
  async requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const { js, jsm } = this.client();
    let moved = 0;
    const requeue = async (sm: StoredMsg): Promise<void> => {
      const h = natsLib().headers();
      for (const [k, v] of Object.entries(metadataOf(sm.header))) h.set(k, v);
      await this.call(REQUEUE_DEAD, () => js.publish(this.natsSubject, sm.data, { headers: h, msgID: `requeue:${this.dlq}:${sm.seq}:${sm.timestamp}` }));
      if (await this.call(REQUEUE_DEAD, () => deleted(jsm.streams.deleteMessage(this.dlq, sm.seq, false)))) moved++;
    };
    if (ids !== 'all') {
      for (const seq of sequencesOf(ids)) {
        const sm = await this.storedDeadLetter({ seq }, REQUEUE_DEAD);
        if (sm) await requeue(sm);
      }
      return moved;
    }
    // The ones there now: dead letters written meanwhile (a receiver still failing) wait for the next requeue.
    const last = await this.lastDeadLetterSeq(REQUEUE_DEAD);
    for (let seq = 1; seq <= last;) {
      const sm = await this.nextDeadLetter(seq, REQUEUE_DEAD);
      if (!sm || sm.seq > last) break;
      await requeue(sm);
      seq = sm.seq + 1;
    }
    return moved;
  }

  async purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const { jsm } = this.client();
    if (ids !== 'all') {
      let purged = 0;
      for (const seq of sequencesOf(ids)) {
        if (await this.call(PURGE_DEAD, () => deleted(jsm.streams.deleteMessage(this.dlq, seq, false)))) purged++;
      }
      return purged;
    }
    const last = await this.lastDeadLetterSeq(PURGE_DEAD);
    if (last === 0) return 0;
    // Everything below last + 1: dead letters written meanwhile stay.
    const r = await this.call(PURGE_DEAD, () => jsm.streams.purge(this.dlq, { seq: last + 1 }));
    return r.purged;
  }

  /**
   * Deletes the ready messages: those the durable consumer has not delivered (what depth() counts as ready), never one
   * delivered and not yet acked, nor a dead letter.
   *
   * JetStream can purge a stream only from its oldest message up ("below sequence n"), and the oldest messages of a
   * work-queue stream are the ones receivers hold; deleting by sequence whatever lies past the consumer's last
   * delivered one would race a receiver handed that message at the same moment. So the purge takes the messages
   * through the durable consumer itself, as a receiver would: JetStream hands each ready message to exactly one
   * puller, and a first delivery (count 1) is one no receiver ever had. Those are acked, which on a work-queue stream
   * deletes them and on a limits stream (createStream false) marks them consumed for this consumer only, leaving
   * other consumers of that stream their copy. At most the ready count seen at the start is taken, so a producer
   * sending meanwhile cannot keep it running. A redelivery due at that moment comes first in a pull: it is held
   * (kept leased) and given back at the end, still due, with one delivery more counted.
   */
  async purge(): Promise<number> {
    const { js, jsm } = this.client();
    const start = await this.call(PURGE, () => jsm.consumers.info(this.stream, this.durable));
    const consumer = await this.call(PURGE, () => js.consumers.get(this.stream, this.durable));
    let left = start.num_pending;
    let purged = 0;
    const held: JsMsg[] = [];
    const keep = setInterval(() => {
      for (const m of held) m.working();
    }, Math.max(200, this.ackWaitMs / 3));
    try {
      while (left > 0) {
        const got: JsMsg[] = [];
        const batch = await this.pull(consumer, Math.min(PURGE_BATCH, left));
        for await (const m of batch) got.push(m);
        const fresh = got.filter((m) => m.info.deliveryCount === 1);
        held.push(...got.filter((m) => m.info.deliveryCount > 1));
        if (fresh.length === 0 && got.length === 0) break;
        const acked = await Promise.all(fresh.map((m) => m.ackAck({ timeout: this.initTimeoutMs }).catch(() => false)));
        purged += acked.filter(Boolean).length;
        left -= fresh.length;
      }
    } finally {
      clearInterval(keep);
      for (const m of held) m.nak();
      await withTimeout(this.nc?.flush() ?? Promise.resolve(), 2000, 'flush not confirmed within 2000 ms').catch(() => undefined);
    }
    return purged;
  }

  /** The dead letter at `seq` or the first one after it. */
  private nextDeadLetter(seq: number, doing: string): Promise<StoredMsg | undefined> {
    // next_by_subj (JetStream 2.9+): the first message from seq on, skipping the ones deleted by id.
    return this.storedDeadLetter({ seq, next_by_subj: this.dlq } as MsgRequest, doing);
  }

  private storedDeadLetter(query: MsgRequest, doing: string): Promise<StoredMsg | undefined> {
    const { jsm } = this.client();
    return this.call(doing, () => jsm.streams.getMessage(this.dlq, query).catch((err: unknown) => {
      if (apiErrorCode(err) === NO_MESSAGE || apiErrorCode(err) === STREAM_NOT_FOUND) return undefined;
      throw err;
    }));
  }

  private async lastDeadLetterSeq(doing: string): Promise<number> {
    const { jsm } = this.client();
    const info = await this.call(doing, () => jsm.streams.info(this.dlq).catch((err: unknown) => {
      if (apiErrorCode(err) === STREAM_NOT_FOUND) return undefined;
      throw err;
    }));
    return info && info.state.messages > 0 ? info.state.last_seq : 0;
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

const LIST_DEAD = 'read the dead letters';
const REQUEUE_DEAD = 'requeue dead letters';
const PURGE_DEAD = 'purge dead letters';
const PURGE = 'purge the queue';

/** JetStream API error codes: no message at that sequence; sequence not found (delete); stream not found. */
const NO_MESSAGE = 10037;
const SEQUENCE_NOT_FOUND = 10043;
const STREAM_NOT_FOUND = 10059;
/** A delete that failed: file storage says so for a sequence it does not hold ("no message found", "stream store EOF"). */
const DELETE_FAILED = 10057;

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code;
}

/** Whether a delete removed the message: one already gone (requeued or purged by another call) counts as not. */
async function deleted(p: Promise<boolean>): Promise<boolean> {
  try {
    return await p;
  } catch (err) {
    const code = apiErrorCode(err);
    if (code === SEQUENCE_NOT_FOUND || code === STREAM_NOT_FOUND) return false;
    if (code === DELETE_FAILED && /no message found|store eof/i.test(errorMessage(err))) return false;
    throw err;
  }
}

/** The metadata an app sees: every header but JetStream's own (Nats-*) and qscale's (Qscale-*). */
function metadataOf(h: MsgHdrs | undefined): MessageMetadata {
  const out: MessageMetadata = {};
  for (const k of h?.keys() ?? []) if (!/^(nats|qscale)-/i.test(k)) out[k] = h?.get(k) ?? '';
  return out;
}

/** A dead letter's id is its sequence in the dead-letter stream; anything else names none. */
function sequenceOf(id: string): number | undefined {
  if (!/^[1-9]\d{0,15}$/.test(id)) return undefined;
  const seq = Number(id);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

function sequencesOf(ids: readonly string[]): number[] {
  return [...new Set(ids.map(sequenceOf).filter((s): s is number => s !== undefined))];
}

function deadLetterFrom(sm: StoredMsg): DeadLetter {
  const h = sm.header;
  const time = (k: string): number | undefined => {
    const v = h.get(k);
    return v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
  };
  const enqueuedAt = time(ENQUEUED_AT);
  return {
    id: String(sm.seq),
    data: Buffer.from(sm.data),
    metadata: metadataOf(h),
    deliveryCount: Number(h.get(COUNT)) || 0,
    reason: h.get(REASON) || 'dead-lettered',
    ...(enqueuedAt === undefined ? {} : { enqueuedAt }),
    // Written before the header was kept: the time JetStream stored the dead letter.
    deadLetteredAt: time(DEAD_LETTERED_AT) ?? sm.time.getTime(),
  };
}
