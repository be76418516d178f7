/**
 * One reader per input binding: waits for the app, checks the app subscribes (OPTIONS probe), then lets the backend
 * push messages through the app channel. The handler's answer (2xx or not) is what acks or releases a message. A
 * receiver that dies is restarted with backoff, and health reports it meanwhile.
 */
import { errorMessage } from '../errors.js';
import type { MessageHandler } from '../backends/types.js';
import type { Logger } from '../util/log.js';
import type { LoadedBinding } from './backends.js';
import { sleep, type AppChannel } from './app-channel.js';
import { redactSecrets } from './redact.js';

export type ReaderState = 'waiting-for-app' | 'probing' | 'reading' | 'not-subscribed' | 'restarting' | 'stopped';

export interface ReaderStats {
  name: string;
  route: string;
  state: ReaderState;
  concurrency: number;
  inFlight: number;
  delivered: number;
  succeeded: number;
  failed: number;
  lastError?: string;
}

const FAILURE_LOG_EVERY_MS = 5000;
const MAX_BACKOFF_MS = 30_000;

export class InputReader {
  readonly stats: ReaderStats;
  private lastFailureLog = 0;
  private unloggedFailures = 0;

  constructor(
    private readonly binding: LoadedBinding,
    private readonly channel: AppChannel,
    private readonly logger: Logger,
    appMaxConcurrency: number | undefined,
  ) {
    const { plan } = binding;
    this.stats = {
      name: plan.name,
      route: plan.route,
      state: 'waiting-for-app',
      concurrency: Math.min(appMaxConcurrency ?? Infinity, plan.maxConcurrentHandlers),
      inFlight: 0,
      delivered: 0,
      succeeded: 0,
      failed: 0,
    };
  }

  /** Resolves after the signal aborted and every started delivery settled (acked or released). */
  async run(signal: AbortSignal): Promise<void> {
    const { plan, backend } = this.binding;
    if (!(await this.channel.waitUntilReachable(signal))) return this.stop();
    if (!plan.inputDeclared) {
      this.stats.state = 'probing';
      const probe = await this.channel.probe(plan.route);
      if (!probe.subscribed) {
        this.stats.state = 'not-subscribed';
        this.logger.info(`app does not subscribe to input binding ${plan.name} (${probe.reason}): not reading it`);
        return;
      }
    }
    const handler = this.handler();
    let backoff = 1000;
    while (!signal.aborted) {
      this.stats.state = 'reading';
      this.logger.info(`reading input binding ${plan.name} into POST ${plan.route} (concurrency ${this.stats.concurrency})`);
      try {
        await backend.receive(handler, { concurrency: this.stats.concurrency, signal });
        if (!signal.aborted) this.logger.warn(`input binding ${plan.name} stopped receiving (backend closed)`);
        break;
      } catch (err) {
        if (signal.aborted) break;
        this.stats.state = 'restarting';
        this.stats.lastError = redactSecrets(errorMessage(err), this.binding.component);
        this.logger.error(`input binding ${plan.name} receiver failed: ${this.stats.lastError}; restarting in ${backoff} ms`);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
    this.stop();
  }

  private stop(): void {
    this.stats.state = 'stopped';
  }

  private handler(): MessageHandler {
    const { route } = this.binding.plan;
    const s = this.stats;
    return async (msg) => {
      s.inFlight++;
      s.delivered++;
      try {
        const out = await this.channel.deliver(route, msg);
        if (out.ok) {
          s.succeeded++;
          return true;
        }
        s.failed++;
        this.noteFailure(out.reason, msg.id, msg.deliveryCount);
        return false;
      } finally {
        s.inFlight--;
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
