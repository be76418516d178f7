/**
 * Enqueue → ack latency on the supervisor's side.
 *
 * - LatencyLog (one per replica): what the replica's sidecars reported, taken from each metadata read. A sidecar lists
 *   the last samples of each input binding with how many it ever recorded (src/sidecar/latency.ts); the log keeps that
 *   count per binding for the current app + sidecar pair and adds only the samples beyond it, so a read twice counts
 *   once and reads in any order never go back. A new pair's sidecar counts from 0 again.
 * - LatencyWindow (one per scaled app): the samples of every replica of the app seen in the last LATENCY_WINDOW_MS,
 *   with their p50 and p95, and the brokers whose messages had no enqueue time in that window.
 */

/** p50 / p95 are over the acks seen in the last 30 s: enough acks for a p95 at a few messages a second, short enough to follow a burst. */
export const LATENCY_WINDOW_MS = 30_000;
/** Samples one replica's log keeps until the sampler takes them (it takes them every second). */
export const LATENCY_LOG_SIZE = 8192;
/** The most samples a window holds (the newest): bounds memory and the sort of a tick at very high rates. */
export const LATENCY_WINDOW_CAP = 50_000;

/** The nearest-rank percentile (0 < p ≤ 100) of values sorted ascending: a value that was measured, never a blend. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

interface BindingReport {
  name: string;
  type: string;
  recorded: number;
  samplesMs: number[];
  withoutEnqueueTime: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The input bindings of a metadata answer's qscale section that carry a latency report; anything else is left out. */
function bindingReports(inputBindings: unknown): BindingReport[] {
  if (!Array.isArray(inputBindings)) return [];
  const out: BindingReport[] = [];
  for (const b of inputBindings as unknown[]) {
    if (typeof b !== 'object' || b === null) continue;
    const { name, type, latency } = b as { name?: unknown; type?: unknown; latency?: unknown };
    if (typeof name !== 'string' || typeof latency !== 'object' || latency === null) continue;
    const { recorded, samplesMs, withoutEnqueueTime } = latency as { recorded?: unknown; samplesMs?: unknown; withoutEnqueueTime?: unknown };
    if (!isCount(recorded) || !Array.isArray(samplesMs) || !samplesMs.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) continue;
    out.push({ name, type: typeof type === 'string' ? type : name, recorded, samplesMs: samplesMs as number[], withoutEnqueueTime: isCount(withoutEnqueueTime) ? withoutEnqueueTime : 0 });
  }
  return out;
}

/** What /status and `qscale status --json` show of a replica's log: counts only (the samples are the dashboard's). */
export interface LatencyLogSummary {
  /** Latency samples read from the replica's sidecars since the replica was created. */
  samples: number;
  /** Messages acked without an enqueue time, by the broker's component type. */
  withoutEnqueueTime: Record<string, number>;
}

export class LatencyLog {
  private readonly buf: Float64Array;
  /** Samples ever added: the cursor the sampler keeps. */
  private added = 0;
  private pair: unknown;
  /** Per input binding of the current pair: the sidecar's `recorded` and `withoutEnqueueTime` already taken. */
  private readonly seen = new Map<string, { recorded: number; withoutEnqueueTime: number }>();
  /** Messages acked without an enqueue time, by broker, since the replica was created. */
  readonly withoutEnqueueTime = new Map<string, number>();

  constructor(readonly size = LATENCY_LOG_SIZE) {
    this.buf = new Float64Array(size);
  }

  get count(): number {
    return this.added;
  }

  /**
   * Takes one metadata answer's `qscale.inputBindings` of the pair `pair` (any value that changes with each new app +
   * sidecar pair). Samples beyond what was taken of each binding are added; older answers add nothing.
   */
  read(pair: unknown, inputBindings: unknown): void {
    if (pair !== this.pair) {
      this.pair = pair;
      this.seen.clear();
    }
    for (const b of bindingReports(inputBindings)) {
      const prev = this.seen.get(b.name) ?? { recorded: 0, withoutEnqueueTime: 0 };
      const fresh = b.recorded - prev.recorded;
      if (fresh > 0) for (const ms of b.samplesMs.slice(b.samplesMs.length - Math.min(fresh, b.samplesMs.length))) this.add(ms);
      const noTime = b.withoutEnqueueTime - prev.withoutEnqueueTime;
      if (noTime > 0) this.withoutEnqueueTime.set(b.type, (this.withoutEnqueueTime.get(b.type) ?? 0) + noTime);
      this.seen.set(b.name, { recorded: Math.max(b.recorded, prev.recorded), withoutEnqueueTime: Math.max(b.withoutEnqueueTime, prev.withoutEnqueueTime) });
    }
  }

