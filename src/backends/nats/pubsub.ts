/**
 * pubsub.jetstream: Dapr's NATS JetStream pub/sub, with the consumer daprd makes, so a real daprd binds to it and
 * KEDA's nats-jetstream trigger reads it (consumer = durableName):
 *
 * - The stream must exist: daprd never creates one, nor does qscale (streamName, else the stream that takes the
 *   topic's subject). init and prepare say which and how to create it.
 * - topic = subject. publish stores the bytes as they are, with the CloudEvent id (an `id` string of a JSON object)
 *   as Nats-Msg-Id, so JetStream drops a repeat within the stream's duplicate window, as with daprd.
 * - A subscription is a push consumer filtered on the topic: durable when durableName is set (replicas share it
 *   through the deliver group queueGroupName; different apps need different durable names, e.g. "{appID}"), else an
 *   ephemeral one per subscriber (every replica gets every event and nothing is kept at zero replicas: said once).
 *   An existing durable must match what the component asks for, field by field, as daprd's client checks.
 * - A processed event is acked. A failed one is NAKed with a delay: ackWait when set (daprd's own choice), else the
 *   consumer's backOff step for that delivery, else qscale's shared back-off (1s doubling to 30s) where daprd would
 *   NAK at once and loop hot. deliveryCount and enqueuedAt come from the message's JetStream info.
 */
import { createHash } from 'node:crypto';
import type { ConsumerConfig, ConsumerInfo, JetStreamClient, JetStreamManager, JetStreamSubscription, JsMsg, NatsConnection } from 'nats';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import type { MetadataSpec } from '../../components/metadata.js';
import type { MessageHandler, MessageMetadata, QueueMessage, ReceiveOptions, ResolvedComponent } from '../types.js';
import { settle } from '../types.js';
import type { PubSub, PubSubContext, PubSubDefinition, SubscribeRequest } from '../../pubsub/types.js';
import type { Logger } from '../../util/log.js';
import { sleep } from '../../util/abort.js';
import { Wakeup } from '../../util/wakeup.js';
import { withTimeout } from '../../util/timeout.js';
import { BrokerState } from '../broker-state.js';
import { DEFAULT_REDELIVERY, redeliveryDelayMs } from '../redelivery.js';
import { SEND, bounded, noAnswer, receiveUnreachable, unreachable, type BrokerAddress } from '../unreachable.js';
import { withMetadataTemplates } from '../../components/templates.js';
import { connectNats, describe, natsLib, scrubNats, type NatsTarget } from './connect.js';
import { subjectMatches } from './backend.js';
import { JETSTREAM_PUBSUB_TYPE, jetstreamPubSubMetadata, parseJetStreamPubSub, type JetStreamPubSubSettings } from './pubsub-metadata.js';

const MEANWHILE = 'qscale reconnects every 250 ms';

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code;
}
function isNotFound(err: unknown): boolean {
  return (err as { code?: string }).code === '404' || /not found|no stream matches/i.test(errorMessage(err));
}

/** The published bytes' CloudEvent id, as daprd reads it: the `id` string of a JSON object. */
function cloudEventId(data: Buffer): string | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as unknown;
    const id = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>).id : undefined;
    return typeof id === 'string' && id !== '' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** One consumer field daprd's client compares with an existing durable (nats.go checkConfig), and the metadata that sets it. */
interface Compared {
  label: string;
  field: string;
  ours: unknown;
  theirs: unknown;
}

export class JetStreamPubSub implements PubSub {
  readonly name: string;
  readonly type: string;
  private readonly s: JetStreamPubSubSettings;
  private readonly component: ResolvedComponent;
  private readonly target: NatsTarget;
  private readonly subject: string;
  private readonly address: BrokerAddress;
  private readonly log: Logger;
  private readonly initTimeoutMs: number;
  private nc: NatsConnection | undefined;
  private jsm: JetStreamManager | undefined;
  private js: JetStreamClient | undefined;
  private closed = false;
  /** Between a disconnect and the reconnect. */
  private disconnected = false;
  private readonly outageListeners = new Set<(lost: boolean) => void>();
  private ephemeralSaid = false;

