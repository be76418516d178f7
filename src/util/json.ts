/**
 * JSON from outside the process (request bodies), read and written so that no input can make a call throw out of
 * a server: nesting is bounded before parsing, and writing a deep value never recurses. V8's JSON.parse is
 * iterative, but JSON.stringify recurses and throws RangeError a few thousand levels down.
 */

export type ParsedJson = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Whether arrays and objects in `text` nest deeper than `limit` levels; brackets inside strings do not count. Stops
 * reading at the first level past the limit, and skips whole strings at a time.
 */
export function nestedDeeperThan(text: string, limit: number): boolean {
  // Each level takes at least one character.
  if (text.length <= limit) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = stringEnd(text, i);
      if (i === -1) return false; // unterminated: the parser reports it
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The index of the quote closing the string opened at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  let j = open;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j === -1) return -1;
    let backslashes = 0;
    while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return j;
  }
}

/**
 * Parses `text`, refusing JSON nested deeper than `maxDepth` levels. Never throws: every failure comes back as a
 * reason fit for a 400 answer.
 */
export function parseJson(text: string, maxDepth: number): ParsedJson {
  if (text.trim() === '') return { ok: false, reason: 'unexpected end of JSON input (empty body)' };
  if (nestedDeeperThan(text, maxDepth)) {
    return { ok: false, reason: `exceeded max depth: JSON nested deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * JSON.stringify for values JSON.parse made (null, booleans, numbers, strings, arrays, plain objects), at any
 * depth. The common shallow value takes the native path; a value too deep for it is written with an explicit stack.
 */
export function stringifyJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return stringifyDeep(value);
  }
}

type Frame = { items: unknown[]; keys: string[] | undefined; next: number; wrote: boolean; close: string };

function stringifyDeep(root: unknown): string {
  const out: string[] = [];
  const stack: Frame[] = [];
  // Writes one value: a leaf at once, an array or object as a new frame whose members the loop below writes.
  const write = (v: unknown): void => {
    if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        out.push('[');
        stack.push({ items: v, keys: undefined, next: 0, wrote: false, close: ']' });
      } else {
        const keys = Object.keys(v);
        out.push('{');
        stack.push({ items: keys.map((k) => (v as Record<string, unknown>)[k]), keys, next: 0, wrote: false, close: '}' });
      }
      return;
    }
    out.push(JSON.stringify(v) ?? 'null');
  };
  write(root);
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.next >= f.items.length) {
      out.push(f.close);
      stack.pop();
      continue;
    }
    const i = f.next++;
    const item = f.items[i];
    // As JSON.stringify: a member that has no JSON form is left out of an object and written null in an array.
    const absent = item === undefined || typeof item === 'function' || typeof item === 'symbol';
    if (f.keys && absent) continue;
    if (f.wrote) out.push(',');
    f.wrote = true;
    if (f.keys) out.push(JSON.stringify(f.keys[i]), ':');
    if (absent) out.push('null');
    else write(item);
  }
  return out.join('');
}
