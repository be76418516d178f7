/**
 * The seed's Consumer: POST /message-queue takes {"text": ...}, works WORK_MS, prints the seed's line, answers 200.
 * A body it cannot read gets a 400 naming why, so the sidecar does not ack it: the broker redelivers it and
 * dead-letters it after its max deliveries — the message is neither lost nor retried forever.
 *
 * It serves its five routes with node:http alone: a replica scaled from zero is started while a message waits, so
 * the app's own start is on that message's path, and a web framework would be most of it. It answers as the
 * framework did: JSON errors with statusCode/error/message, 404 for any other route or method, 413 over 4 MiB,
 * HEAD wherever GET is served, and 503 with `Connection: close` to a request arriving while it closes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LineLogger } from '../../src/util/log.js';
import type { ConsumerConfig } from './config.js';
import { excerpt, parseMessage } from './message.js';
import { processedLine } from './timefmt.js';

export interface ConsumerOptions {
  config: ConsumerConfig;
  logger: LineLogger;
  /** Where the processed lines go (stdout in the app). */
  print?: (line: string) => void;
}

export interface ConsumerApp {
  server: http.Server;
  /** Listens on host:port (port 0: a free one) and resolves to the base URL, e.g. `http://127.0.0.1:6000`. */
  listen(host: string, port: number): Promise<string>;
  /** Stops accepting, answers new requests 503, and resolves once every connection has ended. */
  close(): Promise<void>;
  /** Messages being worked on right now. */
  inFlight(): number;
}

/** Bodies above this are refused with 413 before they are read (the limit the app always had). */
const BODY_LIMIT = 4 * 1024 * 1024;
/** Longer than a caller's pool keeps an idle connection, so the app never closes one a caller is about to reuse. */
const KEEP_ALIVE_MS = 72_000;

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 413: 'Payload Too Large', 500: 'Internal Server Error' };

function tokenMatches(expected: string, got: string | string[] | undefined): boolean {
  if (typeof got !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  if (body === undefined) {
    res.setHeader('content-length', '0');
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: http.ServerResponse, status: number, message: string, code?: string): void {
  send(res, status, { statusCode: status, ...(code ? { code } : {}), error: STATUS_TEXT[status] ?? 'Error', message });
}

class BodyTooLarge extends Error {}

/** The whole request body, or undefined when there was none; BodyTooLarge past BODY_LIMIT. */
function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (declared > BODY_LIMIT) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > BODY_LIMIT) return;
      // No content-type and nothing sent: no body at all, as a framework would see it.
      if (size === 0 && req.headers['content-type'] === undefined) resolve(undefined);
      else resolve(Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}

export function buildConsumer(opts: ConsumerOptions): ConsumerApp {
  const { config, logger } = opts;
  const print = opts.print ?? ((line: string) => void process.stdout.write(line + '\n'));
  const route = `/${config.route}`;
  let inFlight = 0;
  let closing = false;

  async function deliver(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw: Buffer | undefined;
    try {
      raw = await readBody(req);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        return sendError(res, 413, 'Request body is too large', 'FST_ERR_CTP_BODY_TOO_LARGE');
      }
      throw err;
    }
    const msg = parseMessage(raw);
    if (!msg.ok) {
      const preview = excerpt(raw);
      logger.warn(
        { route, bytes: raw?.length ?? 0, ...(preview ? { body: preview } : {}) },
        `rejected a message on ${route}: ${msg.reason}; answered 400, so the sidecar does not ack it and the broker dead-letters it after its max deliveries`,
      );
      return send(res, 400, { errorCode: 'ERR_BAD_MESSAGE', message: msg.reason });
    }
    inFlight += 1;
    try {
      const received = new Date();
      // A zero-length timer still waits for the next timers phase (about 1 ms): skip it when there is no work.
      if (config.workMs > 0) await sleep(config.workMs);
      print(processedLine(msg.text, received, new Date()));
    } finally {
      inFlight -= 1;
    }
    send(res, 200);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (closing) {
      res.setHeader('connection', 'close');
      return send(res, 503, { error: 'Service Unavailable', message: 'Service Unavailable', statusCode: 503 });
    }
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (config.apiToken !== undefined && url !== '/healthz' && !tokenMatches(config.apiToken, req.headers['dapr-api-token'])) {
      logger.warn({ method, url }, 'refused a request without the right dapr-api-token header (APP_API_TOKEN is set): answered 401');
      return send(res, 401, { errorCode: 'ERR_UNAUTHORIZED', message: 'missing or invalid dapr-api-token header' });
    }
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const get = method === 'GET' || method === 'HEAD';
    if (path === route && method === 'POST') return deliver(req, res);
    // Dapr probes the route with OPTIONS at start: 2xx means "this app reads the binding".
    if (path === route && method === 'OPTIONS') return send(res, 200);
    if (path === '/healthz' && get) return send(res, 200, { status: 'ok', inFlight });
    // daprd asks every app for its programmatic subscriptions; none unless PUBSUB_NAME and TOPIC are set (declarative
    // Subscription resources need none).
    if (path === '/dapr/subscribe' && get) return send(res, 200, config.subscription ? [{ ...config.subscription, route }] : []);
    sendError(res, 404, `Route ${method}:${url} not found`);
  }

  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, `answered 500 to ${req.method} ${req.url}`);
      sendError(res, 500, (err as Error).message ?? String(err));
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_MS;

  return {
    server,
    inFlight: () => inFlight,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        closing = true;
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
