/**
 * Load and duration flags of `qscale simulate`: `0s:50` (50 messages at once), `10s-70s:5/s` (5 per second over
 * that span), `0s-1m:120` (120 spread evenly over the span). Durations as Go writes them: 500ms, 15s, 2m, 1h30m.
 */
import { QscaleError } from '../errors.js';

export interface Load {
  /** ms */
  from: number;
  /** ms, exclusive; undefined for a burst. */
  to?: number;
  /** Messages at `from` (burst), or spread evenly over [from, to). */
  count?: number;
  /** Messages per second over [from, to). */
  rate?: number;
  /** As written, for messages. */
  text: string;
}

/** A bad flag value: names the flag and the value. */
export class FlagError extends QscaleError {
  constructor(flag: string, value: string, why: string) {
    super('ERR_FLAG', `${flag} '${value}': ${why}`);
    this.name = 'FlagError';
  }
}

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1h30m" → 5 400 000. A bare number is seconds. Undefined when it does not parse. */
export function parseDurationMs(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(PART)) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === t.length && consumed > 0 ? total : undefined;
}

export function durationFlag(flag: string, value: string, opts: { allowZero?: boolean } = {}): number {
  const ms = parseDurationMs(value);
  if (ms === undefined) throw new FlagError(flag, value, 'not a duration (write e.g. 500ms, 5s, 2m, 1h30m)');
  if (ms === 0 && !opts.allowZero) throw new FlagError(flag, value, 'must be more than 0');
  return ms;
}

export function positiveIntFlag(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new FlagError(flag, value, 'must be a whole number of at least 1');
  return Number(value);
}

const RATE_UNIT: Record<string, number> = { s: 1, m: 1 / 60, h: 1 / 3600 };

export function parseLoad(text: string): Load {
  const flag = '--load';
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new FlagError(flag, text, "expected <time>:<count> or <from>-<to>:<rate>/s, e.g. '0s:50' or '10s-70s:5/s'");
  const when = text.slice(0, colon).trim();
  const what = text.slice(colon + 1).trim();
  const [fromText, toText, extra] = when.split('-');
  if (extra !== undefined) throw new FlagError(flag, text, `'${when}' is not a time or a span like 10s-70s`);
  const from = parseDurationMs(fromText ?? '');
  if (from === undefined) throw new FlagError(flag, text, `'${fromText}' is not a time (write e.g. 0s, 90s, 2m)`);
  let to: number | undefined;
  if (toText !== undefined) {
    to = parseDurationMs(toText);
    if (to === undefined) throw new FlagError(flag, text, `'${toText}' is not a time (write e.g. 70s, 5m)`);
    if (to <= from) throw new FlagError(flag, text, `the span ends (${toText}) before it starts (${fromText})`);
  }
  const rate = /^(\d+(?:\.\d+)?)\/(s|m|h)$/.exec(what);
  if (rate) {
    if (to === undefined) throw new FlagError(flag, text, 'a rate needs a span, e.g. 10s-70s:5/s');
    const perSecond = Number(rate[1]) * RATE_UNIT[rate[2]!]!;
    if (!(perSecond > 0)) throw new FlagError(flag, text, 'the rate must be more than 0');
    return { from, to, rate: perSecond, text };
  }
  if (!/^\d+$/.test(what)) throw new FlagError(flag, text, `'${what}' is not a message count or a rate like 5/s`);
  const count = Number(what);
  return to === undefined ? { from, count, text } : { from, to, count, text };
}
