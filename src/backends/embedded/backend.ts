/**
 * The embedded queue as a Backend: at-least-once delivery from the shared SQLite file.
 * A receiver leases only as many messages as it has free handler slots (never prefetches), renews the leases of
 * messages still in the handler, completes on true and releases on false or a throw. Every outcome is applied with
 * the delivery's lease token, so when a lease expired and another process took the message, the late answer is a
 * no-op: two processes never both complete one message.
 */
import { BrokerError, errorMessage } from '../../errors.js';
import {
  settle, type Backend, type BackendContext, type DeadLetter, type DeadLetterReader, type HandlerResult, type MessageHandler,
  type MessageMetadata, type Pingable, type Purgeable, type QueueDepth, type ReceiveOptions, type ResolvedComponent,
} from '../types.js';
import type { EmbeddedSettings } from './metadata.js';
import { AckBatch } from './acks.js';
import { QueueStore, type DeadLetterIds, type LeasedMessage, type ReleaseOutcome } from './store.js';
import { redeliveryDelayMs } from '../redelivery.js';
import { Wakeup } from '../../util/wakeup.js';
import { BrokerState } from '../broker-state.js';

/** Upper bound on an idle wait, in case a wake-up was missed (e.g. the clock jumped). */
const IDLE_RECHECK_MS = 1000;
/** After a failed lease (the file unreadable), wait this long before trying again. */
const ERROR_RETRY_MS = 1000;
/** A dead letter's reason keeps at most this many characters of what the handler said. */
const REASON_CHARS = 1000;

export type SettledOutcome = 'completed' | 'lease-lost' | Exclude<ReleaseOutcome, 'lease-lost'> | 'release-lost';

export interface EmbeddedBackendOptions {
  /** Called after each delivery's outcome was applied (metrics, tests). */
  onSettled?: (msg: { id: string; deliveryCount: number }, outcome: SettledOutcome) => void;
}

/** What every delivery of one receive loop shares. */
interface Delivery {
  acks: AckBatch;
  handler: MessageHandler;
  /** The messages in the handler now, by seq: a slot is free once its message left it. */
  active: Map<number, LeasedMessage>;
  poke: () => void;
  settled: () => void;
}

