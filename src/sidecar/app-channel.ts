/**
 * The sidecar's side of the app: waits for the app's port, probes its routes, and POSTs messages to it over a
 * keep-alive pool. There is no client timeout towards the app on purpose: work may legitimately take minutes, and
 * the backend's lease renewal (not an HTTP timeout) is what keeps such a message from being handed to someone else.
 */
import net from 'node:net';
import { Pool } from 'undici';
import type { QueueMessage } from '../backends/types.js';
import { Semaphore } from './semaphore.js';

const DIAL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 3000;
/** Headers the HTTP client manages itself or that would break the connection: never copied from metadata. */
const RESERVED = new Set(['content-type', 'content-length', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection', 'dapr-api-token']);
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

export type DeliveryOutcome = { ok: true } | { ok: false; reason: string };

export type ProbeResult = { subscribed: true; status: number } | { subscribed: false; reason: string };

export class AppChannel {
  private readonly pool: Pool;
  private readonly limiter: Semaphore | undefined;
  private reachable = false;
  private reaching: Promise<boolean> | undefined;
  readonly origin: string;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly appApiToken: string | undefined,
    maxConcurrency: number | undefined,
  ) {
    this.origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.pool = new Pool(this.origin, {
      connections: maxConcurrency ?? null,
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 30_000,
    });
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
      const res = await this.pool.request({
        path: route,
        method: 'OPTIONS',
        headers: this.appApiToken ? { 'dapr-api-token': this.appApiToken } : {},
        headersTimeout: PROBE_TIMEOUT_MS,
        bodyTimeout: PROBE_TIMEOUT_MS,
      });
      await res.body.dump();
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
      const res = await this.pool.request({ path: route, method: 'POST', headers, body: msg.data });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
      return { ok: false, reason: `app answered ${res.statusCode}` };
    } catch (err) {
      return { ok: false, reason: `app call failed: ${(err as Error).message}` };
    } finally {
      this.limiter?.release();
    }
  }

  /** Lets running calls finish. */
  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }

  /** Aborts running calls: used only past the grace period. */
  async destroy(): Promise<void> {
    await this.pool.destroy().catch(() => undefined);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
