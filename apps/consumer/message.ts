/**
 * Reads a delivered message: the raw bytes the producer's sidecar stored, expected to be `{"text": "..."}` — through an
 * input binding as they are, through a pub/sub subscription inside a CloudEvent envelope (`data`, or `data_base64`).
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
  if (isCloudEvent(v)) {
    const inner = cloudEventData(v);
    if (!inner.ok) return inner;
    v = inner.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      return { ok: false, reason: `the CloudEvent's data is ${kind(v)}, expected a JSON object with a string field "text"` };
    }
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

function isCloudEvent(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).specversion === 'string'
    && ('data' in v || 'data_base64' in v);
}

/** The event's payload: `data` as it is, or `data_base64` decoded and read as JSON. */
function cloudEventData(ev: Record<string, unknown>): { ok: true; value: unknown } | { ok: false; reason: string } {
  if ('data' in ev) return { ok: true, value: ev.data };
  const b64 = ev.data_base64;
  if (typeof b64 !== 'string') return { ok: false, reason: `the CloudEvent's data_base64 is ${kind(b64)}, expected a base64 string` };
  const text = Buffer.from(b64, 'base64').toString('utf8');
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reason: `the CloudEvent's data_base64 is not JSON (${(err as Error).message})` };
  }
}
