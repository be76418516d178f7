/**
 * JSON read and written the way daprd's Go code does it (encoding/json), so a body daprd takes is taken here, one it
 * refuses is refused, and the bytes stored for `data` are the bytes daprd would store:
 * - reading: a json.Decoder reads the FIRST value of the body and never looks at what follows it; nesting deeper
 *   than 10,000 levels is "exceeded max depth"; a number is a float64, so one out of its range is an error; a
 *   `\uXXXX` lone surrogate becomes U+FFFD;
 * - writing (json.Marshal of what was read): object keys sorted by their UTF-8 bytes, `<`, `>`, `&`, U+2028 and
 *   U+2029 escaped, -0 kept as `-0`.
 * Nothing here recurses, so no input, however deep, can throw out of a request.
 */

import { stringEnd } from '../../util/json.js';

/** Go's encoding/json refuses nesting deeper than this ("exceeded max depth"). */
export const MAX_JSON_DEPTH = 10_000;

/** A member of the top-level object: where its key and its value lie in the text. */
export interface MemberSpan {
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

export type FirstValue =
  /** Only whitespace: Go's decoder says "EOF". */
  | { kind: 'none' }
  /** The text ends before the first value does. */
  | { kind: 'incomplete'; start: number }
  | { kind: 'too-deep' }
  /**
   * The first value spans [start, end); members are filled when it is an object. A scalar that runs to the end of
   * the text ends there only if the body does (Go's decoder needs the byte after a number or a literal).
   */
  | { kind: 'value'; start: number; end: number; members: MemberSpan[]; scalarAtEnd: boolean };

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Finds where the first JSON value of `text` ends, as Go's json.Decoder does before it decodes: an object or array
 * ends at its closing bracket (what follows is never read); a scalar at the whitespace after it. Brackets are only
 * counted, not checked: JSON.parse of the span does the checking.
 */
export function scanFirstValue(text: string): FirstValue {
  const n = text.length;
  let start = 0;
  while (start < n && isSpace(text.charCodeAt(start))) start++;
  if (start === n) return { kind: 'none' };
  const top = text.charCodeAt(start);
  if (top !== 0x7b && top !== 0x5b) {
    let end = start;
    if (top === 0x22) {
      end = stringEnd(text, start);
      if (end === -1) return { kind: 'incomplete', start };
    }
    while (end < n && !isSpace(text.charCodeAt(end))) end++;
    return { kind: 'value', start, end, members: [], scalarAtEnd: end === n };
  }
  const isObject = top === 0x7b;
  const members: MemberSpan[] = [];
  let depth = 0;
  let keyStart = -1;
  let keyEnd = -1;
  let valueStart = -1;
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const close = stringEnd(text, i);
      if (close === -1) return { kind: 'incomplete', start };
      if (isObject && depth === 1 && keyStart === -1) {
        keyStart = i;
        keyEnd = close + 1;
      }
      i = close;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) return { kind: 'too-deep' };
    } else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) {
        if (isObject && valueStart !== -1) members.push({ keyStart, keyEnd, valueStart, valueEnd: i });
        return { kind: 'value', start, end: i + 1, members, scalarAtEnd: false };
      }
    } else if (isObject && depth === 1) {
      if (c === 0x3a && valueStart === -1) valueStart = i + 1;
      else if (c === 0x2c) {
        if (valueStart !== -1) members.push({ keyStart, keyEnd, valueStart, valueEnd: i });
        keyStart = -1;
        valueStart = -1;
      }
    }
  }
  return { kind: 'incomplete', start };
}

/** The JSON type names Go's errors use. */
export function goKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

/**
 * The first number literal in `span` that a float64 cannot hold (JSON.parse made it ±Infinity), read past strings;
 * undefined when there is none.
 */
export function overflowingNumber(span: string): string | undefined {
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  for (let i = 0; i < span.length; i++) {
    const c = span.charCodeAt(i);
    if (c === 0x22) {
      const close = stringEnd(span, i);
      if (close === -1) return undefined;
      i = close;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      number.lastIndex = i;
      const m = number.exec(span);
      if (!m) continue;
      if (!Number.isFinite(Number(m[0]))) return m[0];
      i += m[0].length - 1;
    }
  }
  return undefined;
}

/** True when a float64 cannot hold some number in `value` (JSON.parse made it ±Infinity). */
export function hasNonFinite(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) for (const item of v) stack.push(item);
      else for (const k in v) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

/** A string as Go holds it after decoding: a lone surrogate (only a `\uXXXX` escape makes one) is U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const HAS_LONE_SURROGATE = new RegExp(LONE_SURROGATE.source);

export function goString(s: string): string {
  return HAS_LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\ufffd') : s;
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;
const HAS_HTML_UNSAFE = new RegExp(HTML_UNSAFE.source);
const HTML_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** A string as json.Marshal writes it. */
function marshalString(s: string): string {
  const out = JSON.stringify(goString(s));
  return HAS_HTML_UNSAFE.test(out) ? out.replace(HTML_UNSAFE, (c) => HTML_ESCAPES[c] ?? c) : out;
}

