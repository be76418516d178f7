/**
 * The sidecar's side of the app: waits for the app's port, probes its routes, and POSTs messages to it over a
 * keep-alive pool. There is no client timeout towards the app on purpose: work may legitimately take minutes, and
 * the backend's lease renewal (not an HTTP timeout) is what keeps such a message from being handed to someone else.
 */
import net from 'node:net';
import { AppHttp, checkPath, headerLines, type BodyFor, type BodyReader } from './app-http.js';
import { Semaphore } from './semaphore.js';
import { sleep } from '../util/abort.js';

export { sleep };

/**
 * daprd dials every 100 ms. Start-up time is scale-from-zero time: the first second dials every 5 ms (an app that
 * starts with its sidecar, or after a warm sidecar was adopted, opens its port within it), then every 20 ms.
 */
const FIRST_DIAL_INTERVAL_MS = 5;
const FAST_DIALS_FOR_MS = 1000;
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

export type DeliveryOutcome = { readonly ok: true } | { ok: false; reason: string };
/** Every delivery the app accepted answers the same. */
const DELIVERED: DeliveryOutcome = Object.freeze({ ok: true });

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

export type ProbeResult = { subscribed: true; status: number } | { subscribed: false; reason: string };

/** What a call read of an answer: its status, and of a refusal the first bytes and the length. */
interface CallAnswer {
  statusCode: number;
  head: Buffer;
  total: number | undefined;
}

const EMPTY = Buffer.alloc(0);
const OK_ANSWER: CallAnswer = { statusCode: 200, head: EMPTY, total: 0 };
/** 2xx answers are read to their end and dropped (the connection serves the next call); so are all of a probe's. */
const DROP: BodyFor = () => undefined;

/** What a delivery keeps of a refusal (a non-2xx answer) while reading it. */
interface RefusalRead { head: Buffer[]; kept: number; read: number; declared: number | undefined }
type RefusalReader = BodyReader & { refusal: RefusalRead };

/**
 * A delivery's answer: a 2xx is dropped as it is read (nothing made per call); of a refusal the first
 * REASON_BODY_BYTES are kept, and one longer than DRAIN_LIMIT_BYTES more is cut off.
 */
const KEEP_REFUSAL: BodyFor = (status, declared) => {
  if (status >= 200 && status < 300) return undefined;
  const r: RefusalRead = { head: [], kept: 0, read: 0, declared };
  const reader = (chunk: Buffer): boolean => {
    r.read += chunk.length;
    if (r.kept < REASON_BODY_BYTES) {
      const part = chunk.subarray(0, REASON_BODY_BYTES - r.kept);
      r.head.push(Buffer.from(part));
      r.kept += part.length;
    }
    // Longer than worth reading: the connection goes, the reason keeps what was read.
    return r.read <= REASON_BODY_BYTES + DRAIN_LIMIT_BYTES;
  };
  return Object.assign(reader, { refusal: r }) satisfies RefusalReader;
};