export class EmbeddedBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
  readonly name: string;
  readonly type: string;
  private store: QueueStore | undefined;
  private closing: Promise<void> | undefined;
  private readonly stopAll = new AbortController();
  private readonly loops = new Set<Promise<void>>();

  constructor(
    component: ResolvedComponent,
    readonly settings: EmbeddedSettings,
    private readonly ctx: BackendContext,
    private readonly options: EmbeddedBackendOptions = {},
  ) {
    this.name = component.name;
    this.type = component.type;
  }

  get queueName(): string {
    return this.settings.queueName;
  }

  async init(): Promise<void> {
    this.db();
  }

  async ping(): Promise<void> {
    this.db().hasAny(this.queueName);
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    await this.db().enqueue(this.queueName, data, metadata);
  }

  async depth(): Promise<QueueDepth> {
    return this.db().depth(this.queueName);
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.db().deadLetters(this.queueName, limit);
  }

  /** Dead letters are named by the message's id. */
  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    return this.db().deadLetter(this.queueName, id);
  }

  async requeueDeadLetters(ids: DeadLetterIds): Promise<number> {
    return this.db().requeueDeadLetters(this.queueName, ids);
  }

  async purgeDeadLetters(ids: DeadLetterIds): Promise<number> {
    return this.db().purgeDeadLetters(this.queueName, ids);
  }

  async purge(): Promise<number> {
    return this.db().purge(this.queueName, this.settings.maxDeliveryCount);
  }

  receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    let store: QueueStore;
    try {
      store = this.db();
    } catch (err) {
      return Promise.reject(err);
    }
    const loop = this.runLoop(store, handler, options);
    this.loops.add(loop);
    return loop.finally(() => this.loops.delete(loop));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopAll.abort();
      await Promise.allSettled([...this.loops]);
      this.store?.unref();
    })();
    return this.closing;
  }

  private db(): QueueStore {
    if (this.closing) throw new BrokerError(`component ${this.name}: the embedded queue backend is closed`);
    this.store ??= QueueStore.acquire(this.ctx.dataDir);
    return this.store;
  }

  private async runLoop(store: QueueStore, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const { settings } = this;
    // Unlimited (Infinity) or nonsense from the caller leaves the component's own bound.
    const asked = Number.isFinite(options.concurrency) && options.concurrency >= 1 ? Math.floor(options.concurrency) : Infinity;
    const limit = Math.min(asked, settings.maxConcurrentHandlers);
    const active = new Map<number, LeasedMessage>();
    /** Deliveries started and not yet settled; the drain waits until none is left. */
    let running = 0;
    let drained: (() => void) | undefined;
    const stopped = (): boolean => options.signal.aborted || this.stopAll.signal.aborted;

    const wake = new Wakeup();
    const poke = wake.poke;
    /** Sleeps until poked, stopped or ms passed; with watch, a commit to the file after `baseline` pokes too. */
    const sleep = async (ms: number, watch?: { baseline: number | undefined }): Promise<void> => {
      if (stopped()) return;
      const unsubscribe = watch ? store.onChange(poke, watch.baseline) : undefined;
      try {
        await wake.wait(ms);
      } finally {
        unsubscribe?.();
      }
    };
    // Each answer frees a slot, and the next lease carries it. While other handlers are still in the app their answers
    // may come in this same turn (each HTTP response is its own I/O callback): the loop then wakes at the end of the
    // turn (setImmediate, no timer) so that all of them and the leases refilling their slots share one transaction.
    // A lone answer (nothing else in the handler) wakes it at once.
    const acks = new AckBatch(store);
    let turnEnd: NodeJS.Immediate | undefined;
    const wakeNow = (): void => {
      if (turnEnd) clearImmediate(turnEnd);
      turnEnd = undefined;
      poke();
    };
    acks.own(() => {
      if (active.size === 0) wakeNow();
      else turnEnd ??= setImmediate(wakeNow);
    });
    // What each delivery needs, made once per loop rather than a closure per message.
    const run: Delivery = {
      acks, handler, active, poke,
      settled: () => {
        running -= 1;
        if (running === 0) drained?.();
      },
    };
    options.signal.addEventListener('abort', poke, { once: true });
    this.stopAll.signal.addEventListener('abort', poke, { once: true });
    // The file may be locked or unreadable for a while: said once through onBrokerState, and once when it is back.
    const state = new BrokerState(options.onBrokerState, this.ctx.logger.child({ component: this.name }));
    const renewal = settings.renewEveryMs > 0
      ? setInterval(() => this.renew(store, active, state), settings.renewEveryMs)
      : undefined;
    let fatal: unknown;
    try {
      while (!stopped()) {
        const free = limit - active.size;
        if (free <= 0) {
          await sleep(IDLE_RECHECK_MS);
          continue;
        }
        let batch: LeasedMessage[];
        let baseline: number | undefined;
        const completing = acks.take();
        try {
          const r = store.lease(this.queueName, free, settings.visibilityMs, settings.maxDeliveryCount, completing);
          acks.report(completing, r.outcomes);
          batch = r.leased;
          baseline = r.version;
          state.working();
        } catch (err) {
          acks.report(completing, err instanceof Error ? err : new Error(String(err)));
          if (stopped()) break;
          state.lost(this.fileError(store, err));
          await sleep(ERROR_RETRY_MS);
          continue;
        }
        if (batch.length === 0) {
          await sleep(Math.min(store.nextVisibleIn(this.queueName) ?? IDLE_RECHECK_MS, IDLE_RECHECK_MS), { baseline });
          continue;
        }
        for (const m of batch) {
          active.set(m.seq, m);
          running += 1;
          void this.deliver(run, m);
        }
      }
    } catch (err) {
      fatal = err;
    } finally {
      // Drain: every handler already started settles and its outcome is applied before receive() returns.
      acks.disown();
      if (turnEnd) clearImmediate(turnEnd);
      while (running > 0) await new Promise<void>((resolve) => (drained = resolve));
      drained = undefined;
      acks.flush();
      if (renewal) clearInterval(renewal);
      options.signal.removeEventListener('abort', poke);
      this.stopAll.signal.removeEventListener('abort', poke);
    }
    if (fatal !== undefined) throw fatal;
  }

  private async deliver(run: Delivery, m: LeasedMessage): Promise<void> {
    try {
      await this.settleDelivery(run, m);
    } finally {
      // The slot frees when the handler answers (settleDelivery frees it then), at the latest here.
      if (run.active.delete(m.seq)) run.poke();
      run.settled();
    }
  }

  private async settleDelivery(run: Delivery, m: LeasedMessage): Promise<void> {
    let result: HandlerResult | undefined;
    let thrown: unknown;
    try {
      // The leased message is the handler's QueueMessage (its lease fields are the backend's own and unread there).
      result = await run.handler(m);
    } catch (err) {
      thrown = err ?? new Error(String(err));
    }
    const ok = thrown === undefined && result === true;
    let outcome: SettledOutcome;
    try {
      // The slot is free before the answer is queued: the receive loop then knows whether others are still working.
      run.active.delete(m.seq);
      const done = await run.acks.add(ok ? m : {
        seq: m.seq, token: m.token,
        release: {
          backoffMs: (n) => redeliveryDelayMs(this.settings.redelivery, n), maxDeliveryCount: this.settings.maxDeliveryCount,
          reason: settle(result, thrown).reason.slice(0, REASON_CHARS),
        },
      });
      outcome = done === 'lease-lost' && !ok ? 'release-lost' : done;
    } catch (err) {
      // The lease runs out on its own and the message comes back: nothing is lost.
      this.ctx.logger.error({ component: this.name, messageId: m.id, err: errorMessage(err) }, 'embedded queue: cannot apply the outcome');
      return;
    }
    if (outcome === 'lease-lost') {
      this.ctx.logger.warn({ component: this.name, messageId: m.id, visibilityTimeoutInSec: this.settings.visibilityMs / 1000 },
        'message processed after its lease expired: it may be delivered again');
    } else if (outcome === 'dead-lettered') {
      this.ctx.logger.warn({ component: this.name, messageId: m.id, deliveryCount: m.deliveryCount }, 'message moved to the dead letters');
    }
    this.options.onSettled?.({ id: m.id, deliveryCount: m.deliveryCount }, outcome);
  }

  /** The same words whichever statement failed (lease, renewal): it is the file that is the matter. */
  private fileError(store: QueueStore, err: unknown): BrokerError {
    const cause = errorMessage(err instanceof BrokerError && err.cause !== undefined ? err.cause : err);
    return new BrokerError(`component ${this.name} (${this.type}): embedded queue ${store.file} cannot be used (${cause}). ` +
      `Check that no other program holds it locked and that it is readable and writable`);
  }

  private renew(store: QueueStore, active: ReadonlyMap<number, LeasedMessage>, state: BrokerState): void {
    if (active.size === 0) return;
    try {
      const lost = new Set(store.renew([...active.values()], this.settings.visibilityMs));
      // With every slot taken no lease runs: a renewal that works is how the loop learns the file works again.
      state.working();
      for (const m of active.values()) {
        if (lost.has(m.seq)) {
          this.ctx.logger.warn({ component: this.name, messageId: m.id }, 'lease of a message still in the handler expired before renewal');
        }
      }
    } catch (err) {
      state.lost(this.fileError(store, err));
    }
  }
}
