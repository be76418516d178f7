/**
 * What every broker-native trigger shares: each read is bounded (withTimeout), so a broker that went away or never
 * answers turns into a rejected metricAndActivity naming the trigger and its target instead of a poll that hangs;
 * and the trigger's connection is opened once, shared by concurrent reads (the poll and the arrival watch), dropped
 * when it breaks or a read times out, and released for good by close() — also when close() comes while it opens.
 */
import { BrokerError, errorMessage } from '../errors.js';
import { withTimeout } from '../util/timeout.js';

/**
 * The bound on one trigger read, connect (when needed) and query: within KEDA's default HTTP timeout of 3 s
 * (KEDA_HTTP_DEFAULT_TIMEOUT), which the supervisor also puts around every read, so that a read getting no answer
 * fails in the trigger's own words, naming its target.
 */
export const TRIGGER_READ_TIMEOUT_MS = 2500;

/** The rejection of a read after close(). */
export class TriggerClosedError extends BrokerError {
  constructor(subject: string) {
    super(`${subject}: the trigger was closed`);
  }
}

/**
 * Runs one read within `ms`; any failure (the timeout included) becomes a BrokerError reading
 * `<subject>: cannot read <what> at <where>: <cause>`. `describe` turns the cause into words (and removes secrets).
 */
export async function boundedRead<T>(
  read: () => Promise<T>,
  o: { subject: string; what: string; where: string; ms?: number; describe?: (err: unknown) => string; onTimeout?: () => void },
): Promise<T> {
  const ms = o.ms ?? TRIGGER_READ_TIMEOUT_MS;
  try {
    return await withTimeout(read(), ms, `no answer within ${ms} ms`, o.onTimeout);
  } catch (err) {
    if (err instanceof TriggerClosedError) throw err;
    const cause = err instanceof Error && (err as { code?: unknown }).code === 'ERR_TIMEOUT' ? errorMessage(err) : (o.describe ?? errorMessage)(err);
    throw new BrokerError(`${o.subject}: cannot read ${o.what} at ${o.where}: ${cause}`, { cause: err });
  }
}

/**
 * One connection of a trigger, opened on first use. Concurrent get() calls share one opening; a connection that
 * finishes opening after reset() or close() is disposed at once, so none is ever left open behind the trigger's back.
 */
export class TriggerConnection<T> {
  private opening: Promise<T> | undefined;
  private current: T | undefined;
  private closed = false;

  constructor(
    private readonly subject: string,
    private readonly open: () => Promise<T>,
    private readonly dispose: (c: T) => Promise<void>,
  ) {}

  get(): Promise<T> {
    if (this.closed) return Promise.reject(new TriggerClosedError(this.subject));
    if (this.current !== undefined) return Promise.resolve(this.current);
    if (!this.opening) {
      const p: Promise<T> = this.open().then(async (c) => {
        if (this.closed || this.opening !== p) {
          await this.dispose(c).catch(() => undefined);
          throw new TriggerClosedError(this.subject);
        }
        this.current = c;
        this.opening = undefined;
        return c;
      });
      p.catch(() => {
        if (this.opening === p) this.opening = undefined;
      });
      this.opening = p;
    }
    return this.opening;
  }

  /**
   * Drops the connection (it broke, or a read on it timed out): the next get() opens a new one. With `which`, only
   * when that connection is still the current one, so a late report about an old connection changes nothing.
   */
  reset(which?: T): void {
    if (which !== undefined && which !== this.current) return;
    const c = this.current;
    this.current = undefined;
    this.opening = undefined;
    if (c !== undefined) void this.dispose(c).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = undefined;
    this.opening = undefined;
    if (c !== undefined) await this.dispose(c).catch(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