  add(ms: number): void {
    this.buf[this.added % this.size] = ms;
    this.added += 1;
  }

  /** The samples added after the first `cursor` ones, oldest first (those the log no longer holds are skipped). */
  since(cursor: number): number[] {
    const from = Math.max(cursor, this.added - this.size, 0);
    const out: number[] = [];
    for (let i = from; i < this.added; i++) out.push(this.buf[i % this.size]!);
    return out;
  }

  toJSON(): LatencyLogSummary {
    return { samples: this.added, withoutEnqueueTime: Object.fromEntries(this.withoutEnqueueTime) };
  }
}

/** The latency figures of one history sample. */
export interface LatencyFigures {
  /** p50 and p95 of the enqueue → ack latency in ms over the window; null when no ack with an enqueue time was seen in it. */
  p50Ms: number | null;
  p95Ms: number | null;
  /** Acks with an enqueue time seen in the window. */
  samples: number;
  /** Brokers (component types) whose acks in the window had no enqueue time, with how many. */
  withoutEnqueueTime: Array<{ broker: string; messages: number }>;
}

/** One scaled app's samples of the last `windowMs`, from every replica it has had. */
export class LatencyWindow {
  private times: number[] = [];
  private values: number[] = [];
  private readonly cursors = new WeakMap<LatencyLog, { added: number; withoutEnqueueTime: Map<string, number> }>();
  private missing: Array<{ at: number; broker: string; messages: number }> = [];

  constructor(readonly windowMs = LATENCY_WINDOW_MS, readonly cap = LATENCY_WINDOW_CAP) {}

  /** Takes what each replica's log gained since the last observe, stamped `now`, and drops what left the window. */
  observe(logs: ReadonlyArray<LatencyLog | undefined>, now: number): void {
    for (const log of logs) {
      if (!log) continue;
      const c = this.cursors.get(log) ?? { added: 0, withoutEnqueueTime: new Map<string, number>() };
      for (const ms of log.since(c.added)) this.push(now, ms);
      c.added = log.count;
      for (const [broker, n] of log.withoutEnqueueTime) {
        const gained = n - (c.withoutEnqueueTime.get(broker) ?? 0);
        if (gained > 0) this.missing.push({ at: now, broker, messages: gained });
        c.withoutEnqueueTime.set(broker, n);
      }
      this.cursors.set(log, c);
    }
    this.prune(now);
  }

  /** Adds one sample seen at `at` (ms since epoch). */
  push(at: number, ms: number): void {
    this.times.push(at);
    this.values.push(ms);
    if (this.values.length > this.cap * 2) this.dropFirst(this.values.length - this.cap);
  }

  figures(now: number): LatencyFigures {
    this.prune(now);
    const inWindow = this.values.slice(-this.cap);
    const sorted = Float64Array.from(inWindow).sort();
    const list = Array.from(sorted);
    const byBroker = new Map<string, number>();
    for (const m of this.missing) byBroker.set(m.broker, (byBroker.get(m.broker) ?? 0) + m.messages);
    return {
      p50Ms: percentile(list, 50) ?? null,
      p95Ms: percentile(list, 95) ?? null,
      samples: list.length,
      withoutEnqueueTime: [...byBroker].sort(([a], [b]) => a.localeCompare(b)).map(([broker, messages]) => ({ broker, messages })),
    };
  }

  private prune(now: number): void {
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < this.times.length && this.times[drop]! <= from) drop++;
    if (drop > 0) this.dropFirst(drop);
    this.missing = this.missing.filter((m) => m.at > from);
  }

  private dropFirst(n: number): void {
    this.times = this.times.slice(n);
    this.values = this.values.slice(n);
  }
}