  constructor(component: ResolvedComponent, ctx: PubSubContext) {
    this.component = withMetadataTemplates(component, ctx.appId);
    this.name = component.name;
    this.type = component.type;
    this.s = parseJetStreamPubSub(this.component);
    this.target = { urls: this.s.urls, token: this.s.token };
    this.subject = `component ${component.name} (${component.type})`;
    this.address = { subject: this.subject, broker: 'NATS JetStream', where: describe(this.target) };
    this.log = ctx.logger.child({ component: component.name });
    this.initTimeoutMs = component.initTimeoutMs;
  }

  /** The durable consumer KEDA's nats-jetstream trigger reads; undefined: ephemeral consumers. */
  get durableName(): string | undefined {
    return this.s.durableName;
  }

  private brokerError(what: string, err: unknown): BrokerError {
    return new BrokerError(`${this.subject}: ${what} at ${describe(this.target)}: ${scrubNats(errorMessage(err), this.target)}`, { cause: err });
  }

  async init(): Promise<void> {
    let nc: NatsConnection | undefined;
    try {
      await bounded(this.address, 'connect', this.initTimeoutMs, (async () => {
        nc = await connectNats(this.target, this.s.connectionName, this.initTimeoutMs);
        const jsOpts = { timeout: this.initTimeoutMs, ...(this.s.domain ? { domain: this.s.domain } : {}), ...(this.s.apiPrefix ? { apiPrefix: this.s.apiPrefix } : {}) };
        this.jsm = await nc.jetstreamManager(jsOpts);
        this.js = nc.jetstream(jsOpts);
        // The stream is not looked up here (daprd's Init does not either): a missing one is said by the first
        // subscribe or publish, with the topic it needs in the command that creates it.
      })());
    } catch (err) {
      await nc?.close().catch(() => undefined);
      if (err instanceof BrokerError || err instanceof ConfigError) throw err;
      throw this.brokerError('cannot use NATS JetStream', err);
    }
    this.nc = nc;
    void this.watchStatus(nc);
    this.log.info(`connected to NATS JetStream at ${describe(this.target)}${this.s.durableName ? `, durable consumer '${this.s.durableName}'` : ''}`);
  }

  /** Reports outages to the subscriptions: from the second failed reconnect attempt on, the server is away. */
  private async watchStatus(nc: NatsConnection | undefined): Promise<void> {
    if (!nc) return;
    let attempts = 0;
    for await (const st of nc.status()) {
      if (st.type === 'disconnect') {
        this.disconnected = true;
        attempts = 0;
      } else if (st.type === 'reconnecting') {
        if (this.disconnected && ++attempts === 2) for (const l of [...this.outageListeners]) l(true);
      } else if (st.type === 'reconnect') {
        this.disconnected = false;
        for (const l of [...this.outageListeners]) l(false);
      }
    }
  }

  private client(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (!this.js || !this.jsm || this.closed) throw new BrokerError(`${this.subject}: used before init() or after close()`);
    return { js: this.js, jsm: this.jsm };
  }

  /** A JetStream API call of publish / prepare / subscribe: at once an error while the server is known to be away. */
  private async call<T>(doing: string, run: () => Promise<T>): Promise<T> {
    if (this.disconnected) throw unreachable(this.address, doing, 'connection lost', MEANWHILE);
    try {
      return await bounded(this.address, doing, this.initTimeoutMs, run());
    } catch (err) {
      if (err instanceof BrokerError || err instanceof ConfigError) throw err;
      if (this.disconnected) throw unreachable(this.address, doing, 'connection lost', MEANWHILE, true);
      if ((err as { code?: unknown }).code === 'TIMEOUT') throw noAnswer(this.address, doing, this.initTimeoutMs, err);
      throw this.brokerError(`cannot ${doing}`, err);
    }
  }

