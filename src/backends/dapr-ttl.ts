/**
 * Dapr's time-to-live metadata (components-contrib metadata.TryGetTTL), shared by the bindings that read it the same
 * way: `ttl` or `ttlInSeconds` (names matched case-insensitively, `ttl` first) holds a Go duration ("30s", "1m30s",
 * "500ms", "0") or a whole number of seconds. A whole number must be above zero; a negative duration counts as 0.
 * What each binding then does with the value (and with 0) differs, and is the binding's business.
 */

export const TTL_KEYS = ['ttl', 'ttlInSeconds'] as const;

/** What a TTL entry says: the key as written and the value in milliseconds, or why Dapr refuses it. */
export type DaprTtl = { key: string; value: string; ms: number } | { key: string; value: string; error: string };

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};
const MAX_INT64 = 2n ** 63n - 1n;

/** Go's time.ParseDuration, in milliseconds (fractions kept); undefined where Go fails. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let ns = 0;
  while (s !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = num?.[1] ?? '';
    const frac = num?.[2];
    if (whole === '' && (frac === undefined || frac === '')) return undefined;
    s = s.slice(num?.[0].length ?? 0);
    const unit = /^[^\d.]+/.exec(s)?.[0];
    if (unit === undefined) return undefined;
    const per = UNIT_NS[unit];
    if (per === undefined) return undefined;
    s = s.slice(unit.length);
    ns += Number(`${whole || '0'}.${frac || '0'}`) * per;
    if (ns > Number(MAX_INT64)) return undefined;
  }
  return (sign * ns) / 1e6;
}

/** The TTL entry of `metadata` as Dapr reads it, or undefined when there is none (absent or empty). */
export function daprTtl(metadata: Readonly<Record<string, string>>): DaprTtl | undefined {
  const lower = new Map<string, [string, string]>();
  for (const [k, v] of Object.entries(metadata)) lower.set(k.toLowerCase(), [k, v]);
  const hit = TTL_KEYS.map((k) => lower.get(k.toLowerCase())).find((e) => e !== undefined);
  if (!hit || hit[1] === '') return undefined;
  const [key, value] = hit;
  const ms = parseGoDuration(value);
  if (ms !== undefined) return { key, value, ms: Math.max(0, ms) };
  if (!/^[+-]?\d+$/.test(value) || BigInt(value) > MAX_INT64 || BigInt(value) < -MAX_INT64 - 1n) {
    return { key, value, error: 'a duration such as 30s or 1m30s, or a whole number of seconds' };
  }
  const seconds = Number(value);
  if (seconds <= 0) return { key, value, error: 'a whole number of seconds above zero' };
  return { key, value, ms: seconds * 1000 };
}

/** `metadata` without its TTL entries: for a declared-metadata parse, when the TTL is read by daprTtl instead. */
export function withoutTtl(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const names = new Set<string>(TTL_KEYS.map((k) => k.toLowerCase()));
  return Object.fromEntries(Object.entries(metadata).filter(([k]) => !names.has(k.toLowerCase())));
}
