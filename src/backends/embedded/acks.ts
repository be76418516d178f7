/**
 * Completions waiting to be written. A receiver's next lease carries them in the same transaction (one commit per
 * message instead of two); when no lease comes soon (the queue is draining, or receive is stopping) they are written
 * on their own at the next turn of the event loop. Either way the handler's caller learns whether its lease still
 * held.
 */
import type { Ack, QueueStore } from './store.js';

interface Pending extends Ack {
  settle(result: boolean | Error): void;
}

export class AckBatch {
  private pending: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly store: QueueStore) {}

  /** Resolves true when completed, false when the lease had expired (someone else may hold the message now). */
  complete(seq: number, token: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ seq, token, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Hands the waiting completions to a lease transaction; report() must follow with its results. */
  take(): Pending[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }

  report(taken: readonly Pending[], results: readonly boolean[] | Error): void {
    taken.forEach((p, i) => p.settle(results instanceof Error ? results : results[i] === true));
  }

  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const taken = this.take();
    if (taken.length === 0) return;
    try {
      this.report(taken, this.store.completeMany(taken));
    } catch (err) {
      this.report(taken, err instanceof Error ? err : new Error(String(err)));
    }
  }
}