  private howToCreate(stream: string, topic: string): string {
    return `daprd's pubsub.jetstream never creates streams, nor does qscale: create it, e.g. nats stream add ${stream} --subjects '${topic}'`;
  }

  /** The stream's subjects; a missing stream is an error naming streamName and how to create it for the topic. */
  private async streamSubjects(stream: string, topic: string): Promise<string[]> {
    const { jsm } = this.client();
    try {
      const info = await jsm.streams.info(stream);
      return info.config.subjects ?? [];
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new ConfigError(
        `${this.subject}: stream '${stream}' (metadata 'streamName') does not exist on NATS JetStream at ${describe(this.target)}; ${this.howToCreate(stream, topic)}`,
        { ...this.component.where('streamName'), field: 'streamName' },
      );
    }
  }

  /** streamName, checked to take the topic; else the stream that takes the topic's subject, as daprd looks it up. */
  private async streamFor(topic: string): Promise<string> {
    const { jsm } = this.client();
    if (this.s.streamName !== undefined) {
      const subjects = await this.streamSubjects(this.s.streamName, topic);
      if (!subjects.some((p) => subjectMatches(p, topic))) {
        throw new ConfigError(
          `${this.subject}: stream '${this.s.streamName}' (metadata 'streamName') does not take subject '${topic}' (its subjects: ${subjects.join(', ') || 'none'}); add it, e.g. nats stream edit ${this.s.streamName} --subjects '${[...subjects, topic].join(',')}'`,
          { ...this.component.where('streamName'), field: 'streamName' },
        );
      }
      return this.s.streamName;
    }
    try {
      return await jsm.streams.find(topic);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new ConfigError(
        `${this.subject}: no stream on NATS JetStream at ${describe(this.target)} takes subject '${topic}' (metadata 'streamName' is not set, so it is looked up by subject); ${this.howToCreate('<stream>', topic)}`,
        { ...this.component.where('streamName'), field: 'streamName' },
      );
    }
  }

  async publish(topic: string, data: Buffer, _metadata: MessageMetadata): Promise<void> {
    const { js } = this.client();
    const msgID = cloudEventId(data);
    try {
      await this.call(SEND, () => js.publish(topic, data, msgID === undefined ? {} : { msgID }));
    } catch (err) {
      const cause = err instanceof BrokerError ? err.cause : err;
      if ((cause as { code?: string } | undefined)?.code === '503') {
        throw new BrokerError(
          `${this.subject}: cannot ${SEND} to subject '${topic}' (the event was not stored): no stream on NATS JetStream at ${describe(this.target)} takes that subject; ${this.howToCreate(this.s.streamName ?? '<stream>', topic)}`,
        );
      }
      throw err;
    }
  }

  /** The consumer daprd creates for a topic (pubsub/jetstream Subscribe), deliver subject aside. */
  private consumerConfig(topic: string): Partial<ConsumerConfig> {
    const lib = natsLib();
    const s = this.s;
    const policies = {
      all: lib.DeliverPolicy.All, last: lib.DeliverPolicy.Last, new: lib.DeliverPolicy.New,
      sequence: lib.DeliverPolicy.StartSequence, time: lib.DeliverPolicy.StartTime,
    } as const;
    const acks = { explicit: lib.AckPolicy.Explicit, all: lib.AckPolicy.All, none: lib.AckPolicy.None } as const;
    return {
      ...(s.durableName ? { durable_name: s.durableName } : {}),
      ...(s.queueGroupName ? { deliver_group: s.queueGroupName } : {}),
      ...(s.startTime !== undefined ? { opt_start_time: new Date(s.startTime).toISOString() } : {}),
      ...(s.startSequence !== undefined ? { opt_start_seq: s.startSequence } : {}),
      deliver_policy: policies[s.deliverPolicy],
      ...(s.flowControl ? { flow_control: true } : {}),
      ...(s.ackWaitMs !== undefined ? { ack_wait: lib.nanos(s.ackWaitMs) } : {}),
      ...(s.maxDeliver !== undefined ? { max_deliver: s.maxDeliver } : {}),
      ...(s.backOffMs.length > 0 ? { backoff: s.backOffMs.map((ms) => lib.nanos(ms)) } : {}),
      ...(s.maxAckPending !== undefined ? { max_ack_pending: s.maxAckPending } : {}),
      ...(s.replicas !== undefined ? { num_replicas: s.replicas } : {}),
      ...(s.memoryStorage ? { mem_storage: true } : {}),
      ...(s.rateLimit !== undefined ? { rate_limit_bps: s.rateLimit } : {}),
      ...(s.heartbeatMs !== undefined ? { idle_heartbeat: lib.nanos(s.heartbeatMs) } : {}),
      ack_policy: acks[s.ackPolicy],
      replay_policy: lib.ReplayPolicy.Instant,
      filter_subject: topic,
    };
  }

