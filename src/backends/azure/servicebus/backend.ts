/**
 * bindings.azure.servicebusqueues: Dapr's Service Bus queue binding on @azure/service-bus.
 * Peek-lock receive; the handler's true completes the message, anything else abandons it (the broker counts the
 * delivery), and on the delivery that reaches the queue's MaxDeliveryCount dead-letters it with the handler's answer
 * (dead-letters.ts; browse and replay below). Service Bus has no delay on abandon, so the redelivery
 * wait is spent holding the message's lock (renewed) before abandoning it; the held message keeps its handler slot,
 * and a drain abandons it at once. Locks of messages in hand are renewed every
 * lockRenewalInSec while the app works. Unlike daprd, nothing is locked ahead of a free handler: maxActiveMessages
 * is an upper bound, and no more than the handlers can take now is ever locked (components-contrib#1526).
 */
import type * as ServiceBusSdk from '@azure/service-bus';
import type {
  ServiceBusClient, ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusReceiver, ServiceBusSender,
} from '@azure/service-bus';
import type LongLib from 'long';
import { lazyModule } from '../../lazy-require.js';

const sdk = lazyModule<typeof ServiceBusSdk>('@azure/service-bus');
const long = lazyModule<typeof LongLib>('long');
import { BrokerError, QscaleError } from '../../../errors.js';
import type { Logger } from '../../../util/log.js';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, MessageHandler, MessageMetadata, Pingable, Purgeable, QueueDepth,
  QueueMessage, ReceiveOptions, ResolvedComponent,
} from '../../types.js';
import { settle } from '../../types.js';
import { DEFAULT_MAX_DELIVERY_COUNT, SdkQueueAdmin, type QueueAdmin, type QueueFacts } from './admin.js';
import {
  deadLetterIdOf, deadLetterSettlement, deadLetteredAtOf, requeueMessage, toDeadLetter,
} from './dead-letters.js';
import { secretsOf } from '../../../components/redact.js';
import { describeServiceBusError, isFatal } from './errors.js';
import { bodyBytes, deliveryCountOf, metadataOf, toServiceBusMessage } from './message.js';
import { serviceBusMetadata, type ServiceBusSettings } from './metadata.js';
import { RateLimiter } from './timing.js';
import { sleep } from '../../../util/abort.js';
import { withTimeout } from '../../../util/timeout.js';
import { DEPTH, SEND, bounded, type BrokerAddress } from '../../unreachable.js';
import { redeliveryDelayMs } from '../../redelivery.js';
import { NoAzureCredentialError, chained, daprCredentialChain, describeChain } from '../identity.js';

/** The clients the binding works through; tests pass their own (see test/backends/azure). */
export interface ServiceBusClients {
  messaging: ServiceBusClient;
  /** undefined: no management API (the emulator) — no queue creation, no depth. */
  admin: QueueAdmin | undefined;
  /** With Azure AD: the credentials tried, in order, for the log. */
  credentials?: string;
}

export function defaultClients(s: ServiceBusSettings): ServiceBusClients {
  const options = {
    identifier: 'qscale',
    // The SDK's own retry is Dapr's publish retry: throttled sends back off from publishInitialRetryIntervalInMs.
    retryOptions: {
      mode: sdk().RetryMode.Exponential,
      maxRetries: s.publishMaxRetries,
      retryDelayInMs: Math.max(1, s.publishInitialRetryIntervalMs),
      timeoutInMs: s.timeoutMs,
    },
  };
  if (s.azureAd) {
    // namespaceName: the namespace and an Azure AD credential, for messaging and management alike, as daprd does.
    const chain = daprCredentialChain(s.azureAd);
    const credential = chained(chain);
    const messaging = new (sdk().ServiceBusClient)(s.connection.host, credential, options);
    return { messaging, admin: SdkQueueAdmin.fromCredential(s.connection.host, credential), credentials: describeChain(chain) };
  }
  const messaging = new (sdk().ServiceBusClient)(s.connection.withoutEntityPath, options);
  // The emulator speaks AMQP only: like daprd, skip management there.
  const admin = s.connection.emulator ? undefined : SdkQueueAdmin.fromConnectionString(s.connection.withoutEntityPath);
  return { messaging, admin };
}

