/**
 * Keeps a pull request's expiry away from the moments this process's failed messages come due again.
 *
 * Why: nats-server before 2.11 loses a redelivery that comes due while the only waiting pull request has just
 * expired (its consumer loop takes the message off the redelivery queue and counts the delivery, then finds no
 * request to hand it to and drops it without a 408). The message comes back only after ack_wait, one delivery spent,
 * and may be dead-lettered without the handler seeing its last one. A receiver that fails a message and pulls again
 * at once hits this every time its retry wait equals the pull's expiry (retryBackoff 1s against 1 s pulls), so each
 * pull's expiry is moved off the due times known here, and a retry wait off the expiry of pulls already waiting.
 * Redeliveries this process does not know of (another replica's, an ack wait running out) still meet the server's
 * window only by chance, a few milliseconds a pull.
 */

/** Kept between a pull's expiry and a known due time: far above the server's window and the two clocks' skew here. */
export const EXPIRY_MARGIN_MS = 100;

/** The first expiry from `base` on, in steps of twice the margin, at least the margin away from every due time. */
export function pullExpiry(now: number, base: number, due: Iterable<number>): number {
  const times = [...due];
  for (let expires = base; expires < base + 20 * EXPIRY_MARGIN_MS; expires += 2 * EXPIRY_MARGIN_MS) {
    if (times.every((at) => Math.abs(now + expires - at) >= EXPIRY_MARGIN_MS)) return expires;
  }
  return base;
}

/** A retry wait moved off the expiry of every pull request still waiting: earlier where it can, else later. */
export function retryWait(now: number, waitMs: number, expiries: Iterable<number>): number {
  const ends = [...expiries];
  const clear = (w: number): boolean => ends.every((end) => Math.abs(now + w - end) >= EXPIRY_MARGIN_MS);
  if (clear(waitMs)) return waitMs;
  // Earlier first: a retry never waits longer than retryBackoff says unless it has to.
  const steps = [1, 2, 3].map((n) => 2 * n * EXPIRY_MARGIN_MS);
  for (const w of [...steps.map((d) => waitMs - d).filter((w) => w >= 0), ...steps.map((d) => waitMs + d)]) {
    if (clear(w)) return w;
  }
  return waitMs;
}

/** Due times of this process's retries, forgotten once past. */
export class DueTimes {
  private readonly at = new Set<number>();
  add(time: number): void {
    this.at.add(time);
  }
  /** The ones still ahead of `now` (a moment's slack: one just past may not have been handed out yet). */
  ahead(now: number): number[] {
    for (const t of this.at) if (t < now - EXPIRY_MARGIN_MS) this.at.delete(t);
    return [...this.at];
  }
}
