/**
 * POST|PUT /v1.0/bindings/{name}: daprd's output binding call. The body's `data` is stored as its JSON encoding
 * (a string keeps its quotes, a missing data is `null`), so the consumer receives exactly what daprd would give it.
 * The call to the broker is bounded: during an outage the caller gets a 500 naming the cause, not a call that hangs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseJson, stringifyJson } from '../../util/json.js';
import { withTimeout } from '../../util/timeout.js';
import { describeCause } from '../outage.js';
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';

/**
 * daprd decodes the body with Go's encoding/json, which refuses nesting deeper than 10,000 levels
 * ("exceeded max depth"): the same bound here, so what daprd takes is taken, and nothing deeper reaches the parser.
 */
export const MAX_JSON_DEPTH = 10_000;

/** Queue bindings support exactly this operation, as in Dapr. */
const OPERATIONS = ['create'] as const;

interface OutputRequest {
  data: unknown;
  operation: string;
  metadata: Record<string, string>;
}

/** Go's json decoding matches field names case-insensitively; so does this. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  for (const key of Object.keys(obj)) if (key.toLowerCase() === name) return obj[key];
  return undefined;
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Returns the request, or why its shape is wrong (daprd: "failed deserializing HTTP body: ..."). */
export function parseOutputRequest(body: Buffer | undefined): OutputRequest | string {
  // As Go's decoder, bytes that are not UTF-8 inside a string become U+FFFD; anywhere else they are a syntax error.
  const json = parseJson(body === undefined ? '' : body.toString('utf8'), MAX_JSON_DEPTH);
  if (!json.ok) return json.reason;
  const parsed = json.value;
  if (parsed === null) return { data: null, operation: '', metadata: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) return `the body must be a JSON object, got ${kindOf(parsed)}`;
  const obj = parsed as Record<string, unknown>;
  const operation = field(obj, 'operation');
  if (operation !== undefined && operation !== null && typeof operation !== 'string') {
    return `field 'operation' must be a string, got ${kindOf(operation)}`;
  }
  const rawMeta = field(obj, 'metadata');
  const metadata: Record<string, string> = {};
  if (rawMeta !== undefined && rawMeta !== null) {
    if (typeof rawMeta !== 'object' || Array.isArray(rawMeta)) return `field 'metadata' must be an object of strings, got ${kindOf(rawMeta)}`;
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') return `field 'metadata.${k}' must be a string, got ${kindOf(v)}`;
      metadata[k] = v;
    }
  }
  const data = field(obj, 'data');
  return { data: data === undefined ? null : data, operation: typeof operation === 'string' ? operation : '', metadata };
}

export function registerOutputBinding(app: FastifyInstance, ctx: ApiContext): void {
  const handler = async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const name = req.params.name;
    const parsed = parseOutputRequest(req.body as Buffer | undefined);
    if (typeof parsed === 'string') return sendError(reply, 'ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${parsed}`);
    const fail = (reason: string): FastifyReply => sendError(reply, 'ERR_INVOKE_OUTPUT_BINDING', `error invoking output binding ${name}: ${reason}`);
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
        binding.backend.send(Buffer.from(stringifyJson(parsed.data)), parsed.metadata),
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
    return reply.code(204).send();
  };
  app.post('/v1.0/bindings/:name', handler);
  app.put('/v1.0/bindings/:name', handler);
}
