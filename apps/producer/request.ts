/**
 * The body of POST /MessageProducer: `{"count": 50, "intervalMilliseconds": 0}`, read as the seed's Producer read
 * it (ASP.NET Core 3.1 binding `class Produce { int Count; int IntervalMilliseconds; }` with System.Text.Json):
 * - property names match case-insensitively (`{"Count": 1}` worked there too), the last of duplicates wins;
 * - a missing property is 0 (`{"count": 1}` sends one message at once), unknown properties are ignored;
 * - a value must be a JSON integer: a string ("5"), null, a fraction or a boolean is refused with 400, as there.
 * Beyond the seed, a negative value and a count past MAX_COUNT are refused with 400 too: the seed's controller sent
 * nothing for a negative count and failed after the first message for a negative interval.
 */
import { MAX_COUNT, MAX_INTERVAL_MS } from './config.js';

export interface ProduceRequest {
  count: number;
  intervalMilliseconds: number;
}

export interface BadRequest {
  /** The field at fault, or `body` when the body as a whole is wrong. */
  field: string;
  message: string;
}

export type ParsedRequest = { ok: true; value: ProduceRequest } | { ok: false; error: BadRequest };

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function field(body: Record<string, unknown>, name: string): { present: boolean; value: unknown } {
  const lower = name.toLowerCase();
  let key: string | undefined;
  for (const k of Object.keys(body)) if (k.toLowerCase() === lower) key = k;
  return key === undefined ? { present: false, value: undefined } : { present: true, value: body[key] };
}

function wholeNumber(body: Record<string, unknown>, name: string, max: number, unit: string, overHint = ''): number | BadRequest {
  const { present, value } = field(body, name);
  // default(int): the seed's model binder left a missing property at 0.
  if (!present) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return { field: name, message: `${name} must be a whole number from 0 to ${max}${unit}, got ${describe(value)}` };
  }
  if (!Number.isInteger(value)) return { field: name, message: `${name} must be a whole number, got ${value}` };
  if (value < 0) return { field: name, message: `${name} must not be negative, got ${value}` };
  if (value > max) return { field: name, message: `${name} must be at most ${max}${unit}, got ${value}${overHint}` };
  return value;
}

export function parseProduceRequest(body: unknown): ParsedRequest {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    const got = body === undefined ? 'no body' : describe(body);
    return { ok: false, error: { field: 'body', message: `body must be a JSON object like {"count": 1, "intervalMilliseconds": 0}, got ${got}` } };
  }
  const obj = body as Record<string, unknown>;
  const count = wholeNumber(obj, 'count', MAX_COUNT, '', ' (`qscale produce` splits larger runs into requests of this size)');
  if (typeof count !== 'number') return { ok: false, error: count };
  const interval = wholeNumber(obj, 'intervalMilliseconds', MAX_INTERVAL_MS, ' ms');
  if (typeof interval !== 'number') return { ok: false, error: interval };
  return { ok: true, value: { count, intervalMilliseconds: interval } };
}