  /**
   * The deliver subject of a durable: fixed by stream and name, so replicas creating it at the same moment ask for
   * the same consumer (daprd picks a new inbox, and a second create would then move the first replica's deliveries).
   */
  private deliverSubject(stream: string, durable: string): string {
    return `_INBOX.${createHash('sha256').update(`${stream}\0${durable}`).digest('hex').slice(0, 22)}`;
  }

  /** An existing durable against what the component asks for: what daprd's client refuses, refused with the field. */
  private checkDurable(info: ConsumerInfo, want: Partial<ConsumerConfig>, stream: string, topic: string): void {
    const c = info.config;
    const d = this.s.durableName ?? '';
    const at = (field: string): { file?: string; line?: number; field: string } => ({ ...this.component.where(field), field });
    const rm = `delete it (nats consumer rm ${stream} ${d}) or change the component`;
    if (c.filter_subject && c.filter_subject !== topic) {
      throw new ConfigError(
        `${this.subject}: durable consumer '${d}' of stream '${stream}' filters subject '${c.filter_subject}', not topic '${topic}': one durableName serves one topic (daprd fails the same way); give this subscription a component with its own durableName`,
        at('durableName'),
      );
    }
    if (!c.deliver_subject) throw new ConfigError(`${this.subject}: durable consumer '${d}' of stream '${stream}' is a pull consumer; daprd binds only push consumers: ${rm}`, at('durableName'));
    if ((c.deliver_group ?? '') !== (this.s.queueGroupName ?? '')) {
      throw new ConfigError(
        `${this.subject}: durable consumer '${d}' of stream '${stream}' has deliver group '${c.deliver_group ?? ''}' but queueGroupName is '${this.s.queueGroupName ?? ''}': ${rm}`,
        at('queueGroupName'),
      );
    }
    const time = (v: unknown): number | undefined => (typeof v === 'string' ? Date.parse(v) : undefined);
    const checks: Compared[] = [
      { label: 'deliver policy', field: 'deliverPolicy', ours: want.deliver_policy, theirs: c.deliver_policy },
      { label: 'ack policy', field: 'ackPolicy', ours: want.ack_policy, theirs: c.ack_policy },
      { label: 'start sequence', field: 'startSequence', ours: want.opt_start_seq, theirs: c.opt_start_seq },
      { label: 'start time', field: 'startTime', ours: time(want.opt_start_time), theirs: time(c.opt_start_time) },
      { label: 'ack wait (ns)', field: 'ackWait', ours: want.ack_wait, theirs: c.ack_wait },
      { label: 'max deliver', field: 'maxDeliver', ours: want.max_deliver, theirs: c.max_deliver },
      { label: 'rate limit', field: 'rateLimit', ours: want.rate_limit_bps, theirs: c.rate_limit_bps },
      { label: 'max ack pending', field: 'maxAckPending', ours: want.max_ack_pending, theirs: c.max_ack_pending },
      { label: 'flow control', field: 'flowControl', ours: want.flow_control, theirs: c.flow_control === true },
      { label: 'heartbeat (ns)', field: 'heartbeat', ours: want.idle_heartbeat, theirs: c.idle_heartbeat },
      { label: 'replicas', field: 'replicas', ours: want.num_replicas, theirs: c.num_replicas },
      { label: 'memory storage', field: 'memoryStorage', ours: want.mem_storage, theirs: c.mem_storage === true },
    ];
    // Only what the component sets is compared, as daprd's client does.
    const differs = checks.find((x) => x.ours !== undefined && x.ours !== x.theirs);
    if (differs) {
      throw new ConfigError(
        `${this.subject}: durable consumer '${d}' of stream '${stream}' exists with ${differs.label} ${String(differs.theirs)}, the component asks for ${String(differs.ours)}: daprd refuses to subscribe to it too; ${rm}`,
        at(differs.field),
      );
    }
  }

