/**
 * pubsub.azure.servicebus.topics and .queues: Dapr's Service Bus pub/sub on @azure/service-bus.
 *
 * Names are daprd's, so KEDA's azure-servicebus trigger reads what an app consumes: topics — the Service Bus topic is
 * the topic, the app's subscription is named consumerID (default: the app id), replicas share it and each app has its
 * own; queues — the queue is named after the topic and every app competes for its events. Missing topics,
 * subscriptions and queues are created (with lockDurationInSec, maxDeliveryCount, defaultMessageTimeToLiveInSec,
 * autoDeleteOnIdleInSec) unless disableEntityManagement, as daprd creates them: on publish for the topic or queue, on
 * prepare / subscribe for the subscription.
 *
 * Events are received peek-lock; the handler's true completes one, anything else abandons it at once (the broker
 * counts the delivery and dead-letters at maxDeliveryCount), and after a failure the next event waits for
 * maxRetriableErrorsPerSec, as daprd. A handler that has not answered within handlerTimeoutInSec fails: its event is
 * abandoned then, and its handler slot stays taken until it does answer. Locks of events in hand are renewed every
 * lockRenewalInSec. Unlike daprd, nothing is locked ahead of a free handler: maxActiveMessages is an upper bound.
 */
import type { ServiceBusReceivedMessage, ServiceBusReceiver, ServiceBusSender } from '@azure/service-bus';
import { BrokerError, ConfigError, QscaleError } from '../../../errors.js';
import type { MetadataSpec } from '../../../components/metadata.js';
import { secretsOf } from '../../../components/redact.js';
import type { Logger } from '../../../util/log.js';
import { sleep } from '../../../util/abort.js';
import { TimeoutError, withTimeout } from '../../../util/timeout.js';
import type { PubSub, PubSubContext, PubSubDefinition, SubscribeRequest } from '../../../pubsub/types.js';
import { settle, type MessageHandler, type MessageMetadata, type ReceiveOptions, type ResolvedComponent } from '../../types.js';
import { BrokerState } from '../../broker-state.js';
import { SEND, bounded, receiveUnreachable, type BrokerAddress } from '../../unreachable.js';
import { NoAzureCredentialError } from '../identity.js';
import { describeServiceBusError, isFatal } from './errors.js';
import { bodyBytes, deliveryCountOf, toServiceBusMessage } from './message.js';
import { pubsubClients, type PubSubClients, type PubSubEntityAdmin } from './pubsub-admin.js';
import { pubsubMetadataOf } from './pubsub-message.js';
import {
  SERVICEBUS_QUEUES_PUBSUB_TYPE, SERVICEBUS_TOPICS_TYPE, parseServiceBusPubSub, serviceBusQueuesPubSubMetadata,
  serviceBusTopicsPubSubMetadata, type ServiceBusPubSubSettings,
} from './pubsub-metadata.js';
import { RateLimiter } from './timing.js';

/** How long one receive call waits for events before checking whether it should stop. */
const RECEIVE_WAIT_MS = 1000;

/** The entity a subscription reads and KEDA's azure-servicebus trigger measures. */
export interface ServiceBusSubscriptionEntity {
  /** topics: the topic; queues: the queue (named after the topic). */
  topicOrQueue: string;
  /** topics: the subscription (consumerID); queues: undefined. */
  subscription: string | undefined;
}

export function serviceBusSubscriptionEntity(mode: 'topics' | 'queues', consumerID: string, topic: string): ServiceBusSubscriptionEntity {
  return mode === 'topics' ? { topicOrQueue: topic, subscription: consumerID } : { topicOrQueue: topic, subscription: undefined };
}

export class ServiceBusPubSub implements PubSub {
  readonly name: string;
  readonly type: string;
  private readonly subject: string;
  private readonly log: Logger;
  private readonly secrets: string[];
  private readonly clients: PubSubClients;
  /** The management API, unless disableEntityManagement (or the emulator) says not to use it. */
  private readonly admin: PubSubEntityAdmin | undefined;
  private readonly consumerID: string;
  private readonly senders = new Map<string, ServiceBusSender>();
  /** Entities known to exist (or created): asked of the management API once. */
  private readonly ensured = new Set<string>();
  private readonly receivers = new Set<ServiceBusReceiver>();
  private readonly closing = new AbortController();
  private readonly said = new Set<string>();
  private closed = false;

