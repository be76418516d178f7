/**
 * What the dashboard draws: one sample a second of each ScaledObject's queue depth, desired and actual replicas and
 * messages processed, kept in a ring of the last 15 minutes. Sampling runs whether or not a page is open, so a page
 * opened late still shows how the system got where it is.
 *
 * Messages processed are counted from the sidecars' own counters (`qscale.succeeded` of GET /v1.0/metadata): each
 * replica's counter starts at 0 with each app + sidecar pair, so the sampler adds what each pair gained since it
 * was last read. What a pair acks between its last read and its exit is not counted.
 *
 * Enqueue → ack latency comes the same way (the sidecars' `qscale.inputBindings[].latency`, gathered per replica by
 * LatencyLog): each sample lists p50 and p95 of the acks seen in the last LATENCY_WINDOW_MS (latency.ts).
 */
import { LatencyWindow, type LatencyFigures } from './latency.js';
import type { ReplicaInfo } from './replica.js';
import type { QueueState } from './state.js';

export const SAMPLE_PERIOD_MS = 1000;
/** 15 minutes at one sample a second. */
export const HISTORY_CAPACITY = 900;
/** processed/s is measured over this window: long enough that a few 5 s messages make a rate, short enough to follow. */
export const RATE_WINDOW_MS = 10_000;

export interface ScaledObjectSample {
  name: string;
  appId: string;
  /** The replica count the autoscaler asks for. */
  desired: number;
  /** Replicas that exist and are not terminating (the HPA's current replicas). */
  actual: number;
  /** Ready replicas. */
  ready: number;
  /** The app's input queues summed; null when a queue's depth could not be read. */
  queueReady: number | null;
  queueInFlight: number | null;
  deadLettered: number | null;
  /** Messages the app's sidecars acked since `qscale up` started. */
  processed: number;
  /** processed per second over the last RATE_WINDOW_MS (less at the start); null for the first sample. */
  processedPerSecond: number | null;
  /** Enqueue → ack latency of the acks seen in the last LATENCY_WINDOW_MS: p50, p95, how many, and what had no enqueue time. */
  latency: LatencyFigures;
}

export interface HistorySample {
  /** ms since epoch */
  at: number;
  scaledObjects: ScaledObjectSample[];
}

/** A fixed-size ring of samples, oldest first. */
export class History {
  private readonly buf: Array<HistorySample | undefined>;
  private start = 0;
  private count = 0;