  /** Creates the durable consumer (or checks the one there). Undefined without durableName. */
  private async durable(stream: string, topic: string): Promise<ConsumerInfo | undefined> {
    const { jsm } = this.client();
    const name = this.s.durableName;
    if (name === undefined) return undefined;
    const want = this.consumerConfig(topic);
    let info = await jsm.consumers.info(stream, name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!info) {
      try {
        info = await jsm.consumers.add(stream, { ...want, deliver_subject: this.deliverSubject(stream, name) });
      } catch (err) {
        // Another replica made it first: check that one.
        if (apiErrorCode(err) !== 10148 && apiErrorCode(err) !== 10013) throw this.consumerError(stream, err);
        info = await jsm.consumers.info(stream, name);
      }
    }
    this.checkDurable(info, want, stream, topic);
    return info;
  }

  private consumerError(stream: string, err: unknown): Error {
    return new ConfigError(
      `${this.subject}: NATS JetStream refused the consumer for stream '${stream}' asked by this component: ${scrubNats(errorMessage(err), this.target)}`,
      this.component.where(),
    );
  }

  private sayEphemeral(): void {
    if (this.ephemeralSaid) return;
    this.ephemeralSaid = true;
    this.log.warn(
      `${this.subject}: no durableName: each subscriber gets its own ephemeral consumer, so every replica gets every event, nothing is kept while none runs, and KEDA's nats-jetstream trigger has no consumer to read. Set durableName and queueGroupName (e.g. "{appID}") for one shared consumer per app`,
    );
  }

  async prepare(sub: SubscribeRequest): Promise<void> {
    if (this.s.durableName === undefined) {
      this.sayEphemeral();
      return;
    }
    await this.call(`create durable consumer '${this.s.durableName}' for subject '${sub.topic}'`, async () => {
      await this.durable(await this.streamFor(sub.topic), sub.topic);
    });
  }

  /** Binds a push subscription to the topic's consumer: the durable (made or checked), else a new ephemeral one. */
  private async bind(topic: string): Promise<JetStreamSubscription> {
    const { js, jsm } = this.client();
    const stream = await this.streamFor(topic);
    let name: string;
    const info = await this.durable(stream, topic);
    if (info) {
      if (!info.config.deliver_group && info.push_bound) {
        throw new ConfigError(
          `${this.subject}: durable consumer '${info.name}' of stream '${stream}' already has a subscriber; without queueGroupName it serves one (set queueGroupName, e.g. "{appID}", so replicas share it)`,
          { ...this.component.where('queueGroupName'), field: 'queueGroupName' },
        );
      }
      name = info.name;
    } else {
      this.sayEphemeral();
      try {
        name = (await jsm.consumers.add(stream, { ...this.consumerConfig(topic), deliver_subject: natsLib().createInbox() })).name;
      } catch (err) {
        throw this.consumerError(stream, err);
      }
    }
    const opts = natsLib().consumerOpts().bind(stream, name).manualAck();
    if (this.s.queueGroupName) opts.queue(this.s.queueGroupName);
    return js.subscribe(topic, opts);
  }

