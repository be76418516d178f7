/**
 * POST|PUT /v1.0/bindings/{name}: daprd's output binding call. The body is read as daprd reads it (go-json.ts): the
 * first JSON value only, decoded into {operation, metadata, data}; `data` is stored as json.Marshal writes it (a
 * string keeps its quotes, a missing data is `null`), so the consumer receives exactly what daprd would give it.
 * The call to the broker is bounded: during an outage the caller gets a 500 naming the cause, not a call that hangs.
 */
import { withTimeout } from '../../util/timeout.js';
import { describeCause } from '../outage.js';
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';
import type { ApiRequest, Reply, RequestBody } from './router.js';
import type { ApiServer } from './server.js';
import { MAX_JSON_DEPTH, goKind, goMarshal, goString, hasNonFinite, overflowingNumber, scanFirstValue } from './go-json.js';

export { MAX_JSON_DEPTH };
export type { RequestBody };

/** Queue bindings support exactly this operation, as in Dapr. */
const OPERATIONS = ['create'] as const;

export interface OutputRequest {
  /** `data` as json.Marshal writes it. */
  data: string;
  operation: string;
  metadata: Record<string, string>;
}

/** The struct fields daprd decodes into; Go matches JSON names to them case-insensitively. */
const FIELDS = new Set(['operation', 'metadata', 'data']);

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Decodes a body into the request, or says why daprd would answer 400 ERR_MALFORMED_REQUEST ("failed deserializing
 * HTTP body: <why>"). Go's rules: the first value only; null is an empty request; each member whose name matches a
 * field sets it, in order, so a repeated field is set again (a repeated metadata object adds to the first, a null
 * metadata clears it, a null operation leaves it); a null metadata value is ""; other members are ignored.
 */
export function parseOutputRequest(body: RequestBody, limit: number): OutputRequest | string {
  // As Go's decoder, bytes that are not UTF-8 inside a string become U+FFFD; anywhere else they are a syntax error.
  const text = body.bytes.toString('utf8');
  const tooLarge = `stream too large (the body is over the limit of ${limit} bytes set by --max-body-size, and its JSON does not end within it)`;
  const first = scanFirstValue(text);
  if (first.kind === 'none') return body.truncated ? tooLarge : 'unexpected end of JSON input (empty body)';
  if (first.kind === 'too-deep') return `exceeded max depth: JSON nested deeper than ${MAX_JSON_DEPTH} levels`;
  if (first.kind === 'incomplete' || (first.scalarAtEnd && body.truncated)) {
    // Go reports a syntax error met before the bytes ran out; else the end of the bytes (or of the limit).
    const rest = text.slice(first.start);
    try {
      JSON.parse(rest);
    } catch (err) {
      const why = (err as Error).message;
      const at = /at position (\d+)/.exec(why);
      if (at && Number(at[1]) < rest.length) return why;
      return body.truncated ? tooLarge : why;
    }
    return body.truncated ? tooLarge : 'unexpected end of JSON input';
  }
  const span = text.slice(first.start, first.end);
  let parsed: unknown;
  try {
    parsed = JSON.parse(span);
  } catch (err) {
    return (err as Error).message;
  }
  if (parsed === null) return { data: 'null', operation: '', metadata: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) return `the body must be a JSON object, got ${goKind(parsed)}`;

  const at = (i: number, j: number): string => text.slice(i, j);
  const members = first.members.map((m) => {
    const raw = at(m.keyStart, m.keyEnd);
    const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    return { key, field: asciiLower(key), m };
  }).filter((x) => FIELDS.has(x.field));
  // JSON.parse keeps only the last of repeated names; Go sees each. Only then is each value read on its own.
  const repeated = new Set(members.map((x) => x.field)).size < members.length;
  const obj = parsed as Record<string, unknown>;

  let operation = '';
  let metadata: Record<string, string> | null = null;
  let data: unknown = null;
  for (const { key, field, m } of members) {
    const value = repeated ? (JSON.parse(at(m.valueStart, m.valueEnd)) as unknown) : obj[key];
    if (field === 'operation') {
      if (value === null) continue;
      if (typeof value !== 'string') return `field 'operation' must be a string, got ${goKind(value)}`;
      operation = goString(value);
    } else if (field === 'metadata') {
      if (value === null) {
        metadata = null;
        continue;
      }
      if (typeof value !== 'object' || Array.isArray(value)) return `field 'metadata' must be an object of strings, got ${goKind(value)}`;
      metadata ??= {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v !== null && typeof v !== 'string') return `field 'metadata.${k}' must be a string, got ${goKind(v)}`;
        metadata[goString(k)] = v === null ? '' : goString(v);
      }
    } else {
      if (hasNonFinite(value)) {
        const literal = overflowingNumber(at(m.valueStart, m.valueEnd));
        return `json: cannot unmarshal number${literal === undefined ? '' : ` ${literal}`} into Go struct field OutputBindingRequest.data of type float64 (out of its range)`;
      }
      data = value;
    }
  }
  return { data: goMarshal(data), operation, metadata: metadata ?? {} };
}

export function registerOutputBinding(app: ApiServer, ctx: ApiContext): void {
  const handler = async (req: ApiRequest, reply: Reply): Promise<Reply> => {
    const name = req.params.name!;
    const parsed = parseOutputRequest(req.body, ctx.maxBodyBytes);
    if (typeof parsed === 'string') return sendError(reply, 'ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${parsed}`);
    // daprd counts every call that got past decoding the body, failed or not, with its time.
    const started = performance.now();
    const counted = (ok: boolean): void => ctx.metrics?.outputBinding(name, parsed.operation, ok, performance.now() - started);
    const fail = (reason: string): Reply => {
      counted(false);
      return sendError(reply, 'ERR_INVOKE_OUTPUT_BINDING', `error invoking output binding ${name}: ${reason}`);
    };
    if (parsed.operation === '') return fail('operation field is missing from request');
    const binding = ctx.outputs.get(name);
    if (!binding) return fail(`couldn't find output binding ${name}`);
    if (!(OPERATIONS as readonly string[]).includes(parsed.operation)) {
      return fail(`binding ${name} does not support operation ${parsed.operation}. supported operations:${OPERATIONS.join(' ')}`);
    }
    // daprd passes the caller's trace context on with the message.
    const traceparent = req.headers.traceparent;
    if (typeof traceparent === 'string' && parsed.metadata.traceparent === undefined) parsed.metadata.traceparent = traceparent;
    const ms = ctx.outputBindingTimeoutMs(binding);
    try {
      await withTimeout(
        binding.backend.send(Buffer.from(parsed.data), parsed.metadata),
        ms,
        // A send that timed out may still complete at the broker: the caller cannot tell, as with any lost answer.
        `no answer from the broker within ${ms} ms (is it reachable?); the message may still be stored`,
      );
    } catch (err) {
      const cause = describeCause(err, binding.component);
      ctx.outputOutage(name)?.failed(cause);
      return fail(cause);
    }
    ctx.outputOutage(name)?.succeeded();
    counted(true);
    return reply.code(204).send();
  };
  app.route(['POST', 'PUT'], '/v1.0/bindings/:name', handler);
}
