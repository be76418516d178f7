/**
 * Reads a /metrics answer as Prometheus would: the real text-format parser, then one sample found by its metric
 * name and labels (every label given must match; labels not given may be anything).
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format';

export type Families = Map<string, ParsedFamily>;

export function parseMetrics(text: string): Families {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const histograms = [...families.values()].filter((f) => f.type === 'HISTOGRAM');
  if (histograms.length === 0) return families;
  // The parser folds all the series of a histogram into one sample and drops their labels; parsed as untyped, each
  // _bucket, _sum and _count line keeps its labels, and the series are put back together from them.
  // (prom-client writes each series' lines together, so one name comes back as several families: joined here.)
  const untyped = new Map<string, ParsedSample[]>();
  for (const f of parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'))) {
    untyped.set(f.name, [...(untyped.get(f.name) ?? []), ...f.metrics]);
  }
  for (const h of histograms) {
    const series = new Map<string, ParsedSample>();
    const of = (labels: Record<string, string> = {}): ParsedSample => {
      const { le: _le, ...rest } = labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      let s = series.get(key);
      if (!s) series.set(key, (s = { labels: rest, buckets: {} }));
      return s;
    };
    for (const m of untyped.get(`${h.name}_bucket`) ?? []) of(m.labels).buckets![m.labels?.le ?? ''] = m.value ?? '';
    for (const m of untyped.get(`${h.name}_sum`) ?? []) of(m.labels).sum = m.value;
    for (const m of untyped.get(`${h.name}_count`) ?? []) of(m.labels).count = m.value;
    h.metrics = [...series.values()];
  }
  return families;
}

/** GET url; asserts a 200 in Prometheus' text format and returns the parsed families. */
export async function scrape(url: string): Promise<Families> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, `GET ${url}: ${text}`);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(text);
}

export function family(f: Families, name: string, type?: ParsedFamily['type']): ParsedFamily {
  const fam = f.get(name);
  assert.ok(fam, `no metric ${name} in the scrape (has: ${[...f.keys()].join(', ')})`);
  if (type) assert.equal(fam.type, type, `${name} type`);
  return fam;
}

/** The samples of `name` whose labels include `labels`. */
export function samples(f: Families, name: string, labels: Record<string, string> = {}): ParsedSample[] {
  return family(f, name).metrics.filter((m) => Object.entries(labels).every(([k, v]) => (m.labels?.[k] ?? '') === v));
}

/** The one sample of `name` with `labels`; its value (a histogram's count). */
export function value(f: Families, name: string, labels: Record<string, string> = {}): number {
  const found = samples(f, name, labels);
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: expected one sample, got ${JSON.stringify(found)}`);
  const s = found[0]!;
  return Number(s.value ?? s.count);
}

/** Like value(), 0 when no sample matches (a counter never incremented for those labels). */
export function valueOr0(f: Families, name: string, labels: Record<string, string> = {}): number {
  if (!f.has(name)) return 0;
  const found = samples(f, name, labels);
  return found.reduce((n, s) => n + Number(s.value ?? s.count), 0);
}