  async subscribe(sub: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    this.client();
    const { signal } = options;
    const limit = this.s.parallel ? Math.max(1, options.concurrency) : 1;
    const state = new BrokerState(options.onBrokerState, this.log);
    const onOutage = (lost: boolean): void => {
      if (lost) state.lost(receiveUnreachable(this.address, 'connection lost'));
      else state.working();
    };
    this.outageListeners.add(onOutage);
    const active = new Set<Promise<void>>();
    const wake = new Wakeup();
    let current: JetStreamSubscription | undefined;
    const stop = (): void => {
      wake.poke();
      // Buffered events come out of the iterator once more and are released at once, for another replica.
      void current?.drain().catch(() => current?.unsubscribe());
    };
    signal.addEventListener('abort', stop);
    try {
      while (!signal.aborted && !this.closed) {
        try {
          current = await this.call(`subscribe to subject '${sub.topic}'`, () => this.bind(sub.topic));
          if (signal.aborted) stop();
          for await (const m of current) {
            state.working();
            while (active.size >= limit && !signal.aborted && !this.closed) await wake.wait(Infinity);
            if (signal.aborted || this.closed) {
              if (this.s.ackPolicy !== 'none') m.nak();
              continue;
            }
            const p: Promise<void> = this.handle(m, handler).finally(() => {
              active.delete(p);
              wake.poke();
            });
            active.add(p);
          }
        } catch (err) {
          if (err instanceof ConfigError) throw err;
          if (signal.aborted || this.closed) break;
          state.lost(err instanceof BrokerError ? err : this.brokerError(`cannot subscribe to subject '${sub.topic}'`, err));
        }
        // The subscription ended without a stop (its consumer went away with a server that lost it): bind again.
        if (!signal.aborted && !this.closed) await sleep(1000, signal);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      this.outageListeners.delete(onOutage);
      while (active.size > 0) await Promise.allSettled([...active]);
    }
  }

  /** The NAK delay after a failed delivery (see the file's header for why these three). */
  private nakDelayMs(deliveryCount: number): number {
    if (this.s.ackWaitMs !== undefined) return this.s.ackWaitMs;
    const steps = this.s.backOffMs;
    if (steps.length > 0) return steps[Math.min(deliveryCount, steps.length) - 1] ?? 0;
    return redeliveryDelayMs(DEFAULT_REDELIVERY, deliveryCount);
  }

  private async handle(m: JsMsg, handler: MessageHandler): Promise<void> {
    const msg: QueueMessage = {
      id: `${m.info.stream}:${m.seq}`,
      data: Buffer.from(m.data),
      // daprd hands its runtime the subject under "Topic" and nothing else of the message.
      metadata: { Topic: m.subject },
      deliveryCount: m.info.deliveryCount,
      enqueuedAt: Math.floor(m.info.timestampNanos / 1e6),
    };
    let ok = false;
    try {
      ok = settle(await handler(msg)).ok;
    } catch (err) {
      this.log.debug(`handler failed on ${msg.id}: ${errorMessage(err)}`);
    }
    if (this.s.ackPolicy === 'none') return;
    if (ok) m.ack();
    else m.nak(this.nakDelayMs(msg.deliveryCount));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const nc = this.nc;
    this.nc = undefined;
    if (!nc) return;
    // Acks and NAKs are fire-and-forget: let them out (daprd drains the connection), never waiting long for a server gone.
    await withTimeout(nc.drain(), 2000, 'drain').catch(() => undefined);
    await nc.close().catch(() => undefined);
  }
}

export const jetstreamPubSub: PubSubDefinition = {
  types: [JETSTREAM_PUBSUB_TYPE],
  // The registry holds specs of every shape; the precise field types stay with this module's own parse.
  metadata: jetstreamPubSubMetadata as unknown as MetadataSpec,
  localOnly: false,
  create: (component, ctx) => new JetStreamPubSub(component, ctx),
};
