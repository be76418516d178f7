/**
 * Enqueue → ack latency of one input binding: for each message the app accepted, how long it was in the broker's
 * hands (now − the broker's enqueue time), so the supervisor can draw p50/p95.
 *
 * Kept as a ring of the most recent samples with a running count: the metadata answer lists the ring, oldest first,
 * with how many samples were ever recorded; a reader that remembers the count it saw last takes exactly the samples
 * added since (count − last), nothing twice and nothing lost as long as it reads before the ring wraps (a supervisor
 * reads every second: RING_SIZE acks a second per binding). When it wraps between two reads the reader still knows
 * how many it missed. Exact values rather than histogram buckets: the percentiles the dashboard shows are real
 * latencies, not a bucket's bound, and memory is the ring's fixed size either way.
 */

/** Samples kept per input binding: 8 KB, and the most a reader can miss nothing of between two reads. */
export const LATENCY_RING_SIZE = 1024;

/** What GET /v1.0/metadata says of one input binding's latency (qscale.inputBindings[].latency). */
export interface LatencyReport {
  /** Samples recorded since the sidecar started: the cursor a reader keeps. */
  recorded: number;
  /** The last min(recorded, LATENCY_RING_SIZE) samples in ms, oldest first; the last one is sample number `recorded`. */
  samplesMs: number[];
  /** Messages acked whose broker gave no enqueue time: they give no sample. */
  withoutEnqueueTime: number;
}

export class LatencyRing {
  private readonly buf: Float64Array;
  private recorded = 0;
  private withoutEnqueueTime = 0;

  constructor(readonly size = LATENCY_RING_SIZE) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`latency ring size must be a whole number ≥ 1, got ${size}`);
    this.buf = new Float64Array(size);
  }

  /**
   * One acked message: its latency when the broker said when it stored it. A broker clock a little ahead of this
   * one gives 0, not a negative latency.
   */
  acked(enqueuedAt: number | undefined, now = Date.now()): void {
    if (enqueuedAt === undefined || !Number.isFinite(enqueuedAt)) {
      this.withoutEnqueueTime += 1;
      return;
    }
    this.buf[this.recorded % this.size] = Math.max(0, now - enqueuedAt);
    this.recorded += 1;
  }

  report(): LatencyReport {
    const n = Math.min(this.recorded, this.size);
    const samplesMs: number[] = [];
    for (let i = this.recorded - n; i < this.recorded; i++) samplesMs.push(this.buf[i % this.size]!);
    return { recorded: this.recorded, samplesMs, withoutEnqueueTime: this.withoutEnqueueTime };
  }

  /** The metadata answer is JSON.stringify'd: the ring is written as its report. */
  toJSON(): LatencyReport {
    return this.report();
  }
}
