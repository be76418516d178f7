/**
 * One reader per input binding: waits for the app, checks the app subscribes (OPTIONS probe), then lets the backend
 * push messages through the app channel. The handler's answer (2xx or not) is what acks or releases a message. A
 * receiver that fails (its broker went away) is restarted with backoff; the outage is printed once, again when its
 * cause changes, and once when messages flow again, and health reports it meanwhile.
 */
import { failed, isPingable, type MessageHandler, type MessageMetadata, type QueueMessage } from '../backends/types.js';
import type { Logger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';
import type { LoadedBinding } from './backends.js';
import { sleep, type AppChannel } from './app-channel.js';
import { Outage, describeCause, type OutageState } from './outage.js';
import type { DaprMetrics } from '../metrics/dapr.js';
import { LatencyRing } from './latency.js';

export type ReaderState = 'waiting-for-app' | 'probing' | 'reading' | 'not-subscribed' | 'restarting' | 'stopped';

export interface ReaderStats {
  name: string;
  /** The component's type (bindings.rabbitmq, …): the broker a latency comes from, or does not. */
  type: string;
  route: string;
  state: ReaderState;
  concurrency: number;
  inFlight: number;
  delivered: number;
  succeeded: number;
  failed: number;
  lastError?: string;
  /** Enqueue → ack latency of the messages acked (written into the metadata answer as its LatencyReport). */
  latency: LatencyRing;
  /** Set while the receiver cannot receive (its broker is unreachable): the cause and since when. */
  outage?: OutageState;
}

const FAILURE_LOG_EVERY_MS = 5000;
/** Retry backoff of a failed receiver: 1 s doubling to 30 s; back to 1 s after a receiver that ran a minute. */
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const BACKOFF_RESET_AFTER_MS = 60_000;
/** A restarted receiver that neither failed nor delivered within this long is taken as working again. */
const STABLE_AFTER_MS = 2000;
const PING_TIMEOUT_MS = 5000;

export class InputReader {
  readonly stats: ReaderStats;
  /** Set by the sidecar when it serves metrics: each delivery counted under daprd's input binding metrics. */
  metrics: DaprMetrics | undefined;
  private lastFailureLog = 0;
  private unloggedFailures = 0;
  private readonly outage: Outage;

  constructor(
    private readonly binding: LoadedBinding,
    private readonly channel: AppChannel,
    private readonly logger: Logger,
    appMaxConcurrency: number | undefined,
    /** The metadata the app is to see of each message (delivered-metadata.ts). */
    private readonly metadataFor: (msg: QueueMessage) => MessageMetadata = (msg) => msg.metadata,
  ) {
    const { plan } = binding;
    this.stats = {
      name: plan.name,
      type: plan.type,
      route: plan.route,
      state: 'waiting-for-app',
      concurrency: Math.min(appMaxConcurrency ?? Infinity, plan.maxConcurrentHandlers),
      inFlight: 0,
      delivered: 0,
      succeeded: 0,
      failed: 0,
      latency: new LatencyRing(),
    };
    const subject = `component ${plan.name} (${plan.type})`;
    this.outage = new Outage(
      {
        failing: (cause) =>
          `${subject}: input binding cannot receive: ${cause}; retrying until the broker answers, messages wait in the broker meanwhile`,
        changed: (cause) => `${subject}: input binding still cannot receive, now: ${cause}`,
        recovered: (s) => `${subject}: input binding receiving again after ${s} s`,
      },
      (level, line) => this.logger[level](line),
    );
  }

  /** Resolves after the signal aborted and every started delivery settled (acked or released). */
  async run(signal: AbortSignal): Promise<void> {
    const { plan } = this.binding;
    if (!(await this.channel.waitUntilReachable(signal))) return this.stop();
    if (!plan.inputDeclared) {
      this.stats.state = 'probing';
      const probe = await this.channel.probe(plan.probeRoute);
      if (!probe.subscribed) {
        this.stats.state = 'not-subscribed';
        this.logger.info(`app does not subscribe to input binding ${plan.name} (${probe.reason}): not reading it`);
        return;
      }
    }
    this.logger.info(`reading input binding ${plan.name} into POST ${plan.route} (concurrency ${this.stats.concurrency})`);
    await this.receiveUntilStopped(signal);
    this.stop();
  }

  private async receiveUntilStopped(signal: AbortSignal): Promise<void> {
    const { backend } = this.binding;
    const handler = this.handler();
    let backoff = FIRST_BACKOFF_MS;
    const wait = async (): Promise<void> => {
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
    while (!signal.aborted) {
      // While the broker is known to be away, a ping is the cheap way to learn it is back. Its error is not
      // reported: it says the same as the receiver's, in other words, and would read as a new cause.
      if (this.outage.state && isPingable(backend)) {
        const answered = await this.pings(backend);
        if (signal.aborted) break;
        if (!answered) {
          await wait();
          continue;
        }
      }
      if (!this.outage.state) this.stats.state = 'reading';
      const started = Date.now();
      const stable = setTimeout(() => this.working(), STABLE_AFTER_MS);
      stable.unref();
      try {
        await backend.receive(handler, {
          concurrency: this.stats.concurrency,
          signal,
          // A backend that reconnects by itself says when its broker goes and comes back: the same outage lines.
          onBrokerState: (err) => {
            clearTimeout(stable);
            if (err === undefined) this.working();
            else this.failed(describeCause(err, this.binding.component));
          },
        });
        if (!signal.aborted) this.logger.warn(`input binding ${this.binding.plan.name} stopped receiving (backend closed)`);
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.failed(describeCause(err, this.binding.component));
      } finally {
        clearTimeout(stable);
      }
      if (Date.now() - started >= BACKOFF_RESET_AFTER_MS) backoff = FIRST_BACKOFF_MS;
      await wait();
    }
  }

  private async pings(backend: { ping(): Promise<void> }): Promise<boolean> {
    try {
      await withTimeout(backend.ping(), PING_TIMEOUT_MS, `no answer to a ping within ${PING_TIMEOUT_MS} ms`);
      return true;
    } catch {
      return false;
    }
  }

  private failed(cause: string): void {
    this.stats.state = 'restarting';
    this.stats.lastError = cause;
    this.outage.failed(cause);
    this.stats.outage = this.outage.state;
  }

  private working(): void {
    if (!this.outage.state) return;
    this.outage.succeeded();
    this.stats.outage = undefined;
    this.stats.state = 'reading';
  }

  private stop(): void {
    this.stats.state = 'stopped';
  }

  private handler(): MessageHandler {
    const { route } = this.binding.plan;
    const s = this.stats;
    return async (msg) => {
      this.working();
      s.inFlight++;
      s.delivered++;
      const started = performance.now();
      let ok = false;
      try {
        const out = await this.channel.deliver(route, msg.data, this.metadataFor(msg));
        if (out.ok) {
          ok = true;
          s.succeeded++;
          s.latency.acked(msg.enqueuedAt);
          return true;
        }
        s.failed++;
        this.noteFailure(out.reason, msg.id, msg.deliveryCount);
        return failed(out.reason);
      } finally {
        s.inFlight--;
        this.metrics?.inputBinding(this.binding.plan.name, ok, performance.now() - started);
      }
    };
  }

  /** A failing app must not flood the log: one line, then a summary at most every few seconds. */
  private noteFailure(reason: string, id: string, deliveryCount: number): void {
    this.stats.lastError = reason;
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) {
      this.unloggedFailures++;
      return;
    }
    const more = this.unloggedFailures > 0 ? ` (and ${this.unloggedFailures} more failed deliveries since the last report)` : '';
    this.logger.warn(`delivery of message ${id} (attempt ${deliveryCount}) on ${this.binding.plan.name} failed: ${reason}; not acked, it will be retried or dead-lettered${more}`);
    this.lastFailureLog = now;
    this.unloggedFailures = 0;
  }
}