  constructor(private readonly component: ResolvedComponent, private readonly s: ServiceBusPubSubSettings, ctx: PubSubContext, clients?: PubSubClients) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    this.log = ctx.logger.child({ component: component.name });
    const spec = s.mode === 'topics' ? serviceBusTopicsPubSubMetadata : serviceBusQueuesPubSubMetadata;
    this.secrets = secretsOf(spec.fields, component.metadata);
    this.consumerID = s.consumerID ?? ctx.appId;
    try {
      this.clients = clients ?? pubsubClients(s);
    } catch (err) {
      if (err instanceof NoAzureCredentialError) throw new BrokerError(`${this.subject}: ${err.message}`);
      throw err;
    }
    this.admin = s.disableEntityManagement ? undefined : this.clients.admin;
  }

  private address(): BrokerAddress {
    return { subject: this.subject, broker: 'Azure Service Bus', where: `sb://${this.s.connection.host}` };
  }

  private fail(doing: string, err: unknown): BrokerError {
    return new BrokerError(`${this.subject}: ${doing} (Service Bus ${this.s.connection.host}): ${describeServiceBusError(err, this.secrets)}`);
  }

  /** With entity management, the namespace is reached (and the Manage rights checked) now; without, at first use. */
  async init(): Promise<void> {
    const started = Date.now();
    const ms = this.component.initTimeoutMs;
    const { admin } = this;
    if (admin) {
      const signal = AbortSignal.timeout(ms);
      try {
        await withTimeout(admin.ping(signal), ms, `no answer within initTimeout ${ms} ms`);
      } catch (err) {
        throw this.fail('cannot reach the namespace through the management API', signal.aborted ? new Error(`no answer within initTimeout ${ms} ms`) : err);
      }
    } else if (this.s.connection.emulator && !this.s.disableEntityManagement) {
      this.log.warn('UseDevelopmentEmulator=true: the emulator has no management API, so topics, subscriptions and queues are not created; ' +
        'set disableEntityManagement: true to silence this');
    }
    const auth = this.s.azureAd ? ` with Azure AD (${this.clients.credentials ?? 'a credential of its own'})` : '';
    this.log.info(`ready for Service Bus ${this.s.connection.host}${auth}, ${this.s.mode === 'topics' ? `subscriptions named '${this.consumerID}'` : 'queues named after topics'} (${Date.now() - started} ms)`);
  }

  async publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<void> {
    if (this.closed) throw new BrokerError(`${this.subject}: closed`);
    const msg = toServiceBusMessage(data, metadata, (why) => this.once(`ttl:${why}`, () => this.log.warn(`${this.subject}: ${why} (said once)`)));
    // As daprd: the topic (or queue) is made sure of before its first sender.
    await this.ensureEntity(topic);
    const sender = this.sender(topic);
    const abort = new AbortController();
    try {
      await bounded(this.address(), SEND, this.s.timeoutMs, sender.sendMessages(msg, { abortSignal: abort.signal }), () => abort.abort());
    } catch (err) {
      if (err instanceof QscaleError) throw err;
      throw this.fail(`publish to ${this.s.mode === 'topics' ? 'topic' : 'queue'} '${topic}' failed`, err);
    }
  }

  async prepare(sub: SubscribeRequest): Promise<void> {
    this.checkSubscription(sub);
    await this.ensureSubscription(sub.topic);
  }

  async subscribe(sub: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    this.checkSubscription(sub);
    const { signal } = options;
    const state = new BrokerState(options.onBrokerState, this.log);
    const limit = this.limit(options.concurrency);
    const what = this.describeEntity(sub.topic);
    let backoff = this.s.minConnectionRecoveryMs;
    const retry = async (err: unknown): Promise<void> => {
      state.lost(receiveUnreachable(this.address(), `${what}: ${describeServiceBusError(err, this.secrets)}`));
      await sleep(backoff, AbortSignal.any([signal, this.closing.signal]));
      backoff = Math.min(this.s.maxConnectionRecoveryMs, Math.max(1, backoff * 2));
    };
    while (!signal.aborted && !this.closed) {
      try {
        await this.ensureSubscription(sub.topic);
      } catch (err) {
        if (isFatal((err as { cause?: unknown }).cause ?? err)) throw err;
        await retry(err);
        continue;
      }
      break;
    }
    if (signal.aborted || this.closed) return;
    const e = serviceBusSubscriptionEntity(this.s.mode, this.consumerID, sub.topic);
    const receiverOptions = {
      receiveMode: 'peekLock' as const,
      // Renewed on daprd's lockRenewalInSec clock instead of the SDK's own.
      maxAutoLockRenewalDurationInMs: 0,
      // Exactly the bytes the publisher stored: no JSON decoding of the body.
      skipParsingBodyAsJson: true,
    };
    const receiver = e.subscription === undefined
      ? this.clients.messaging.createReceiver(e.topicOrQueue, receiverOptions)
      : this.clients.messaging.createReceiver(e.topicOrQueue, e.subscription, receiverOptions);
    this.receivers.add(receiver);
    const mine = new Set<ServiceBusReceivedMessage>();
    const active = new Set<Promise<void>>();
    const limiter = new RateLimiter(this.s.maxRetriableErrorsPerSec);
    const renewal = this.s.lockRenewalMs > 0 ? setInterval(() => void this.renewLocks(receiver, mine), this.s.lockRenewalMs) : undefined;
    let fatal: unknown;
    try {
      while (!signal.aborted && !this.closed) {
        if (active.size >= limit) {
          await Promise.race(active);
          continue;
        }
        let batch: ServiceBusReceivedMessage[];
        try {
          batch = await receiver.receiveMessages(limit - active.size, { maxWaitTimeInMs: RECEIVE_WAIT_MS });
          backoff = this.s.minConnectionRecoveryMs;
          state.working();
        } catch (err) {
          if (signal.aborted || this.closed) break;
          if (isFatal(err)) {
            fatal = err;
            break;
          }
          await retry(err);
          continue;
        }
        for (const m of batch) {
          if (signal.aborted || this.closed) {
            // Arrived while stopping: given back at once rather than left locked.
            await receiver.abandonMessage(m).catch(() => undefined);
            continue;
          }
          const p: Promise<void> = this.handle(receiver, sub.topic, m, mine, handler, limiter).finally(() => active.delete(p));
          active.add(p);
        }
      }
    } finally {
      // Every started handler call settles and its outcome is applied before subscribe() returns: a drain loses nothing.
      while (active.size > 0) await Promise.allSettled([...active]);
      if (renewal) clearInterval(renewal);
      this.receivers.delete(receiver);
      await receiver.close().catch(() => undefined);
    }
    if (fatal !== undefined) throw this.fail(`receiving from ${what} stopped`, fatal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    for (const r of [...this.receivers]) await r.close().catch(() => undefined);
    for (const s of this.senders.values()) await s.close().catch(() => undefined);
    await this.clients.messaging.close().catch(() => undefined);
  }

  private describeEntity(topic: string): string {
    return this.s.mode === 'topics' ? `subscription '${this.consumerID}' of topic '${topic}'` : `queue '${topic}'`;
  }

  /** Subscription metadata daprd reads that qscale does not serve: refused, naming it. */
  private checkSubscription(sub: SubscribeRequest): void {
    if (this.consumerID === '' && this.s.mode === 'topics') {
      throw new ConfigError(`${this.subject}: missing consumerID (no app id either): it names the topic subscription`, { field: 'consumerID' });
    }
    if (/^(1|true|t|yes|y|on)$/i.test(sub.metadata.requireSessions ?? '')) {
      throw new ConfigError(`${this.subject}: subscription to topic '${sub.topic}': metadata 'requireSessions' is not supported by qscale (session-enabled subscriptions); remove it to run locally`, { field: 'requireSessions' });
    }
  }

  /** Handler calls at once: the smallest of the sidecar's limit, maxConcurrentHandlers (0 = none) and maxActiveMessages. */
  private limit(concurrency: number): number {
    const sidecar = concurrency > 0 ? Math.floor(concurrency) : Infinity;
    const handlers = this.s.maxConcurrentHandlers > 0 ? this.s.maxConcurrentHandlers : Infinity;
    return Math.max(1, Math.min(sidecar, handlers, this.s.maxActiveMessages));
  }

  private sender(topicOrQueue: string): ServiceBusSender {
    let s = this.senders.get(topicOrQueue);
    if (!s) {
      s = this.clients.messaging.createSender(topicOrQueue);
      this.senders.set(topicOrQueue, s);
    }
    return s;
  }

  /** daprd's EnsureTopic (topics) or EnsureQueue (queues); nothing without the management API. */
  private async ensureEntity(topic: string): Promise<void> {
    const { admin } = this;
    const key = `${this.s.mode}:${topic}`;
    if (!admin || this.ensured.has(key)) return;
    const kind = this.s.mode === 'topics' ? 'topic' : 'queue';
    await this.managed(`cannot read or create ${kind} '${topic}' through the management API`, async (signal) => {
      if (this.s.mode === 'topics') {
        if (!(await admin.topicExists(topic, signal))) {
          await admin.createTopic(topic, signal);
          this.log.info(`created Service Bus topic '${topic}'`);
        }
      } else if (!(await admin.queueExists(topic, signal))) {
        await admin.createQueue(topic, this.s.create, signal);
        this.log.info(`created Service Bus queue '${topic}'`);
      }
    });
    this.ensured.add(key);
  }

  /** daprd's EnsureSubscription: the topic, then this app's subscription; queues: the queue. */
  private async ensureSubscription(topic: string): Promise<void> {
    await this.ensureEntity(topic);
    const { admin } = this;
    const key = `subscription:${topic}:${this.consumerID}`;
    if (this.s.mode !== 'topics' || !admin || this.ensured.has(key)) return;
    await this.managed(`cannot read or create subscription '${this.consumerID}' of topic '${topic}' through the management API`, async (signal) => {
      if (!(await admin.subscriptionExists(topic, this.consumerID, signal))) {
        await admin.createSubscription(topic, this.consumerID, this.s.create, signal);
        this.log.info(`created Service Bus subscription '${this.consumerID}' of topic '${topic}'`);
      }
    });
    this.ensured.add(key);
  }

  /** One management step, bounded by timeoutInSec as daprd bounds it; failures name what was being done. */
  private async managed(doing: string, step: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const ms = this.s.timeoutMs;
    const signal = AbortSignal.any([AbortSignal.timeout(ms), this.closing.signal]);
    try {
      await withTimeout(step(signal), ms, `no answer within timeoutInSec ${ms / 1000} s`);
    } catch (err) {
      const cause = err instanceof TimeoutError || (signal.aborted && !this.closed) ? new Error(`no answer within timeoutInSec ${ms / 1000} s`) : err;
      throw new BrokerError(`${this.subject}: ${doing} (Service Bus ${this.s.connection.host}): ${describeServiceBusError(cause, this.secrets)}`, { cause: err });
    }
  }

  private async handle(
    receiver: ServiceBusReceiver, topic: string, m: ServiceBusReceivedMessage, mine: Set<ServiceBusReceivedMessage>,
    handler: MessageHandler, limiter: RateLimiter,
  ): Promise<void> {
    mine.add(m);
    try {
      const call = (async () => handler({
        id: m.messageId === undefined ? String(m.sequenceNumber ?? '') : String(m.messageId),
        data: bodyBytes(m),
        metadata: pubsubMetadataOf(m),
        deliveryCount: deliveryCountOf(m),
        ...(m.enqueuedTimeUtc ? { enqueuedAt: m.enqueuedTimeUtc.getTime() } : {}),
      }))();
      let outcome: { ok: boolean; reason: string };
      try {
        outcome = settle(await withTimeout(call, this.s.handlerTimeoutMs, 'handler timeout'));
      } catch (err) {
        outcome = err instanceof TimeoutError
          ? { ok: false, reason: `the app did not answer within handlerTimeoutInSec (${this.s.handlerTimeoutMs / 1000} s)` }
          : settle(undefined, err);
      }
      try {
        if (outcome.ok) await receiver.completeMessage(m);
        else await receiver.abandonMessage(m);
      } catch (err) {
        // The lock was lost (expired or connection dropped): the broker delivers the event again.
        this.log.warn(`could not ${outcome.ok ? 'complete' : 'abandon'} event ${String(m.messageId)} of ${this.describeEntity(topic)}: ${describeServiceBusError(err, this.secrets)}`);
      }
      if (!outcome.ok) {
        this.log.debug(`event ${String(m.messageId)} of ${this.describeEntity(topic)} abandoned: ${outcome.reason}`);
        // A timed-out handler keeps its slot until it answers: at most `concurrency` calls to the app at once.
        await call.then(() => undefined, () => undefined);
        // daprd's maxRetriableErrorsPerSec: a failure holds its slot a moment, so a poison event cannot spin hot.
        await limiter.take();
      }
    } finally {
      mine.delete(m);
    }
  }

  private async renewLocks(receiver: ServiceBusReceiver, mine: Set<ServiceBusReceivedMessage>): Promise<void> {
    for (const m of [...mine]) {
      try {
        await receiver.renewMessageLock(m);
      } catch (err) {
        if (mine.has(m)) this.log.warn(`could not renew the lock of event ${String(m.messageId)}: ${describeServiceBusError(err, this.secrets)}`);
      }
    }
  }

  private once(key: string, say: () => void): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    say();
  }
}

export const serviceBusTopicsPubSub: PubSubDefinition = {
  // daprd registers the older name too.
  types: [SERVICEBUS_TOPICS_TYPE, 'pubsub.azure.servicebus'],
  metadata: serviceBusTopicsPubSubMetadata as unknown as MetadataSpec,
  localOnly: false,
  create(component, ctx) {
    return new ServiceBusPubSub(component, parseServiceBusPubSub(component, 'topics'), ctx);
  },
};

export const serviceBusQueuesPubSub: PubSubDefinition = {
  types: [SERVICEBUS_QUEUES_PUBSUB_TYPE, 'pubsub.azure.servicebusqueues'],
  metadata: serviceBusQueuesPubSubMetadata as unknown as MetadataSpec,
  localOnly: false,
  create(component, ctx) {
    return new ServiceBusPubSub(component, parseServiceBusPubSub(component, 'queues'), ctx);
  },
};
