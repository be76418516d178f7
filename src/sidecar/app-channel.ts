/**
 * The sidecar's side of the app: waits for the app's port, probes its routes, and POSTs messages to it over a
 * keep-alive pool. There is no client timeout towards the app on purpose: work may legitimately take minutes, and
 * the backend's lease renewal (not an HTTP timeout) is what keeps such a message from being handed to someone else.
 */
import http from 'node:http';
import net from 'node:net';
import { Semaphore } from './semaphore.js';
import { sleep } from '../util/abort.js';

export { sleep };

/** daprd dials every 100 ms; a shorter interval costs nothing and start-up time is scale-from-zero time. */
const DIAL_INTERVAL_MS = 20;
/** daprd's --app-binding-options-timeout default. */
export const DEFAULT_PROBE_TIMEOUT_MS = 3000;
/**
 * Metadata daprd's app channel never sends as headers (pkg/messaging/v1 InternalMetadataToHTTPHeader): the body's
 * own headers, the hop-by-hop ones, daprd's routing header. host and expect are the HTTP client's own here, and
 * dapr-api-token is only ever APP_API_TOKEN.
 */
const NOT_SENT = new Set([
  'content-type', 'content-length', 'destination-app-id', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
  'upgrade', 'http2-settings', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate', 'host', 'expect', 'dapr-api-token',
]);
const PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);
/** Go's net/http refuses (and so fails the whole call) a header name that is not a token, or a value with a control character. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;
const NON_ASCII_RE = /[^\x00-\x7f]/;

/**
 * The headers a message's metadata becomes, as daprd sends them: names lower-cased, grpc-* and the HTTP/2 pseudo
 * headers under dapr-, values as UTF-8 bytes. A name or value Go's HTTP client refuses fails the delivery, as in daprd.
 */
export function metadataHeaders(metadata: Readonly<Record<string, string>>): Record<string, string | string[]> | string {
  const headers: Record<string, string | string[]> = {};
  // Headers a `connection` entry nominates are hop-by-hop: looked for only when there is one (most messages have none).
  let nominated: Set<string> | undefined;
  for (const k in metadata) {
    if (k.length !== 10 || k.toLowerCase() !== 'connection') continue;
    for (const t of metadata[k]!.split(',')) if (t.trim() !== '') (nominated ??= new Set()).add(t.trim().toLowerCase());
  }
  for (const key in metadata) {
    const value = metadata[key]!;
    let name = key.toLowerCase();
    if (NOT_SENT.has(name) || nominated?.has(name) || name.endsWith('-bin')) continue;
    if (PSEUDO.has(name)) name = `dapr-${name.slice(1)}`;
    else if (name.startsWith('grpc-')) name = `dapr-${name}`;
    if (!TOKEN_RE.test(name)) return `metadata '${key}' is not a valid HTTP header name, so it cannot reach the app (daprd fails such a delivery too)`;
    if (CONTROL_RE.test(value)) return `metadata '${key}' has a control character in its value, so it cannot reach the app as a header (daprd fails such a delivery too)`;
    // Node writes header values as latin1: the UTF-8 bytes go out as they are, as Go sends them.
    const bytes = NON_ASCII_RE.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
    const prev = headers[name];
    headers[name] = prev === undefined ? bytes : [...(Array.isArray(prev) ? prev : [prev]), bytes];
  }
  return headers;
}

export type DeliveryOutcome = { ok: true } | { ok: false; reason: string };

/** How much of a refusing app's answer its failure reason keeps (and so a dead letter shows). */
export const REASON_BODY_BYTES = 200;
/**
 * What is read past those bytes, and dropped, so the connection can serve the next delivery. A longer answer is cut
 * off by closing the connection: nothing of an answer is ever held beyond the first REASON_BODY_BYTES.
 */
const DRAIN_LIMIT_BYTES = 64 * 1024;
const REASON_CONTROL_RE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const REASON_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A refusing answer as the sidecar read it: the status, its first bytes, and how long it was where known. */
export interface Refusal {
  status: number;
  /** The answer's first bytes: REASON_BODY_BYTES at most. */
  head: Buffer;
  /** The answer's length: read to its end, or its content-length; undefined when it was cut off before its end without one. */
  total: number | undefined;
}

/**
 * `app answered 500: {"error":"bad order"}`: the status and the start of the answer as text, control characters
 * escaped (\n, \x1b), a character cut in half dropped, and `…` with the length read when the answer was longer.
 */
