/**
 * JSON from outside the process (request bodies), read so that no input can make a call throw out of a server:
 * nesting is bounded before parsing (V8's JSON.parse is iterative, but what is done with a deep value may not be).
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
export function stringEnd(text: string, open: number): number {
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
