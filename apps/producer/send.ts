/**
 * Sends `count` messages. With a pause between messages they go one after the other, in order, as in the seed.
 * Without one they go with bounded concurrency: a run of 10,000 takes seconds, not minutes, and the run still
 * succeeds only when every message was stored.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface SendRun {
  count: number;
  intervalMs: number;
  concurrency: number;
  send(signal: AbortSignal): Promise<void>;
  /** Aborted when the caller went away: stop sending. */
  signal: AbortSignal;
}

export interface SendOutcome {
  /** Messages the sidecar accepted. */
  sent: number;
  /** The first failure; later sends were not started. */
  error: unknown;
  aborted: boolean;
}

export async function sendAll(run: SendRun): Promise<SendOutcome> {
  let sent = 0;
  let error: unknown;
  let failed = false;
  if (run.intervalMs > 0) {
    for (let i = 0; i < run.count && !run.signal.aborted; i++) {
      try {
        await run.send(run.signal);
      } catch (err) {
        if (!run.signal.aborted) error = err;
        break;
      }
      sent += 1;
      if (i < run.count - 1) {
        try {
          await sleep(run.intervalMs, undefined, { signal: run.signal });
        } catch {
          break;
        }
      }
    }
    return { sent, error, aborted: run.signal.aborted };
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!failed && !run.signal.aborted && next < run.count) {
      next += 1;
      try {
        await run.send(run.signal);
        sent += 1;
      } catch (err) {
        if (!failed && !run.signal.aborted) error = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(run.concurrency, run.count) }, worker));
  return { sent, error, aborted: run.signal.aborted };
}
