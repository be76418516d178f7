/**
 * The sidecar's HTTP API on node:http: the token check, the body limit, read timeouts and every error in Dapr's
 * `{errorCode, message}` shape. Bodies are taken raw, whatever their content type, because daprd parses them itself.
 */
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiContext } from './context.js';
import { sendError, sendNotFound } from './errors.js';
import { registerOutputBinding } from './output-binding.js';
import { Reply, Router, pathOf, segmentsOf, type ApiRequest, type Handler, type RequestBody } from './router.js';
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

/** A Content-Type is `type/subtype` of token characters, then parameters; anything else is refused as unsupported. */
const TOKEN = "[\\w!#$%&'*+.^`|~-]+";
const MEDIA_TYPE = new RegExp(`^\\s*${TOKEN}/${TOKEN}\\s*$`);

function contentTypeValid(value: string | undefined): boolean {
  if (value === undefined || value === '') return true;
  const semi = value.indexOf(';');
  return MEDIA_TYPE.test(semi === -1 ? value : value.slice(0, semi));
}

/** An error that answers 400 ERR_MALFORMED_REQUEST (a body that cannot be read, an unsupported content type). */
function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

/**
 * Reads a body as daprd's limited reader hands it to its JSON decoder: the first `limit` bytes (0: no limit), and
 * whether more followed. A longer body is not an error here (daprd answers for it only if its JSON does not end
 * within the limit, and routes that take no body never look at it); the rest is read and dropped, so the
 * connection stays usable and memory stays bounded.
 */
function readLimited(payload: IncomingMessage, limit: number): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
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
    payload.once('end', () => resolve({ bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, kept), truncated }));
    // A client that goes away mid-body: daprd's decoder fails on the read, a 400 (nobody is left to read it).
    payload.once('error', (err) => reject(badRequest(`cannot read the body: ${err.message}`)));
  });
}

const EMPTY: RequestBody = { bytes: Buffer.alloc(0), truncated: false };

/**
 * A request node's parser refused (not HTTP, headers too large) or a client that stalled past the header or request
 * timeout: a JSON answer with the status, then the connection is closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Client Timeout']
      : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Exceeded maximum allowed HTTP header size']
        : [400, 'Client Error'];
  const body = JSON.stringify({ error: http.STATUS_CODES[status], message, statusCode: status });
  // Not in the middle of an answer already on its way.
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !inProgress?.headersSent) {
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\n\r\n${body}`);
  }
  socket.destroy();
}

export class ApiServer {
  readonly server: http.Server;
  private readonly router = new Router();
  /** The dapr-api-token every request but the probes must carry; unset: no check. */
  private readonly token: Buffer | undefined;

  constructor(private readonly ctx: ApiContext) {
    this.token = ctx.daprApiToken ? Buffer.from(ctx.daprApiToken) : undefined;
    const { headersMs, requestMs, keepAliveMs } = ctx.timeouts;
    this.server = http.createServer({
      // A client that stalls gets 408 and its connection closed; node checks the deadlines every interval.
      requestTimeout: requestMs,
      headersTimeout: headersMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersMs / 4))),
    }, (req, res) => {
      // serve() answers its own failures; this only keeps a failure in answering from ending the process.
      this.serve(req, res).catch((err: unknown) => ctx.logger.error({ err }, `cannot answer ${req.method} ${req.url}`));
    });
    this.server.keepAliveTimeout = keepAliveMs;
    this.server.on('clientError', answerClientError);
  }

  /** Serves `pattern` (see Router.on) for these methods. */
  route(methods: readonly string[], pattern: string, handler: Handler): void {
    this.router.on(methods, pattern, handler);
  }

  listen(o: { port: number; host: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(o.port, o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening and closes idle connections; resolves once the requests in progress are answered. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async serve(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const { ctx } = this;
    const method = raw.method ?? 'GET';
    const url = raw.url ?? '/';
    const reply = new Reply(res, method === 'HEAD');
    if (ctx.metrics) countApiRequests(ctx.metrics, method, url, reply);
    const segments = segmentsOf(pathOf(url));
    if (!segments) {
      reply.routed = false;
      sendError(reply, 'ERR_MALFORMED_REQUEST', `malformed URL: '${pathOf(url)}' is not a valid url component (bad percent-encoding)`);
      return;
    }
    const match = this.router.find(method, segments);
    if (this.token && !tokenExempt(method, url) && !tokenMatches(raw.headers['dapr-api-token'], this.token)) {
      if (!match) reply.routed = false;
      reply.code(401).type('text/plain; charset=utf-8').send('invalid api token');
      return;
    }
    if (!match) {
      sendNotFound(reply, method, url);
      return;
    }
    try {
      let body = EMPTY;
      if (method !== 'GET' && method !== 'HEAD') {
        if (!contentTypeValid(raw.headers['content-type'])) throw Object.assign(new Error('Unsupported Media Type'), { statusCode: 415 });
        body = await readLimited(raw, ctx.maxBodyBytes);
      }
      const req: ApiRequest = { method, url, headers: raw.headers, params: match.params, body, raw };
      await match.handler(req, reply);
    } catch (e) {
      const err = e as Error & { statusCode?: unknown };
      if (reply.sent) {
        ctx.logger.error({ err }, `internal error on ${method} ${url} after its answer was sent`);
      } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        sendError(reply, 'ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${err.message}`);
      } else {
        ctx.logger.error({ err }, `internal error on ${method} ${url}`);
        sendError(reply, 'ERR_INTERNAL', `internal error: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

export function buildApiServer(ctx: ApiContext): ApiServer {
  const app = new ApiServer(ctx);
  registerOutputBinding(app, ctx);
  registerRuntimeRoutes(app, ctx);
  return app;
}
