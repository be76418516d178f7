/**
 * Answers (completions and releases) waiting to be written. While a receive loop owns the batch, its next lease
 * carries every answer given since the last one in the same transaction: one commit for all the answers of one
 * event-loop turn plus the leases that refill their slots. Without an owner (receive is stopping) they are written on
 * their own at the next turn of the event loop. Either way the handler's caller learns what its answer did.
 */
import type { Ack, AckOutcome, QueueStore } from './store.js';

interface Pending extends Ack {
  resolve(outcome: AckOutcome): void;
  reject(err: Error): void;
}

export class AckBatch {
  private pending: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** Told of each new answer: the receive loop that will carry it in its next lease. */
  private owner: (() => void) | undefined;

  constructor(private readonly store: QueueStore) {}

  get size(): number {
    return this.pending.length;
  }

  /** From now on `notify` hears of each answer and the caller takes them (take/report) instead of a flush. */
  own(notify: () => void): void {
    this.owner = notify;
  }

  /** The owner stops taking answers: what waits, and what comes later, is written at the next turn. */
  disown(): void {
    this.owner = undefined;
    if (this.pending.length > 0) this.scheduled ??= setImmediate(() => this.flush());
  }

  /**
   * Resolves with what the answer did: 'completed' or a release outcome, or 'lease-lost' when the lease had expired
   * (someone else may hold the message now). Rejects when the file could not be written.
   */
  add(ack: Ack): Promise<AckOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ seq: ack.seq, token: ack.token, release: ack.release, resolve, reject });
      if (this.owner) this.owner();
      else this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Hands the waiting answers to a lease transaction; report() must follow with its results. */
  take(): Pending[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }

  report(taken: readonly Pending[], results: readonly AckOutcome[] | Error): void {
    for (let i = 0; i < taken.length; i++) {
      const p = taken[i]!;
      const r = results instanceof Error ? results : results[i];
      if (r === undefined) p.reject(new Error('no outcome'));
      else if (r instanceof Error) p.reject(r);
      else p.resolve(r);
    }
  }

  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const taken = this.take();
    if (taken.length === 0) return;
    try {
      this.report(taken, this.store.settle(taken));
    } catch (err) {
      this.report(taken, err instanceof Error ? err : new Error(String(err)));
    }
  }
}