  constructor(readonly capacity = HISTORY_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`history capacity must be a whole number ≥ 1, got ${capacity}`);
    this.buf = new Array<HistorySample | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(s: HistorySample): void {
    if (this.count < this.capacity) {
      this.buf[(this.start + this.count) % this.capacity] = s;
      this.count += 1;
    } else {
      this.buf[this.start] = s;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** Every sample kept, oldest first. */
  all(): HistorySample[] {
    const out: HistorySample[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf[(this.start + i) % this.capacity]!);
    return out;
  }

  /** The samples taken after `at` (ms since epoch), oldest first. */
  since(at: number): HistorySample[] {
    const out: HistorySample[] = [];
    for (let i = this.count - 1; i >= 0; i--) {
      const s = this.buf[(this.start + i) % this.capacity]!;
      if (s.at <= at) break;
      out.push(s);
    }
    return out.reverse();
  }

  latest(): HistorySample | undefined {
    return this.count === 0 ? undefined : this.buf[(this.start + this.count - 1) % this.capacity];
  }

  /**
   * Messages per second a ScaledObject's app processed over the last `windowMs` up to `now`, from the sample at or
   * just before the window's start (or the oldest) to the latest; undefined with fewer than two samples.
   */
  rate(name: string, now: number, windowMs = RATE_WINDOW_MS): { perSecond: number; overMs: number } | undefined {
    const last = this.latest();
    const lastSo = last?.scaledObjects.find((s) => s.name === name);
    if (!last || !lastSo) return undefined;
    let first: { at: number; processed: number } | undefined;
    for (let i = this.count - 2; i >= 0; i--) {
      const s = this.buf[(this.start + i) % this.capacity]!;
      const so = s.scaledObjects.find((x) => x.name === name);
      if (!so) break;
      first = { at: s.at, processed: so.processed };
      if (s.at <= now - windowMs) break;
    }
    if (!first || last.at <= first.at) return undefined;
    const overMs = last.at - first.at;
    return { perSecond: ((lastSo.processed - first.processed) * 1000) / overMs, overMs };
  }
}

/**
 * Sums what the sidecars of one app processed across replicas and restarts: a pair seen for the first time adds
 * its whole count, a pair seen before adds what it gained since.
 */
export class ProcessedCounter {
  private total = 0;
  private readonly seen = new Map<string, { runningSince: number; processed: number }>();

  observe(replicas: ReadonlyArray<Pick<ReplicaInfo, 'name' | 'runningSince' | 'processed'>>): number {
    const names = new Set<string>();
    for (const r of replicas) {
      names.add(r.name);
      if (r.runningSince === undefined) continue; // between pairs: the next pair counts from 0
      const prev = this.seen.get(r.name);
      const counted = prev && prev.runningSince === r.runningSince ? prev.processed : 0;
      const now = r.processed ?? 0;
      if (now > counted) this.total += now - counted;
      this.seen.set(r.name, { runningSince: r.runningSince, processed: Math.max(now, counted) });
    }
    for (const name of [...this.seen.keys()]) if (!names.has(name)) this.seen.delete(name);
    return this.total;
  }
}

/** What a sample is read from: the running system, or a test's stand-in. */
export interface SampleSource {
  /** Each ScaledObject with the app it scales and its replica counts now. */
  scaledObjects(): Array<{ name: string; appId: string; desired: number; actual: number; ready: number }>;
  /** The depth of each scaled app's input queue, with the app that consumes it (bounded reads). */
  queues(): Promise<Array<{ appId: string; state: QueueState }>>;
  /** Every replica, with fresh in-flight and processed counts. */
  replicas(): Promise<ReplicaInfo[]>;
}

/** Takes a sample every SAMPLE_PERIOD_MS into a History, one at a time. */
export class Sampler {
  private readonly counters = new Map<string, ProcessedCounter>();
  private readonly latencies = new Map<string, LatencyWindow>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly source: SampleSource, readonly history: History, private readonly periodMs = SAMPLE_PERIOD_MS) {}

  async take(now = Date.now()): Promise<HistorySample> {
    const [queues, replicas] = await Promise.all([this.source.queues(), this.source.replicas()]);
    const scaledObjects = this.source.scaledObjects().map((so): ScaledObjectSample => {
      const own = queues.filter((q) => q.appId === so.appId).map((q) => q.state);
      const readable = own.length > 0 && own.every((q) => q.error === undefined);
      const sum = (k: 'ready' | 'inFlight' | 'deadLettered'): number | null => (readable ? own.reduce((n, q) => n + q[k], 0) : null);
      let counter = this.counters.get(so.appId);
      if (!counter) this.counters.set(so.appId, (counter = new ProcessedCounter()));
      let latency = this.latencies.get(so.appId);
      if (!latency) this.latencies.set(so.appId, (latency = new LatencyWindow()));
      const appReplicas = replicas.filter((r) => r.appId === so.appId);
      latency.observe(appReplicas.map((r) => r.latency), now);
      return {
        ...so,
        queueReady: sum('ready'),
        queueInFlight: sum('inFlight'),
        deadLettered: sum('deadLettered'),
        processed: counter.observe(appReplicas),
        processedPerSecond: null,
        latency: latency.figures(now),
      };
    });
    const sample: HistorySample = { at: now, scaledObjects };
    this.history.push(sample);
    for (const so of scaledObjects) so.processedPerSecond = this.history.rate(so.name, now)?.perSecond ?? null;
    return sample;
  }

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.running = this.take().then(
        () => undefined,
        () => undefined, // a failed read leaves a gap in the chart; the next tick tries again
      );
      void this.running.finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.periodMs).unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
