/**
 * The one bound on a call that may not answer (a broker that went away, a process that hangs): every caller in
 * qscale that waits on something outside the process goes through withTimeout, so a dead peer turns into a clear
 * error after a known time instead of a call that blocks.
 */
import { QscaleError } from '../errors.js';

/** The error a bounded call rejects with; `code` is ERR_TIMEOUT so callers can tell it from the call's own errors. */
export class TimeoutError extends QscaleError {
  readonly ms: number;
  constructor(message: string, ms: number) {
    super('ERR_TIMEOUT', message);
    this.name = 'TimeoutError';
    this.ms = ms;
  }
}

/**
 * Settles like `p`, or rejects with TimeoutError(`message`) when `p` has not settled within `ms`. The timer never
 * keeps the process alive, and it is cleared as soon as `p` settles. `onTimeout` runs once when the bound is hit
 * (to abort the underlying call, close a socket...). A late rejection of `p` after the timeout is swallowed.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string, onTimeout?: () => void): Promise<T> {
  if (!Number.isFinite(ms) || ms <= 0) return p;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.catch(() => undefined);
      try {
        onTimeout?.();
      } finally {
        reject(new TimeoutError(message, ms));
      }
    }, ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
