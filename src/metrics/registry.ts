/**
 * What the supervisor's and the sidecars' /metrics share: one prom-client registry per owner (never prom-client's
 * global one, so two owners in one process never mix), children cached per label set so a count on the data path
 * costs a map lookup, and the answer to a scrape in Prometheus' text format.
 */
import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

const QSCALE_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** `qscale_build_info{version, nodeversion, platform, arch} 1`: which qscale answers, as keda_build_info says which KEDA. */
export function registerBuildInfo(registry: Registry): void {
  const g = new Gauge({
    name: 'qscale_build_info',
    help: 'Info metric, with static information about the qscale build: version and the Node.js runtime.',
    labelNames: ['version', 'nodeversion', 'platform', 'arch'] as const,
    registers: [registry],
  });
  g.set({ version: QSCALE_VERSION, nodeversion: process.version, platform: process.platform, arch: process.arch }, 1);
}

/**
 * The child of a metric for one label set, made once: prom-client hashes the labels on every inc() or observe()
 * given as an object, which the data path should not pay per message.
 */
export class Children<C> {
  private readonly byKey = new Map<string, C>();

  constructor(private readonly make: (...values: string[]) => C) {}

  get(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.byKey.get(key);
    if (c === undefined) {
      c = this.make(...values);
      this.byKey.set(key, c);
    }
    return c;
  }
}
