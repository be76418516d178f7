/**
 * The HTTP/1.1 client the sidecar talks to its app with: keep-alive connections (one per call in flight, the most
 * recently used first), each request written as one head string plus the body, each answer read by a small parser
 * (status line, content-length, chunked, or read to the close). It does only what the app hop needs, for a
 * fraction of node:http's CPU per call and nothing to load: no streams or objects per header, no request or answer
 * objects, one listener per connection rather than per call.
 *
 * As node's keep-alive Agent did: TCP keep-alive and no Nagle on every connection, idle ones unref'd (they never
 * hold the process up) and closed a second before the app's `Keep-Alive: timeout=N` says it closes them. Past that,
 * a call on a reused connection that the app closed or reset before a byte of its answer came is sent again once on
 * a new connection (as Go's client does): an app closing an idle connection fails no call.
 */
import net from 'node:net';
import { Semaphore } from './semaphore.js';

/** A body up to this size goes out in one buffer with the request's head. */
const ONE_WRITE_BYTES = 16 * 1024;
/** The most a status line and headers may take. */
const MAX_HEAD_BYTES = 64 * 1024;
/** TCP keep-alive probes on app connections (node's Agent keepAliveMsecs as the sidecar set it). */
const TCP_KEEPALIVE_MS = 30_000;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What node:http refuses in a header value (it would break the request's framing). */
const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_PATH_RE = /[^\u0021-\u00ff]/;

/** Reads an answer's body: false = read no more of it (the connection is cut, the answer ends there). */
export type BodyReader = (chunk: Buffer) => boolean;
/** Given the status and content-length, the reader of the body, or undefined to read it to its end and drop it. */
export type BodyFor = (status: number, declared: number | undefined) => BodyReader | undefined;

export interface AppRequest {
  method: string;
  path: string;
  /** The request's head up to and without the blank line: see `head()`. */
  head: string;
  body: Buffer | undefined;
  /** 0 = none: the whole call (connect to the answer's end) is bounded otherwise. */
  timeoutMs: number;
}

/** How the answer's body ended: read to its end, cut by its reader, or broken off by the app. */
export type AnswerEnd = 'complete' | 'cut' | 'broken';
export interface Answer {
  status: number;
  end: AnswerEnd;
  /** What bodyFor gave for this answer (undefined: the body was dropped). */
  reader?: BodyReader | undefined;
}

/**
 * `name: value\r\n` lines for `headers` (an array value gives a line each), checked as node:http checks them: a
 * name that is not a token or a value with a control character throws.
 */
export function headerLines(headers: Readonly<Record<string, string | readonly string[]>>): string {
  let out = '';
  for (const name in headers) {
    const v = headers[name]!;
    if (!TOKEN_RE.test(name)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`);
    if (typeof v === 'string') {
      if (INVALID_VALUE_RE.test(v)) throw new TypeError(`Invalid character in header content ["${name}"]`);
      out += `${name}: ${v}\r\n`;
    } else {
      for (const one of v) {
        if (INVALID_VALUE_RE.test(one)) throw new TypeError(`Invalid character in header content ["${name}"]`);
        out += `${name}: ${one}\r\n`;
      }
    }
  }
  return out;
}

export function checkPath(path: string): void {
  if (INVALID_PATH_RE.test(path)) throw new TypeError('Request path contains unescaped characters');
}

const enum State { Head, Length, ChunkSize, ChunkData, ChunkEnd, Trailers, UntilClose, Done }

interface Pending {
  resolve(a: Answer): void;
  reject(e: Error): void;
  bodyFor: BodyFor;
  method: string;
  timer: NodeJS.Timeout | undefined;
}

/** One keep-alive connection and the parser of the answer it is reading. */
class Conn {
  readonly socket: net.Socket;
  /** It served a call before this one: a failure before any answer may be the app closing it while idle. */
  reused = false;
  idle = false;
  private call: Pending | undefined;
  private state = State.Done;
  private buf: Buffer | undefined;
  private remaining = 0;
  private status = 0;
  private keepAlive = true;
  /** ms the app keeps an idle connection (Keep-Alive: timeout=N), less a second; -1 = not said. */
  private idleMs = -1;
  private reader: BodyReader | undefined;
  private answered = false;
  private error: Error | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: AppHttp, host: string, port: number) {
    const s = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_MS });
    this.socket = s;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('end', () => this.onEnd());
    s.on('error', (err) => {
      this.error ??= err;
    });
    s.on('close', () => this.onClose());
  }

  send(req: AppRequest, p: Pending, closeAfter: boolean): void {
    this.call = p;
    this.state = State.Head;
    this.answered = false;
    this.keepAlive = !closeAfter;
    this.idleMs = -1;
    const s = this.socket;
    if (req.body) {
      // One buffer, one write: cheaper than a corked pair (no writev array) for the small bodies most messages are.
      if (req.body.length <= ONE_WRITE_BYTES) {
        const out = Buffer.allocUnsafe(req.head.length + req.body.length);
        out.write(req.head, 0, 'latin1');
        req.body.copy(out, req.head.length);
        s.write(out);
      } else {
        s.cork();
        s.write(req.head, 'latin1');
        s.write(req.body);
        s.uncork();
      }
    } else {
      s.write(req.head, 'latin1');
    }
  }

  /** Made idle: waits unref'd for the next call, closed when the app said it would close it. */
  park(): void {
    this.idle = true;
    this.reused = true;
    this.socket.unref();
    if (this.idleMs >= 0) {
      this.idleTimer = setTimeout(() => this.socket.destroy(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  take(): void {
    this.idle = false;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    this.socket.ref();
  }

  fail(err: Error): void {
    const p = this.call;
    if (!p) return;
    this.call = undefined;
    this.socket.destroy();
    this.pool.ended(this, p, err, undefined);
  }

  private onEnd(): void {
    if (this.call && this.state === State.UntilClose) this.finish(undefined);
    this.socket.destroy();
  }

  private onClose(): void {
    this.pool.closed(this);
    const p = this.call;
    if (!p) return;
    this.call = undefined;
    if (this.status !== 0 && this.state !== State.Head) {
      // The status is known: the caller decides what an answer broken off mid-body means.
      this.pool.ended(this, p, undefined, { status: this.status, end: 'broken', reader: this.reader });
      return;
    }
    const err = this.error ?? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    this.pool.ended(this, p, err, undefined, this.reused && !this.answered);
  }

  private onData(chunk: Buffer): void {
    if (!this.call) {
      // Bytes nobody asked for: the connection is not in a state to be reused.
      this.socket.destroy();
      return;
    }
    this.answered = true;
    while (chunk.length > 0 && this.call) {
      switch (this.state) {
        case State.Head: {
          const buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) return this.fail(new Error(`the app's answer has a head longer than ${MAX_HEAD_BYTES} bytes`));
            this.buf = buf;
            return;
          }
          this.buf = undefined;
          chunk = buf.subarray(end + 4);
          this.head(buf.toString('latin1', 0, end));
          // No body (204, 304, content-length 0): the answer ends here.
          if (this.call && (this.state as State) === State.Length && this.remaining === 0) this.finish(chunk);
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, chunk.length);
          const piece = n === chunk.length ? chunk : chunk.subarray(0, n);
          chunk = chunk.subarray(n);
          this.remaining -= n;
          if (!this.feed(piece)) return;
          if (this.remaining === 0) this.finish(chunk);
          break;
        }
        case State.UntilClose:
          if (!this.feed(chunk)) return;
          chunk = chunk.subarray(chunk.length);
          break;
        case State.ChunkSize: {
          const buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
          const eol = buf.indexOf('\r\n');
          if (eol < 0) {
            if (buf.length > 1024) return this.fail(new Error('Parse Error: the app sent a chunk size line too long'));
            this.buf = buf;
            return;
          }
          this.buf = undefined;
          const line = buf.toString('latin1', 0, eol);
          const semi = line.indexOf(';');
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          const size = /^[0-9a-fA-F]{1,12}$/.test(hex) ? parseInt(hex, 16) : NaN;
          if (!Number.isFinite(size)) return this.fail(new Error('Parse Error: Invalid character in chunk size'));
          chunk = buf.subarray(eol + 2);
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, chunk.length);
          const piece = chunk.subarray(0, n);
          chunk = chunk.subarray(n);
          this.remaining -= n;
          if (!this.feed(piece)) return;
          if (this.remaining === 0) {
            this.remaining = 2;
            this.state = State.ChunkEnd;
          }
          break;
        }
        case State.ChunkEnd: {
          const n = Math.min(this.remaining, chunk.length);
          chunk = chunk.subarray(n);
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
          if (buf.length < 2) {
            this.buf = buf;
            return;
          }
          const end = buf[0] === 13 && buf[1] === 10 ? 0 : buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) return this.fail(new Error(`the app's answer has trailers longer than ${MAX_HEAD_BYTES} bytes`));
            this.buf = buf;
            return;
          }
          this.buf = undefined;
          this.finish(buf.subarray(end === 0 ? 2 : end + 4));
          return;
        }
        default:
          return;
      }
    }
  }

  /** The status line and headers: what follows is the body, framed as they say. */
  private head(text: string): void {
    // HTTP/1.x SSS reason
    if (text.length < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 32) return this.fail(new Error('Parse Error: the app did not answer in HTTP/1.x'));
    const status = Number(text.slice(9, 12));
    if (!Number.isInteger(status) || status < 100) return this.fail(new Error('Parse Error: Invalid status code'));
    const http10 = text.charCodeAt(7) === 48;
    if (status < 200) {
      if (status === 101) return this.fail(new Error('the app switched protocols'));
      return; // An interim answer (100, 103): the real one follows.
    }
    let declared: number | undefined;
    let chunked = false;
    let connection = '';
    let at = text.indexOf('\r\n');
    while (at >= 0) {
      const next = text.indexOf('\r\n', at + 2);
      // Only four headers matter: content-length, transfer-encoding, connection, keep-alive. Others (date, …) are
      // passed over by their first letter, before any string is made of them.
      const c = text.charCodeAt(at + 2) | 0x20;
      if (c !== 99 && c !== 116 && c !== 107) {
        at = next;
        continue;
      }
      const line = next < 0 ? text.slice(at + 2) : text.slice(at + 2, next);
      at = next;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        const n = /^\d+$/.test(value) ? Number(value) : NaN;
        if (!Number.isSafeInteger(n) || (declared !== undefined && declared !== n)) return this.fail(new Error('Parse Error: Invalid content-length'));
        declared = n;
      } else if (name === 'transfer-encoding') {
        chunked = /(^|,)\s*chunked\s*$/i.test(value);
      } else if (name === 'connection') {
        connection = value.toLowerCase();
      } else if (name === 'keep-alive') {
        const m = /timeout=(\d+)/i.exec(value);
        if (m) this.idleMs = Number(m[1]) * 1000 - 1000;
      }
    }
    if (connection.includes('close') || (http10 && !connection.includes('keep-alive'))) this.keepAlive = false;
    // Keep-Alive: timeout=1 or less leaves no time to reuse the connection safely.
    if (this.idleMs !== -1 && this.idleMs <= 0) this.keepAlive = false;
    this.status = status;
    const p = this.call!;
    this.reader = p.bodyFor(status, chunked ? undefined : declared);
    if (status === 204 || status === 304 || p.method === 'HEAD') {
      this.state = State.Length;
      this.remaining = 0;
    } else if (chunked) {
      this.state = State.ChunkSize;
    } else if (declared !== undefined) {
      this.state = State.Length;
      this.remaining = declared;
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
  }

  private feed(piece: Buffer): boolean {
    if (!this.reader || piece.length === 0) return true;
    if (this.reader(piece)) return true;
    const p = this.call!;
    this.call = undefined;
    this.socket.destroy();
    this.pool.ended(this, p, undefined, { status: this.status, end: 'cut', reader: this.reader });
    return false;
  }

  /** The answer is read: the connection goes back to the pool unless something follows it or it is to close. */
  private finish(rest: Buffer | undefined): void {
    const p = this.call!;
    this.call = undefined;
    this.state = State.Done;
    const reader = this.reader;
    this.reader = undefined;
    const status = this.status;
    this.status = 0;
    if (!this.keepAlive || rest === undefined || rest.length > 0) this.socket.destroy();
    this.pool.ended(this, p, undefined, { status, end: 'complete', reader });
  }

  get reusable(): boolean {
    return !this.socket.destroyed && this.state === State.Done && this.call === undefined;
  }
}

