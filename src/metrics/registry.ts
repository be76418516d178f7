/**
 * What the supervisor's and the sidecars' /metrics share: one prom-client registry per owner (never prom-client's
 * global one, so two owners in one process never mix) answering a scrape in Prometheus' text format, and counters
 * and histograms cheap enough for the data path.
 *
 * prom-client checks and hashes the labels on every inc() or observe(), a few microseconds each. FastCounter and
 * FastHistogram keep each series as plain numbers, found once per label set, and hand prom-client's registry the
 * values only when it is scraped: a count per message is an addition.
 *
 * This module does not load prom-client (nor the OpenTelemetry API its default metrics pull in) when imported: a
 * sidecar keeps its counts in a LazyRegistry, and prom-client is loaded at its first scrape. A sidecar nobody
 * scrapes starts without it and stays smaller.
 */
import { createRequire } from 'node:module';
import type { Metric, MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

const require = createRequire(import.meta.url);

let prom: typeof import('prom-client') | undefined;
/** prom-client, loaded the first time something needs it. */
export function promClient(): typeof import('prom-client') {
  prom ??= require('prom-client') as typeof import('prom-client');
  return prom;
}

/** prom-client's Registry.PROMETHEUS_CONTENT_TYPE, known without loading it. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const QSCALE_VERSION = (require('../../../package.json') as { version: string }).version;

/**
 * A registry whose prom-client Registry is made at the first scrape (or the first registry() call): the metrics
 * registered before then are handed to it in the order they were registered, so the scrape reads the same.
 */
export class LazyRegistry {
  private real: Registry | undefined;
  private readonly pending: Array<(r: Registry) => void> = [];

  /** Runs `add` on the real registry: now if it exists, else when it is made. */
  onCreate(add: (r: Registry) => void): void {
    if (this.real) add(this.real);
    else this.pending.push(add);
  }

  registry(): Registry {
    if (this.real === undefined) {
      const real = new (promClient().Registry)();
      this.real = real;
      for (const add of this.pending.splice(0)) add(real);
    }
    return this.real;
  }

  metrics(): Promise<string> {
    return this.registry().metrics();
  }
}

function whenMade(registry: Registry | LazyRegistry, add: (r: Registry) => void): void {
  if (registry instanceof LazyRegistry) registry.onCreate(add);
  else add(registry);
}

/** `qscale_build_info{version, nodeversion, platform, arch} 1`: which qscale answers, as keda_build_info says which KEDA. */
export function registerBuildInfo(registry: Registry | LazyRegistry): void {
  whenMade(registry, (r) => {
    const g = new (promClient().Gauge)({
      name: 'qscale_build_info',
      help: 'Info metric, with static information about the qscale build: version and the Node.js runtime.',
      labelNames: ['version', 'nodeversion', 'platform', 'arch'] as const,
      registers: [r],
    });
    g.set({ version: QSCALE_VERSION, nodeversion: process.version, platform: process.platform, arch: process.arch }, 1);
  });
}

interface MetricDef {
  name: string;
  help: string;
  labelNames: readonly string[];
}

type Labels = Record<string, string>;

/** A metric the registry renders from get(), as it renders its own (prom-client's Metric shape). */
abstract class ScrapedMetric<S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { labels: Labels; s: S }>();

  constructor(protected readonly def: MetricDef, registry: Registry | LazyRegistry, readonly type: 'counter' | 'histogram') {
    this.name = def.name;
    this.help = def.help;
    // The registry takes any object with a name and get(); prom-client's own metrics are the same shape.
    whenMade(registry, (r) => r.registerMetric(this as unknown as Metric<string>));
  }

  protected abstract fresh(): S;

  /** The series for these label values (in labelNames' order), made at its zero value the first time. */
  of(...values: string[]): S {
    const key = values.join('\u0000');
    let found = this.series.get(key);
    if (found === undefined) {
      const labels: Labels = {};
      this.def.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      found = { labels, s: this.fresh() };
      this.series.set(key, found);
    }
    return found.s;
  }

  reset(): void {
    this.series.clear();
  }

  protected abstract values(): Array<MetricValue<string> & { metricName?: string }>;

  async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator, collect: () => undefined, values: this.values() };
  }
}

export interface CounterSeries {
  value: number;
}

export class FastCounter extends ScrapedMetric<CounterSeries> {
  constructor(def: MetricDef, registry: Registry | LazyRegistry) {
    super(def, registry, 'counter');
  }

  protected fresh(): CounterSeries {
    return { value: 0 };
  }

  protected values(): Array<MetricValue<string>> {
    return [...this.series.values()].map(({ labels, s }) => ({ labels, value: s.value }));
  }
}

export class HistogramSeries {
  sum = 0;
  count = 0;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += v;
    this.count += 1;
  }
}

export class FastHistogram extends ScrapedMetric<HistogramSeries> {
  constructor(def: MetricDef & { buckets: readonly number[] }, registry: Registry | LazyRegistry) {
    super(def, registry, 'histogram');
    this.bounds = [...def.buckets].sort((a, b) => a - b);
  }

  private readonly bounds: readonly number[];

  protected fresh(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected values(): Array<MetricValue<string> & { metricName: string }> {
    const out: Array<MetricValue<string> & { metricName: string }> = [];
    for (const { labels, s } of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
      });
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
      out.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      out.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return out;
  }
}