/** How long receive() waits for a message before checking whether it should stop. */
const RECEIVE_WAIT_MS = 1000;

/** Messages taken at once by a dead-letter or purge operation. */
const BATCH = 100;
/** How far the broker's clock may be ahead of this machine's before a purge takes a message for a newcomer. */
const CLOCK_SKEW_MS = 60_000;

/** What the binding knows of its queue: read through the management API, else from the component. */
interface KnownQueue {
  maxDeliveryCount: number;
  /** undefined: not known (no management API, or it did not answer). */
  requiresDuplicateDetection: boolean | undefined;
}

export class ServiceBusBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
  readonly name: string;
  readonly type: string;
  private readonly subject: string;
  private readonly log: Logger;
  private readonly secrets: string[];
  private readonly clients: ServiceBusClients;
  private sender: ServiceBusSender | undefined;
  private readonly inHand = new Set<ServiceBusReceivedMessage>();
  private readonly receivers = new Set<ServiceBusReceiver>();
  private closed = false;
  private readonly closing = new AbortController();
  /** A request TTL daprd would drop was seen (warned once). */
  private ttlIgnored = false;
  /** The queue's MaxDeliveryCount and duplicate detection, read once (init, or first needed). */
  private known: Promise<KnownQueue> | undefined;

  constructor(
    private readonly component: ResolvedComponent,
    private readonly s: ServiceBusSettings,
    ctx: BackendContext,
    clients?: ServiceBusClients,
  ) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    this.log = ctx.logger.child({ component: component.name });
    // Every secret of the component (its declared sensitive fields, and the key inside the connection string).
    this.secrets = secretsOf(serviceBusMetadata.fields, component.metadata);
    try {
      this.clients = clients ?? defaultClients(s);
    } catch (err) {
      if (err instanceof NoAzureCredentialError) throw new BrokerError(`${this.subject}: ${err.message}`);
      throw err;
    }
  }

  private where(): string {
    return `Service Bus ${this.s.connection.host}, queue '${this.s.queueName}'`;
  }

  private address(): BrokerAddress {
    return { subject: this.subject, broker: 'Azure Service Bus', where: `sb://${this.s.connection.host}` };
  }

  private fail(doing: string, err: unknown, deadline?: { signal: AbortSignal; ms: number }): BrokerError {
    if (deadline?.signal.aborted) err = new Error(`no answer within initTimeout ${deadline.ms} ms`);
    return new BrokerError(`${this.subject}: ${doing} (${this.where()}): ${describeServiceBusError(err, this.secrets)}`);
  }

  async init(): Promise<void> {
    const started = Date.now();
    for (const n of this.s.notices) this.log.warn(n);
    const ms = this.component.initTimeoutMs;
    const signal = AbortSignal.timeout(ms);
    const deadline = { signal, ms };
    const { admin } = this.clients;
    if (admin && !this.s.disableEntityManagement) {
      let facts: QueueFacts | undefined;
      try {
        facts = await withTimeout(admin.queueFacts(this.s.queueName, signal), ms, `no answer within initTimeout ${ms} ms`);
      } catch (err) {
        throw this.fail('cannot read the queue through the management API', err, deadline);
      }
      if (!facts) {
        try {
          await withTimeout(admin.createQueue(this.s.queueName, this.s.create, signal), ms, `no answer within initTimeout ${ms} ms`);
        } catch (err) {
          throw this.fail('cannot create the missing queue', err, deadline);
        }
        this.log.info(`created Service Bus queue '${this.s.queueName}'`);
        facts = { maxDeliveryCount: this.s.create.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT, requiresDuplicateDetection: false };
      }
      this.known = Promise.resolve(facts);
    } else if (this.s.connection.emulator && !this.s.disableEntityManagement) {
      this.log.warn('UseDevelopmentEmulator=true: the emulator has no management API, the queue is not created; ' +
        'set disableEntityManagement: true to silence this');
    }
    try {
      // Opening the send link checks reachability, credentials and the queue now rather than at the first message.
      const sender = this.senderLink();
      await withTimeout(sender.createMessageBatch({ abortSignal: signal }), ms, `no answer within initTimeout ${ms} ms`);
    } catch (err) {
      throw this.fail('cannot connect', err, deadline);
    }
    const auth = this.s.azureAd ? ` with Azure AD (${this.clients.credentials ?? 'a credential of its own'})` : '';
    this.log.info(`connected to ${this.where()}${auth} (${Date.now() - started} ms)`);
  }

  private senderLink(): ServiceBusSender {
    this.sender ??= this.clients.messaging.createSender(this.s.queueName);
    return this.sender;
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    const msg = toServiceBusMessage(data, metadata, (why) => {
      if (this.ttlIgnored) return;
      this.ttlIgnored = true;
      this.log.warn(`${this.subject}: ${why} (said once)`);
    });
    // One bound for the send with its retries (timeoutInSec): an unreachable namespace never holds the caller longer.
    const abort = new AbortController();
    try {
      await bounded(this.address(), SEND, this.s.timeoutMs, this.senderLink().sendMessages(msg, { abortSignal: abort.signal }), () => abort.abort());
    } catch (err) {
      if (err instanceof QscaleError) throw err;
      throw this.fail('send failed', err);
    }
  }

  /** Handler calls at once: the smallest of the sidecar's limit, maxConcurrentHandlers (0 = none) and maxActiveMessages. */
  private limit(concurrency: number): number {
    const sidecar = concurrency > 0 ? Math.floor(concurrency) : Infinity;
    const handlers = this.s.maxConcurrentHandlers > 0 ? this.s.maxConcurrentHandlers : Infinity;
    return Math.max(1, Math.min(sidecar, handlers, this.s.maxActiveMessages));
  }

  async receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { signal } = options;
    const limit = this.limit(options.concurrency);
    const receiver = this.clients.messaging.createReceiver(this.s.queueName, {
      receiveMode: 'peekLock',
      // qscale renews on Dapr's lockRenewalInSec clock instead of the SDK's own.
      maxAutoLockRenewalDurationInMs: 0,
      // Exactly the bytes the producer stored: no JSON decoding of the body.
      skipParsingBodyAsJson: true,
    });
    this.receivers.add(receiver);
    const mine = new Set<ServiceBusReceivedMessage>();
    const active = new Set<Promise<void>>();
    const limiter = new RateLimiter(this.s.maxRetriableErrorsPerSec);
    // What cuts a redelivery wait short: this receive stopping, or the backend closing.
    const stopping = AbortSignal.any([signal, this.closing.signal]);
    const renewal = this.s.lockRenewalMs > 0 ? setInterval(() => void this.renewLocks(receiver, mine), this.s.lockRenewalMs) : undefined;
    let backoff = this.s.minConnectionRecoveryMs;
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
        } catch (err) {
          if (signal.aborted || this.closed) break;
          if (isFatal(err)) {
            fatal = err;
            break;
          }
          this.log.warn(`receiving from queue '${this.s.queueName}' failed, retrying in ${backoff} ms: ${describeServiceBusError(err, this.secrets)}`);
          await sleep(backoff, signal);
          backoff = Math.min(this.s.maxConnectionRecoveryMs, Math.max(1, backoff * 2));
          continue;
        }
        for (const m of batch) {
          if (signal.aborted || this.closed) {
            // Arrived while stopping: give it back at once rather than leave it locked.
            await receiver.abandonMessage(m).catch(() => undefined);
            continue;
          }
          const p: Promise<void> = this.handle(receiver, m, mine, handler, limiter, stopping).finally(() => active.delete(p));
          active.add(p);
        }
      }
    } finally {
      // Every started handler call settles and its outcome is applied before receive() returns: a drain loses nothing.
      while (active.size > 0) await Promise.allSettled([...active]);
      if (renewal) clearInterval(renewal);
      this.receivers.delete(receiver);
      await receiver.close().catch(() => undefined);
    }
    if (fatal !== undefined) throw this.fail('receiving stopped', fatal);
  }

  private async handle(
    receiver: ServiceBusReceiver, m: ServiceBusReceivedMessage, mine: Set<ServiceBusReceivedMessage>,
    handler: MessageHandler, limiter: RateLimiter, stopping: AbortSignal,
  ): Promise<void> {
    mine.add(m);
    this.inHand.add(m);
    try {
      let outcome: { ok: boolean; reason: string };
      const deliveryCount = deliveryCountOf(m);
      try {
        const msg: QueueMessage = {
          id: m.messageId === undefined ? String(m.sequenceNumber ?? '') : String(m.messageId),
          data: bodyBytes(m),
          metadata: metadataOf(m),
          deliveryCount,
        };
        // No timeout of its own, as daprd's binding: the lock is renewed for as long as the app works.
        outcome = settle(await handler(m.enqueuedTimeUtc ? { ...msg, enqueuedAt: m.enqueuedTimeUtc.getTime() } : msg));
      } catch (err) {
        outcome = settle(undefined, err);
        this.log.debug(`handler failed for message ${String(m.messageId)}: ${describeServiceBusError(err, this.secrets)}`);
      }
      const max = outcome.ok ? 0 : (await this.knownQueue()).maxDeliveryCount;
      const last = !outcome.ok && deliveryCount >= max;
      // The redelivery wait, lock held and renewed; cut short by a drain or close. None before dead-lettering.
      if (!outcome.ok && !last) await sleep(redeliveryDelayMs(this.s.redelivery, deliveryCount), stopping);
      const doing = outcome.ok ? 'complete' : last ? 'dead-letter' : 'abandon';
      try {
        if (outcome.ok) await receiver.completeMessage(m);
        else if (last) await receiver.deadLetterMessage(m, deadLetterSettlement(deliveryCount, max, outcome.reason));
        else await receiver.abandonMessage(m);
      } catch (err) {
        // The lock was lost (expired or connection dropped): the broker delivers the message again.
        this.log.warn(`could not ${doing} message ${String(m.messageId)}: ${describeServiceBusError(err, this.secrets)}`);
      }
      if (last) this.log.warn(`message ${String(m.messageId)} dead-lettered after ${deliveryCount} deliveries: ${outcome.reason}`);
      // Dapr's maxRetriableErrorsPerSec: a failure holds its slot a moment, so a poison message cannot spin hot.
      if (!outcome.ok) await limiter.take();
    } finally {
      mine.delete(m);
      this.inHand.delete(m);
    }
  }

  /**
   * The queue's MaxDeliveryCount (when to dead-letter) and duplicate detection (whether a requeue may keep the
   * MessageId), read through the management API once. Without it (the emulator, a key without Manage rights):
   * the component's maxDeliveryCount, else Service Bus's default 10. If the queue's own count is lower, Service
   * Bus dead-letters the message itself first, with its own reason and without the handler's answer.
   */
  private knownQueue(): Promise<KnownQueue> {
    this.known ??= (async () => {
      const fallback = { maxDeliveryCount: this.s.create.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT, requiresDuplicateDetection: undefined };
      const admin = this.clients.admin;
      if (!admin) return fallback;
      try {
        const facts = await withTimeout(admin.queueFacts(this.s.queueName, AbortSignal.timeout(this.s.timeoutMs)), this.s.timeoutMs,
          `no answer within ${this.s.timeoutMs} ms`);
        if (facts) return facts;
      } catch (err) {
        this.log.debug(`queue properties not readable, dead-lettering after ${fallback.maxDeliveryCount} deliveries: ${describeServiceBusError(err, this.secrets)}`);
      }
      return fallback;
    })();
    return this.known;
  }

  private async renewLocks(receiver: ServiceBusReceiver, mine: Set<ServiceBusReceivedMessage>): Promise<void> {
    for (const m of [...mine]) {
      try {
        await receiver.renewMessageLock(m);
      } catch (err) {
        if (mine.has(m)) this.log.warn(`could not renew the lock of message ${String(m.messageId)}: ${describeServiceBusError(err, this.secrets)}`);
      }
    }
  }

  /**
   * ready: the queue's ActiveMessageCount minus the messages this process holds locked (the count includes locked
   * messages); inFlight: messages this process holds (other replicas' locks cannot be seen); deadLettered: the
   * dead-letter subqueue. Needs the management API.
   */
  async depth(): Promise<QueueDepth> {
    const admin = this.clients.admin;
    if (!admin) {
      throw new BrokerError(`${this.subject}: queue depth needs the Service Bus management API, which the emulator (UseDevelopmentEmulator=true) does not offer`);
    }
    let counts;
    const abort = new AbortController();
    try {
      counts = await bounded(this.address(), DEPTH, this.s.timeoutMs, admin.queueCounts(this.s.queueName, abort.signal), () => abort.abort());
    } catch (err) {
      if (err instanceof QscaleError) throw err;
      throw this.fail('cannot read queue counts', err);
    }
    const inFlight = this.inHand.size;
    return { ready: Math.max(0, counts.active - inFlight), inFlight, deadLettered: counts.deadLetter };
  }

  async ping(): Promise<void> {
    if (this.clients.admin) {
      await this.depth();
      return;
    }
    try {
      await withTimeout(this.senderLink().createMessageBatch(), this.s.timeoutMs, `no answer within ${this.s.timeoutMs} ms`);
    } catch (err) {
      throw this.fail('cannot reach Service Bus', err);
    }
  }

  private deadLetterReceiver(mode: 'peekLock' | 'receiveAndDelete' = 'peekLock'): ServiceBusReceiver {
    return this.clients.messaging.createReceiver(this.s.queueName, {
      subQueueType: 'deadLetter', receiveMode: mode, skipParsingBodyAsJson: true, maxAutoLockRenewalDurationInMs: 0,
    });
  }

  /** One call of a dead-letter or purge operation: bounded by timeoutInSec. */
  private call(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(this.s.timeoutMs) };
  }

  /** Peeks (never moves) the dead-letter subqueue, oldest first. */
  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    if (limit <= 0) return out;
    const r = this.deadLetterReceiver();
    try {
      // From the start, always: the SDK keeps the last sequence number peeked per entity across receivers and
      // would go on from there. A peek may bring fewer than asked although more are there.
      let from = long().ZERO;
      while (out.length < limit) {
        const batch = await r.peekMessages(Math.min(BATCH, limit - out.length), { ...this.call(), fromSequenceNumber: from });
        const last = batch[batch.length - 1]?.sequenceNumber;
        if (last === undefined) break;
        out.push(...batch.map(toDeadLetter));
        from = last.add(1);
      }
      return out;
    } catch (err) {
      throw this.fail('cannot list the dead letters', err);
    } finally {
      await r.close().catch(() => undefined);
    }
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    const r = this.deadLetterReceiver();
    try {
      const m = await this.peekOne(r, id);
      return m ? toDeadLetter(m) : undefined;
    } catch (err) {
      throw this.fail('cannot show a dead letter', err);
    } finally {
      await r.close().catch(() => undefined);
    }
  }

  /** The dead letter of that sequence number, peeked; none for an id that is not one. */
  private async peekOne(r: ServiceBusReceiver, id: string): Promise<ServiceBusReceivedMessage | undefined> {
    if (!/^\d{1,19}$/.test(id)) return undefined;
    const seq = long().fromString(id);
    const [m] = await r.peekMessages(1, { ...this.call(), fromSequenceNumber: seq });
    return m?.sequenceNumber?.equals(seq) ? m : undefined;
  }

  /**
   * Received from the subqueue (peek-lock), sent to the queue as a fresh message (requeueMessage), and only then
   * completed off the subqueue: a failure between the two leaves a duplicate, never a loss.
   */
  async requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const keepMessageId = (await this.knownQueue()).requiresDuplicateDetection === false;
    return this.takeDeadLetters('requeue dead letters', ids, async (taken) => {
      await this.sendAll(taken.map((m) => requeueMessage(m, keepMessageId)));
    });
  }

  async purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    if (ids === 'all') return this.drain('purge dead letters', this.deadLetterReceiver('receiveAndDelete'), deadLetteredAtOf);
    return this.takeDeadLetters('purge dead letters', ids, async () => undefined);
  }

  /**
   * Deletes the messages that can be received now (receive-and-delete until none comes): messages locked by a
   * handler, here or in another process, and scheduled ones are not received, so they stay.
   */
  async purge(): Promise<number> {
    const r = this.clients.messaging.createReceiver(this.s.queueName, { receiveMode: 'receiveAndDelete', skipParsingBodyAsJson: true });
    return this.drain('purge the queue', r, (m) => m.enqueuedTimeUtc?.getTime());
  }

  /**
   * Receive-and-delete in batches until a receive brings nothing, or brings a message that arrived well after the
   * purge began (`arrivedAt`, by the broker's clock: a minute is left for the two clocks to differ), so a producer
   * sending all along cannot keep the purge going.
   */
  private async drain(doing: string, r: ServiceBusReceiver, arrivedAt: (m: ServiceBusReceivedMessage) => number | undefined): Promise<number> {
    const began = Date.now() + CLOCK_SKEW_MS;
    let n = 0;
    try {
      for (;;) {
        const batch = await r.receiveMessages(BATCH, { ...this.call(), maxWaitTimeInMs: RECEIVE_WAIT_MS });
        n += batch.length;
        if (batch.length === 0 || batch.some((m) => (arrivedAt(m) ?? 0) > began)) return n;
      }
    } catch (err) {
      throw this.fail(`cannot ${doing}${n > 0 ? ` (${n} deleted before it failed)` : ''}`, err);
    } finally {
      await r.close().catch(() => undefined);
    }
  }

  /**
   * Receives the subqueue (peek-lock) front to back and hands the dead letters named (or every one that was
   * there when it began) to `apply` a batch at a time, completing them once it succeeded; the rest stay locked
   * until the scan ends and are then abandoned, so no message is received twice. A message seen again (its lock
   * ran out) ends the scan.
   */
  private async takeDeadLetters(doing: string, ids: readonly string[] | 'all', apply: (taken: ServiceBusReceivedMessage[]) => Promise<void>): Promise<number> {
    const began = Date.now();
    const r = this.deadLetterReceiver();
    // Only the ids there now (a peek each): the scan ends once they are found, not at the end of the subqueue.
    let wanted: Set<string> | undefined;
    if (ids !== 'all') {
      wanted = new Set();
      try {
        for (const id of new Set(ids)) if (await this.peekOne(r, id)) wanted.add(id);
      } catch (err) {
        await r.close().catch(() => undefined);
        throw this.fail(`cannot ${doing}`, err);
      }
      if (wanted.size === 0) {
        await r.close().catch(() => undefined);
        return 0;
      }
    }
    const held: ServiceBusReceivedMessage[] = [];
    const seen = new Set<string>();
    let n = 0;
    try {
      while (wanted === undefined || wanted.size > 0) {
        const batch = await r.receiveMessages(BATCH, { ...this.call(), maxWaitTimeInMs: RECEIVE_WAIT_MS });
        if (batch.length === 0) break;
        const taken: ServiceBusReceivedMessage[] = [];
        let again = false;
        for (const m of batch) {
          const id = deadLetterIdOf(m);
          again ||= seen.has(id);
          seen.add(id);
          const take = wanted ? wanted.delete(id) : (deadLetteredAtOf(m) ?? 0) <= began;
          (take ? taken : held).push(m);
        }
        if (taken.length > 0) {
          held.push(...taken);
          await apply(taken);
          for (const m of taken) {
            await r.completeMessage(m);
            held.splice(held.indexOf(m), 1);
            n++;
          }
        }
        if (again) break;
      }
      return n;
    } catch (err) {
      throw this.fail(`cannot ${doing}${n > 0 ? ` (${n} done before it failed)` : ''}`, err);
    } finally {
      for (const m of held) await r.abandonMessage(m).catch(() => undefined);
      await r.close().catch(() => undefined);
    }
  }

  /** Sends in as few batches as the size limit allows. */
  private async sendAll(messages: ServiceBusMessage[]): Promise<void> {
    const sender = this.senderLink();
    let batch = await sender.createMessageBatch(this.call());
    for (const msg of messages) {
      if (batch.tryAddMessage(msg)) continue;
      if (batch.count > 0) {
        await sender.sendMessages(batch, this.call());
        batch = await sender.createMessageBatch(this.call());
      }
      if (!batch.tryAddMessage(msg)) throw new Error(`dead letter ${String(msg.messageId)} is larger than a message may be`);
    }
    if (batch.count > 0) await sender.sendMessages(batch, this.call());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    for (const r of [...this.receivers]) await r.close().catch(() => undefined);
    await this.sender?.close().catch(() => undefined);
    await this.clients.messaging.close().catch(() => undefined);
  }
}
