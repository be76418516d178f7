/**
 * JSON decoded and written again as daprd does it for pub/sub (Go's encoding/json): the first value of a body is read
 * (what follows it is never looked at), and with `UseNumber` every number keeps its literal, so `1.0` or
 * `12345678901234567890` reach the subscriber exactly as published. Writing sorts object keys and escapes `<`, `>`,
 * `&` as json.Marshal does (go-json.ts).
 *
 * Number literals survive JSON.parse as strings carrying a per-process random prefix, and are written back raw after
 * go-json's marshal: a string of the body itself could only be mistaken for one by guessing that prefix.
 */
import { randomBytes } from 'node:crypto';
import { stringEnd } from '../util/json.js';
import { MAX_JSON_DEPTH, goMarshal, scanFirstValue } from '../sidecar/http/go-json.js';

const NUMBER_TAG = `\u0000${randomBytes(12).toString('hex')}:`;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const TAGGED_RE = new RegExp(`"\\\\u0000${NUMBER_TAG.slice(1)}(-?[0-9.eE+-]+)"`, 'g');

export type Decoded = { ok: true; value: unknown } | { ok: false; reason: string };

/** A number read with UseNumber: its literal as written. */
export function isNumberLiteral(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith(NUMBER_TAG);
}

/** The literal of a number read with UseNumber ('' for any other value). */
export function numberLiteral(v: unknown): string {
  return isNumberLiteral(v) ? v.slice(NUMBER_TAG.length) : '';
}

/** Number literals outside strings become tagged strings, so JSON.parse keeps their text. */
function tagNumbers(span: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < span.length; i++) {
    const c = span.charCodeAt(i);
    if (c === 0x22) {
      const close = stringEnd(span, i);
      if (close === -1) break;
      i = close;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(span);
      if (!m) continue;
      out += `${span.slice(from, i)}"${JSON.stringify(NUMBER_TAG).slice(1, -1)}${m[0]}"`;
      i += m[0].length - 1;
      from = i + 1;
    }
  }
  return out + span.slice(from);
}

/**
 * The first JSON value of `text` as Go's json.Decoder with UseNumber reads it: numbers kept as literals (see
 * isNumberLiteral), or why Go refuses it.
 */
export function decodeFirst(text: string): Decoded {
  const first = scanFirstValue(text);
  if (first.kind === 'none') return { ok: false, reason: 'EOF' };
  if (first.kind === 'too-deep') return { ok: false, reason: `exceeded max depth (${MAX_JSON_DEPTH} levels)` };
  if (first.kind === 'incomplete') return { ok: false, reason: 'unexpected EOF' };
  const span = text.slice(first.start, first.end);
  try {
    return { ok: true, value: JSON.parse(tagNumbers(span)) as unknown };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** The whole of `text` as json.Unmarshal reads it (no trailing bytes allowed), numbers as plain numbers. */
export function decodeWhole(text: string): Decoded {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** json.Marshal of a value decodeFirst (or JSON.parse) made, number literals written as they were read. */
export function marshal(value: unknown): string {
  const out = goMarshal(value);
  return out.includes('\\u0000') ? out.replace(TAGGED_RE, (_m, lit: string) => lit) : out;
}

/** A value decodeFirst made, with every number as Go's `any` holds it (a float64): what decoding without UseNumber gives. */
export function plainNumbers(root: unknown): unknown {
  const fix = (v: unknown): unknown => (isNumberLiteral(v) ? Number(numberLiteral(v)) : v);
  const top = fix(root);
  const stack: unknown[] = [top];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        v[i] = fix(v[i]);
        stack.push(v[i]);
      }
    } else {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        o[k] = fix(o[k]);
        stack.push(o[k]);
      }
    }
  }
  return top;
}

/** The Go type name of a decoded value, for error messages. */
export function goTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (isNumberLiteral(v) || typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : 'string';
}