export class AppChannel {
  /** qscale's own keep-alive HTTP/1.1 pool (app-http.ts): one connection per call in flight, nothing to load. */
  private readonly http: AppHttp;
  private readonly limiter: Semaphore | undefined;
  private reachable = false;
  private closing = false;
  private reaching: Promise<boolean> | undefined;
  /** The head of a delivery's request to each route, but its metadata headers and content-length. */
  private readonly postHeads = new Map<string, string>();
  private readonly hostLine: string;
  private readonly tokenLine: string;
  private readonly tokenError: Error | undefined;
  readonly origin: string;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly appApiToken: string | undefined,
    maxConcurrency: number | undefined,
    private readonly probeTimeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
  ) {
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.origin = `http://${authority}`;
    this.hostLine = `host: ${authority}\r\n`;
    let tokenLine = '';
    try {
      if (appApiToken) tokenLine = headerLines({ 'dapr-api-token': appApiToken });
    } catch (err) {
      // A token no header can carry fails each call that would send it, as it did through node:http.
      this.tokenError = err as Error;
    }
    this.tokenLine = tokenLine;
    this.http = new AppHttp(host, port, maxConcurrency);
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
    const since = performance.now();
    while (!signal.aborted) {
      if (await this.dial()) {
        this.reachable = true;
        return true;
      }
      await sleep(performance.now() - since < FAST_DIALS_FOR_MS ? FIRST_DIAL_INTERVAL_MS : DIAL_INTERVAL_MS, signal);
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
    let head: string;
    try {
      head = this.postHead(route, metadata, data.length);
    } catch (err) {
      if (typeof err === 'string') return { ok: false, reason: err };
      return { ok: false, reason: `app call failed: ${(err as Error).message}` };
    }
    if (this.limiter) await this.limiter.acquire();
    try {
      const res = await this.send('POST', route, head, data, 0, true);
      if (res.statusCode >= 200 && res.statusCode < 300) return DELIVERED;
      return { ok: false, reason: refusalReason({ status: res.statusCode, head: res.head, total: res.total }) };
    } catch (err) {
      return { ok: false, reason: `app call failed: ${(err as Error).message}` };
    } finally {
      this.limiter?.release();
    }
  }

  /**
   * A delivery's request head: the route's fixed part (cached), the metadata headers, the length, the connection.
   * Throws the reason (a string) when the metadata cannot be sent as headers.
   */
  private postHead(route: string, metadata: Readonly<Record<string, string>>, length: number): string {
    let fixed = this.postHeads.get(route);
    if (fixed === undefined) {
      if (this.tokenError) throw this.tokenError;
      checkPath(route);
      fixed = `POST ${route} HTTP/1.1\r\n${this.hostLine}content-type: application/json\r\n${this.tokenLine}`;
      this.postHeads.set(route, fixed);
    }
    let lines = '';
    // Most messages carry no metadata the app sees: nothing to turn into headers then.
    for (const _ in metadata) {
      const headers = metadataHeaders(metadata);
      if (typeof headers === 'string') throw headers;
      lines = headerLines(headers);
      break;
    }
    return `${fixed}${lines}content-length: ${length}\r\nconnection: ${this.closing ? 'close' : 'keep-alive'}\r\n\r\n`;
  }

  private head(method: string, path: string, headers: Record<string, string | string[]>, body: Buffer | undefined): string {
    checkPath(path);
    const length = body ? `content-length: ${body.length}\r\n` : '';
    return `${method} ${path} HTTP/1.1\r\n${this.hostLine}${headerLines(headers)}${length}connection: ${this.closing ? 'close' : 'keep-alive'}\r\n\r\n`;
  }

  /**
   * One request; the body is read to the end so the connection goes back to the pool. timeoutMs 0 = none. With
   * `keepRefusal`, a non-2xx answer's first REASON_BODY_BYTES are kept; past DRAIN_LIMIT_BYTES more it is cut off.
   */
  private async call(path: string, method: string, headers: Record<string, string | string[]>, body: Buffer | undefined, timeoutMs: number): Promise<CallAnswer> {
    return this.send(method, path, this.head(method, path, headers, body), body, timeoutMs, false);
  }

  private async send(method: string, path: string, head: string, body: Buffer | undefined, timeoutMs: number, keepRefusal: boolean): Promise<CallAnswer> {
    const answer = await this.http.request({ method, path, head, body, timeoutMs }, keepRefusal ? KEEP_REFUSAL : DROP, this.closing);
    const statusCode = answer.status;
    const r = (answer.reader as RefusalReader | undefined)?.refusal;
    if (!r) {
      // An answer broken off mid-body fails the call; a refusal's does not: its status says what the app refused with.
      if (answer.end === 'broken') throw new Error('aborted');
      return statusCode === 200 ? OK_ANSWER : { statusCode, head: EMPTY, total: 0 };
    }
    const total = answer.end === 'complete' ? r.read
      : answer.end === 'cut' ? (r.declared !== undefined && r.declared > 0 ? r.declared : undefined)
      : undefined;
    return { statusCode, head: Buffer.concat(r.head), total };
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
    delete headers['content-length'];
    const head = this.head(o.method, o.path, headers, o.body);
    if (o.limited && this.limiter) await this.limiter.acquire();
    try {
      const kept: Buffer[] = [];
      let size = 0;
      const answer = await this.http.request({ method: o.method, path: o.path, head, body: o.body, timeoutMs: o.timeoutMs ?? 0 }, () => (chunk) => {
        if (size < o.keepBytes) kept.push(Buffer.from(chunk.subarray(0, o.keepBytes - size)));
        size += chunk.length;
        return true;
      }, this.closing);
      if (answer.end !== 'complete') throw new Error('aborted');
      return { statusCode: answer.status, body: Buffer.concat(kept) };
    } finally {
      if (o.limited) this.limiter?.release();
    }
  }

  /** Lets running calls finish: idle sockets close now, busy ones when their call ends. */
  async close(): Promise<void> {
    this.closing = true;
    this.http.closeIdle();
  }

  /** Aborts running calls: used only past the grace period. */
  async destroy(): Promise<void> {
    this.http.destroy();
  }
}

