/**
 * POST|PUT /v1.0/bindings/{name}: daprd's output binding call. The body's `data` is stored as its JSON encoding
 * (a string keeps its quotes, a missing data is `null`), so the consumer receives exactly what daprd would give it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../../errors.js';
import { redactSecrets } from '../redact.js';
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';

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
  let parsed: unknown;
  try {
    parsed = JSON.parse(body === undefined ? '' : body.toString('utf8'));
  } catch (err) {
    return body === undefined || body.length === 0 ? 'unexpected end of JSON input (empty body)' : errorMessage(err);
  }
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
    try {
      await binding.backend.send(Buffer.from(JSON.stringify(parsed.data)), parsed.metadata);
    } catch (err) {
      return fail(redactSecrets(errorMessage(err), binding.component));
    }
    return reply.code(204).send();
  };
  app.post('/v1.0/bindings/:name', handler);
  app.put('/v1.0/bindings/:name', handler);
}
