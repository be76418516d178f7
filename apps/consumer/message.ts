/**
 * Reads a delivered message: the raw bytes the producer's sidecar stored, expected to be `{"text": "..."}`.
 * Anything else is named precisely, so the 400 and the log line say what was wrong with it.
 */
export type ParsedMessage = { ok: true; text: string } | { ok: false; reason: string };

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

export function parseMessage(raw: Buffer | undefined): ParsedMessage {
  const s = raw === undefined ? '' : raw.toString('utf8');
  if (s.trim() === '') return { ok: false, reason: 'body is empty: expected a JSON object with a string field "text"' };
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch (err) {
    return { ok: false, reason: `body is not JSON (${(err as Error).message})` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return { ok: false, reason: `body is ${kind(v)}, expected a JSON object with a string field "text"` };
  }
  const obj = v as Record<string, unknown>;
  // ASP.NET's binder matched property names case-insensitively: {"Text": ...} reached the seed's Consumer too.
  const key = Object.hasOwn(obj, 'text') ? 'text' : Object.keys(obj).find((k) => k.toLowerCase() === 'text');
  if (key === undefined) return { ok: false, reason: 'field "text" is missing' };
  const text = obj[key];
  if (typeof text !== 'string') return { ok: false, reason: `field "text" must be a string, got ${kind(text)}` };
  return { ok: true, text };
}

/** A short, single-line, printable excerpt of a body for a log line. */
export function excerpt(raw: Buffer | undefined, max = 80): string {
  if (raw === undefined || raw.length === 0) return '';
  const s = raw.subarray(0, max * 4).toString('utf8');
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  return JSON.stringify(cut);
}