/** Go's strings.Compare on UTF-8 bytes, which is code point order; UTF-16 units order astral characters too low. */
function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && x <= 0xdfff) x += 0x10000;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x10000;
    return x - y;
  }
  return a.length - b.length;
}

/** An object's members as a Go map holds them: keys made well-formed (a later duplicate wins), sorted. */
function sortedMembers(obj: Record<string, unknown>): Array<[string, unknown]> {
  const map = new Map<string, unknown>();
  for (const k of Object.keys(obj)) map.set(goString(k), obj[k]);
  return [...map].sort((a, b) => compareKeys(a[0], b[0]));
}

type Frame = { items: Array<[string | undefined, unknown]>; next: number; close: string };

/** An array index key: a JavaScript object lists such keys first, in numeric order, whatever order they were set in. */
function isIndexKey(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 0x30 && c <= 0x39 && /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;
}

/**
 * The value with every object's keys in Go's order, for the native JSON.stringify; undefined when that cannot give
 * Go's bytes: a -0, or an object whose keys a JavaScript object cannot hold in Go's order (array indexes among others).
 */
function sortedCopy(root: unknown): unknown {
  let hazard = false;
  // Objects of one shape (the same keys in the same order) are sorted once: a list of records is one sort.
  const orders = new Map<string, string[] | null>();
  const stack: Array<[unknown, Record<string, unknown> | unknown[]]> = [];
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'number' && Object.is(v, -0)) hazard = true;
      return v;
    }
    const dst = Array.isArray(v) ? new Array<unknown>(v.length) : {};
    stack.push([v, dst]);
    return dst;
  };
  const top = copy(root);
  while (stack.length > 0 && !hazard) {
    const [src, dst] = stack.pop()!;
    if (Array.isArray(src)) {
      for (let i = 0; i < src.length; i++) (dst as unknown[])[i] = copy(src[i]);
      continue;
    }
    const obj = src as Record<string, unknown>;
    let keys = Object.keys(obj);
    if (keys.length > 1) {
      const shape = keys.join('\u0000');
      let order = orders.get(shape);
      if (order === undefined) {
        order = keys.some(isIndexKey) ? null : [...keys].sort(compareKeys);
        orders.set(shape, order);
      }
      if (order === null) return undefined;
      keys = order;
    }
    for (const k of keys) (dst as Record<string, unknown>)[k] = copy(obj[k]);
  }
  return hazard ? undefined : top;
}

/** Past this many distinct keys, a property list costs more than a sorted copy (each object looks up every key). */
const MAX_LISTED_KEYS = 64;

/**
 * Every key of every object in `root`, sorted as Go sorts them: given to JSON.stringify as its property list, it
 * writes every object's keys in that order. Undefined when there are too many, or the value holds a -0.
 */
function keysInGoOrder(root: unknown): string[] | undefined {
  const keys = new Set<string>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'number' && Object.is(v, -0)) return undefined;
      continue;
    }
    if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
      continue;
    }
    for (const k in v) {
      keys.add(k);
      stack.push((v as Record<string, unknown>)[k]);
    }
    if (keys.size > MAX_LISTED_KEYS) return undefined;
  }
  return [...keys].sort(compareKeys);
}

/** JSON.stringify escapes only lone surrogates as \udXXX: where one may be, the slow writer turns it into U+FFFD. */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/**
 * json.Marshal of a value JSON.parse made (null, booleans, finite numbers, strings, arrays, plain objects), at any
 * depth. The native JSON.stringify of a key-sorted copy where it gives Go's bytes; else, and for a value too deep for
 * it, a writer without recursion.
 */
export function goMarshal(root: unknown): string {
  const keys = keysInGoOrder(root);
  const sorted = keys === undefined ? sortedCopy(root) : root;
  if (sorted !== undefined) {
    let out: string | undefined;
    try {
      out = JSON.stringify(sorted, keys);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
    if (out !== undefined && !ESCAPED_SURROGATE.test(out)) {
      return HAS_HTML_UNSAFE.test(out) ? out.replace(HTML_UNSAFE, (c) => HTML_ESCAPES[c] ?? c) : out;
    }
  }
  return marshalSlowly(root);
}

function marshalSlowly(root: unknown): string {
  const out: string[] = [];
  const stack: Frame[] = [];
  const write = (v: unknown): void => {
    if (v === null || v === undefined) out.push('null');
    else if (typeof v === 'string') out.push(marshalString(v));
    else if (typeof v === 'number') out.push(Object.is(v, -0) ? '-0' : String(v));
    else if (typeof v === 'boolean') out.push(v ? 'true' : 'false');
    else if (Array.isArray(v)) {
      out.push('[');
      stack.push({ items: v.map((item) => [undefined, item]), next: 0, close: ']' });
    } else {
      out.push('{');
      stack.push({ items: sortedMembers(v as Record<string, unknown>), next: 0, close: '}' });
    }
  };
  write(root);
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.next >= f.items.length) {
      out.push(f.close);
      stack.pop();
      continue;
    }
    const [key, value] = f.items[f.next]!;
    if (f.next++ > 0) out.push(',');
    if (key !== undefined) out.push(marshalString(key), ':');
    write(value);
  }
  return out.join('');
}
