/**
 * The sidecar's HTTP API on fastify: the token check, the body limit, read timeouts and every error in Dapr's
 * `{errorCode, message}` shape. Bodies are taken raw, whatever their content type, because daprd parses them itself.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';
import { registerOutputBinding, type RequestBody } from './output-binding.js';
import { registerRuntimeRoutes } from './runtime-routes.js';
import { countApiRequests } from '../metrics.js';

/**
 * Probes must work without the token. daprd exempts GET on these two paths, compared without leading or trailing
 * slashes; HEAD is exempt here too, as it is GET without the body (load balancers and probes send it).
 */
const TOKEN_EXEMPT = new Set(['v1.0/healthz', 'v1.0/healthz/outbound']);

function tokenExempt(method: string, url: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const q = url.indexOf('?');
  return TOKEN_EXEMPT.has((q === -1 ? url : url.slice(0, q)).replace(/^\/+|\/+$/g, ''));
}

function tokenMatches(given: string | string[] | undefined, expected: Buffer): boolean {
  if (typeof given !== 'string') return false;
  const g = Buffer.from(given);
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/**
 * Reads a body as daprd's limited reader hands it to its JSON decoder: the first `limit` bytes (0: no limit), and
 * whether more followed. A longer body is not an error here (daprd answers for it only if its JSON does not end
 * within the limit, and routes that take no body never look at it); the rest is read and dropped, so the
 * connection stays usable and memory stays bounded.
 */
function readLimited(payload: Readable, limit: number, done: (err: Error | null, body?: RequestBody) => void): void {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  payload.on('data', (chunk: Buffer) => {
    if (truncated) return;
    if (limit > 0 && kept + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - kept));
      kept = limit;
      truncated = true;
      return;
    }
    chunks.push(chunk);
    kept += chunk.length;
  });
  payload.once('end', () => done(null, { bytes: Buffer.concat(chunks, kept), truncated }));
  // A client that goes away mid-body: daprd's decoder fails on the read, a 400 (nobody is left to read it).
  payload.once('error', (err) => done(Object.assign(new Error(`cannot read the body: ${err.message}`), { statusCode: 400 })));
}

export function buildApiServer(ctx: ApiContext): FastifyInstance {
  const { headersMs, requestMs, keepAliveMs } = ctx.timeouts;
  const app = Fastify({
    logger: false,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A client that stalls gets 408 and its connection closed; node checks the deadlines every interval.
    requestTimeout: requestMs,
    keepAliveTimeout: keepAliveMs,
    http: { headersTimeout: headersMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersMs / 4))) },
    // daprd matches a path with a trailing slash as the path without it.
    routerOptions: { ignoreTrailingSlash: true },
  });
  if (ctx.metrics) countApiRequests(app, ctx.metrics);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => readLimited(payload, ctx.maxBodyBytes, done));

  if (ctx.daprApiToken) {
    const expected = Buffer.from(ctx.daprApiToken);
    app.addHook('onRequest', async (req, reply) => {
      if (tokenExempt(req.method, req.url)) return;
      if (!tokenMatches(req.headers['dapr-api-token'], expected)) {
        return reply.code(401).type('text/plain; charset=utf-8').send('invalid api token');
      }
    });
  }

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, 'ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${err.message}`);
    }
    ctx.logger.error({ err }, `internal error on ${req.method} ${req.url}`);
    return sendError(reply, 'ERR_INTERNAL', `internal error: ${err.message}`);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'ERR_NOT_FOUND', `no API route for ${req.method} ${req.url.split('?')[0]}`));

  registerOutputBinding(app, ctx);
  registerRuntimeRoutes(app, ctx);
  return app;
}
