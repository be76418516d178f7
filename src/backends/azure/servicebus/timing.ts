/** Dapr's maxRetriableErrorsPerSec for the Service Bus binding. */
import { sleep } from '../../../util/abort.js';

/** Spaces calls to take() at least 1/rate seconds apart (the first is immediate); rate 0 = no limit. */
export class RateLimiter {
  private next = 0;
  constructor(private readonly perSecond: number) {}

  async take(): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.perSecond;
    if (at > now) await sleep(at - now);
  }
}