export function refusalReason({ status, head, total }: Refusal): string {
  let bytes = head.subarray(0, REASON_BODY_BYTES);
  const cut = total === undefined ? head.length >= REASON_BODY_BYTES : total > bytes.length;
  if (cut) bytes = bytes.subarray(0, utf8Boundary(bytes));
  let text = new TextDecoder('utf-8').decode(bytes);
  if (!cut) text = text.trimEnd();
  text = text.replace(REASON_CONTROL_RE, (c) => REASON_ESCAPES[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16)}`));
  if (text === '' && !cut) return `app answered ${status}`;
  const more = !cut ? '' : total === undefined ? `… (the first ${bytes.length} bytes of a longer answer)` : `… (the first ${bytes.length} of ${total} bytes)`;
  return `app answered ${status}: ${text}${more}`;
}

/** The length of `b` without a UTF-8 character cut at its end. */
function utf8Boundary(b: Buffer): number {
  const i = b.length;
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the last character.
  let back = 0;
  while (i - back - 1 >= 0 && back < 3 && (b[i - back - 1]! & 0xc0) === 0x80) back++;
  const lead = i - back - 1;
  if (lead < 0) return i;
  const l = b[lead]!;
  const need = l >= 0xf0 ? 4 : l >= 0xe0 ? 3 : l >= 0xc0 ? 2 : 1;
  return back + 1 < need ? lead : i;
}

const EMPTY = Buffer.alloc(0);

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
    private readonly probeTimeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
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
      const res = await this.call(route, 'OPTIONS', this.appApiToken ? { 'dapr-api-token': this.appApiToken } : {}, undefined, this.probeTimeoutMs);
      if ((res.statusCode >= 200 && res.statusCode < 300) || res.statusCode === 405) {
        return { subscribed: true, status: res.statusCode };
      }
      return { subscribed: false, reason: `OPTIONS ${route} answered ${res.statusCode}` };
    } catch (err) {
      return { subscribed: false, reason: `OPTIONS ${route} failed: ${(err as Error).message}` };
    }
  }

  /** POSTs the message's bytes with `metadata` (what the app is to see of it) as headers. */
  async deliver(route: string, data: Buffer, metadata: Readonly<Record<string, string>>): Promise<DeliveryOutcome> {
    const headers = metadataHeaders(metadata);
    if (typeof headers === 'string') return { ok: false, reason: headers };
    headers['content-type'] = 'application/json';
    if (this.appApiToken) headers['dapr-api-token'] = this.appApiToken;
    if (this.limiter) await this.limiter.acquire();
    try {
      const res = await this.call(route, 'POST', headers, data, 0, true);
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
      return { ok: false, reason: refusalReason({ status: res.statusCode, head: res.head, total: res.total }) };
    } catch (err) {
      return { ok: false, reason: `app call failed: ${(err as Error).message}` };
    } finally {
      this.limiter?.release();
    }
  }

  /**
   * One request; the body is read to the end so the socket goes back to the pool. timeoutMs 0 = none. With
   * `keepRefusal`, a non-2xx answer's first REASON_BODY_BYTES are kept; past DRAIN_LIMIT_BYTES more it is cut off.
   */
  private call(path: string, method: string, headers: Record<string, string | string[]>, body: Buffer | undefined, timeoutMs: number, keepRefusal = false): Promise<{ statusCode: number; head: Buffer; total: number | undefined }> {
    return new Promise((resolve, reject) => {
      if (body) headers['content-length'] = String(body.length);
      if (this.closing) headers.connection = 'close';
      const req = http.request({ host: this.host, port: this.port, path, method, headers, agent: this.agent }, (res) => {
        const statusCode = res.statusCode ?? 0;
        if (!keepRefusal || (statusCode >= 200 && statusCode < 300)) {
          // Read to the end and dropped (no listener per chunk): the socket goes back to the pool.
          res.once('end', () => resolve({ statusCode, head: EMPTY, total: 0 }));
          res.once('error', reject);
          res.resume();
          return;
        }
        const declared = Number(res.headers['content-length']);
        const head: Buffer[] = [];
        let kept = 0;
        let read = 0;
        const done = (total: number | undefined): void => resolve({ statusCode, head: Buffer.concat(head), total });
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (kept < REASON_BODY_BYTES) {
            const part = chunk.subarray(0, REASON_BODY_BYTES - kept);
            head.push(part);
            kept += part.length;
          }
          if (read > REASON_BODY_BYTES + DRAIN_LIMIT_BYTES) {
            // Longer than worth reading: the connection goes, the reason keeps what was read.
            res.removeAllListeners('data');
            res.destroy();
            done(Number.isFinite(declared) && declared > 0 ? declared : undefined);
          }
        });
        res.on('end', () => done(read));
        // The status is known: an answer broken off mid-body still says what the app refused with.
        res.on('error', () => done(undefined));
      });
      req.on('error', reject);
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.end(body);
    });
  }

  /**
   * One request whose answer the caller reads (pub/sub deliveries, GET /dapr/subscribe): the status and the first
   * `keepBytes` of the body (the rest is read and dropped), APP_API_TOKEN as dapr-api-token, bounded by
   * --app-max-concurrency when `limited`. timeoutMs 0 = none. Rejects when the app cannot be called.
   */
  async exchange(o: {
    method: string; path: string; headers: Record<string, string | string[]>; body?: Buffer; keepBytes: number; timeoutMs?: number; limited: boolean;
  }): Promise<{ statusCode: number; body: Buffer }> {
    const headers = { ...o.headers };
    if (this.appApiToken) headers['dapr-api-token'] = this.appApiToken;
    if (o.body) headers['content-length'] = String(o.body.length);
    if (this.closing) headers.connection = 'close';
    if (o.limited && this.limiter) await this.limiter.acquire();
    try {
      return await new Promise((resolve, reject) => {
        const req = http.request({ host: this.host, port: this.port, path: o.path, method: o.method, headers, agent: this.agent }, (res) => {
          const kept: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            if (size < o.keepBytes) kept.push(chunk.subarray(0, o.keepBytes - size));
            size += chunk.length;
          });
          res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(kept) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
        req.end(o.body);
      });
    } finally {
      if (o.limited) this.limiter?.release();
    }
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