/** The keep-alive pool towards one app: at most `maxSockets` connections (calls beyond wait for one). */
export class AppHttp {
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly slots: Semaphore | undefined;
  /** destroy() calls so far: a call it cut is not sent again. */
  private destroys = 0;
  /** closeIdle() was called: connections close as their call ends instead of waiting for the next. */
  private closing = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    maxSockets: number | undefined,
  ) {
    this.slots = maxSockets === undefined ? undefined : new Semaphore(maxSockets);
  }

  /** One call; rejects when the app could not be called (no status came). */
  async request(req: AppRequest, bodyFor: BodyFor, closeAfter: boolean): Promise<Answer> {
    if (this.slots) await this.slots.acquire();
    const destroys = this.destroys;
    try {
      try {
        return await this.once(req, bodyFor, closeAfter, false);
      } catch (err) {
        if (!(err as { stale?: boolean }).stale || this.destroys !== destroys) throw err;
        // The app closed the idle connection as the call went out on it: once more, on a new one.
        return await this.once(req, bodyFor, closeAfter, true);
      }
    } finally {
      this.slots?.release();
    }
  }

  private once(req: AppRequest, bodyFor: BodyFor, closeAfter: boolean, fresh: boolean): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      let conn = fresh ? undefined : this.idle.pop();
      // One the app closed a moment ago (its 'close' not yet seen) is passed over.
      while (conn?.socket.destroyed) conn = this.idle.pop();
      if (conn) conn.take();
      else {
        conn = new Conn(this, this.host, this.port);
        this.all.add(conn);
      }
      const p: Pending = { resolve, reject, bodyFor, method: req.method, timer: undefined };
      if (req.timeoutMs > 0) {
        const c = conn;
        p.timer = setTimeout(() => c.fail(new Error(`no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
      }
      conn.send(req, p, closeAfter);
    });
  }

  /** A call ended: its connection is parked for the next one when it can serve it. */
  ended(conn: Conn, p: Pending, err: Error | undefined, answer: Answer | undefined, stale = false): void {
    if (p.timer) clearTimeout(p.timer);
    if (answer) {
      if (conn.reusable) {
        if (this.closing) conn.socket.destroy();
        else {
          conn.park();
          this.idle.push(conn);
        }
      }
      p.resolve(answer);
    } else {
      p.reject(stale ? Object.assign(err!, { stale: true }) : err!);
    }
  }

  closed(conn: Conn): void {
    this.all.delete(conn);
    if (conn.idle) {
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
    }
  }

  /** Closes the idle connections, and each busy one as its call ends. */
  closeIdle(): void {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
  }

  /** Cuts every connection: calls running fail. */
  destroy(): void {
    this.destroys++;
    for (const c of [...this.all]) c.socket.destroy();
  }
}
