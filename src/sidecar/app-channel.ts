/**
 * The sidecar's side of the app: waits for the app's port, probes its routes, and POSTs messages to it over a
 * keep-alive pool. There is no client timeout towards the app on purpose: work may legitimately take minutes, and
 * the backend's lease renewal (not an HTTP timeout) is what keeps such a message from being handed to someone else.
 */
import http from 'node:http';
import net from 'node:net';
import type { QueueMessage } from '../backends/types.js';
import { Semaphore } from './semaphore.js';
import { sleep } from '../util/abort.js';

export { sleep };

/** daprd dials every 100 ms; a shorter interval costs nothing and start-up time is scale-from-zero time. */
const DIAL_INTERVAL_MS = 20;
const PROBE_TIMEOUT_MS = 3000;
/** Headers the HTTP client manages itself or that would break the connection: never copied from metadata. */
const RESERVED = new Set(['content-type', 'content-length', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection', 'dapr-api-token']);
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

export type DeliveryOutcome = { ok: true } | { ok: false; reason: string };

export type ProbeResult = { subscribed: true; status: number } | { subscribed: false; reason: string };

export class AppChannel {
  /** node's own keep-alive agent: no client library to load at start-up, one socket per concurrent call. */
  private readonly agent: http.Agent;
  private readonly limiter: Semaphore | undefined;
  private reachable = false;
  private closing = false;
  private reaching: Promise<boolean> | undefined;
  readonly origin: string;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly appApiToken: string | undefined,
    maxConcurrency: number | undefined,
  ) {
    this.origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxSockets: maxConcurrency ?? Infinity, scheduling: 'lifo' });
    this.limiter = maxConcurrency === undefined ? undefined : new Semaphore(maxConcurrency);
  }

  get isReachable(): boolean {
    return this.reachable;
  }

  /**
   * Resolves once the app's port accepts a TCP connection; false when aborted first. One dial loop serves every
   * caller (health and each input binding), so the first signal given is the one that counts.
   */
  waitUntilReachable(signal: AbortSignal): Promise<boolean> {
    this.reaching ??= this.dialUntilOpen(signal);
    return this.reaching;
  }

  private async dialUntilOpen(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.dial()) {
        this.reachable = true;
        return true;
      }
      await sleep(DIAL_INTERVAL_MS, signal);
    }
    return false;
  }

  private dial(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ host: this.host, port: this.port });
      const done = (ok: boolean): void => {
        s.destroy();
        resolve(ok);
      };
      s.setTimeout(1000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
  }

  /** daprd's subscription check: OPTIONS /<route>; 2xx or 405 means the app takes this binding. */
  async probe(route: string): Promise<ProbeResult> {
    try {
      const res = await this.call(route, 'OPTIONS', this.appApiToken ? { 'dapr-api-token': this.appApiToken } : {}, undefined, PROBE_TIMEOUT_MS);
      if ((res.statusCode >= 200 && res.statusCode < 300) || res.statusCode === 405) {
        return { subscribed: true, status: res.statusCode };
      }
      return { subscribed: false, reason: `OPTIONS ${route} answered ${res.statusCode}` };
    } catch (err) {
      return { subscribed: false, reason: `OPTIONS ${route} failed: ${(err as Error).message}` };
    }
  }

  async deliver(route: string, msg: QueueMessage): Promise<DeliveryOutcome> {
    const headers: Record<string, string> = {};
    for (const key in msg.metadata) {
      const value = msg.metadata[key];
      const name = key.toLowerCase();
      if (value !== undefined && TOKEN_RE.test(name) && !RESERVED.has(name) && VALUE_RE.test(value)) headers[name] = value;
    }
    headers['content-type'] = 'application/json';
    if (this.appApiToken) headers['dapr-api-token'] = this.appApiToken;
    if (this.limiter) await this.limiter.acquire();
    try {
      const res = await this.call(route, 'POST', headers, msg.data, 0);
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
      return { ok: false, reason: `app answered ${res.statusCode}` };
    } catch (err) {
      return { ok: false, reason: `app call failed: ${(err as Error).message}` };
    } finally {
      this.limiter?.release();
    }
  }

  /** One request; the body is read to the end so the socket goes back to the pool. timeoutMs 0 = none. */
  private call(path: string, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<{ statusCode: number }> {
    return new Promise((resolve, reject) => {
      if (body) headers['content-length'] = String(body.length);
      if (this.closing) headers.connection = 'close';
      const req = http.request({ host: this.host, port: this.port, path, method, headers, agent: this.agent }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0 }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.end(body);
    });
  }

  /** Lets running calls finish: idle sockets close now, busy ones when their call ends. */
  async close(): Promise<void> {
    this.closing = true;
    for (const sockets of Object.values(this.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  /** Aborts running calls: used only past the grace period. */
  async destroy(): Promise<void> {
    this.agent.destroy();
  }
}

