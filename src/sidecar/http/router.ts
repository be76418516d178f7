/**
 * The sidecar API's router on node:http: routes by method and path pattern (static segments, `:param` segments, a
 * final `*` for the rest of the path), matched as daprd matches them: a trailing slash is the path without it, each
 * segment is compared percent-decoded, a HEAD request is served by the GET route without its body, and a path that
 * no route of that method takes is not found.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

/** A request body as the server read it: at most the limit's bytes, and whether more followed. */
export interface RequestBody {
  bytes: Buffer;
  /** True when the body was longer than --max-body-size: only its first bytes were kept. */
  truncated: boolean;
}

export interface ApiRequest {
  method: string;
  /** The request target as the client sent it (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The `:param` segments of the route, decoded. */
  params: Readonly<Record<string, string>>;
  /** The body, read for routes that take one; empty otherwise. */
  body: RequestBody;
  raw: IncomingMessage;
}

/** An answer under construction: status, headers, then one send. */
export class Reply {
  statusCode = 200;
  sent = false;
  /** False once the answer is a not-found one: daprd's HTTP metrics name the path of a served route only. */
  routed = true;
  private readonly headers: Record<string, string> = {};

  constructor(readonly raw: ServerResponse, private readonly head: boolean) {}

  code(status: number): this {
    this.statusCode = status;
    return this;
  }

  header(name: string, value: string): this {
    this.headers[name.toLowerCase()] = value;
    return this;
  }

  type(contentType: string): this {
    return this.header('content-type', contentType);
  }

  /** Writes the answer; a HEAD request gets the headers of the same answer (its length too) without the body. */
  send(body?: string | Buffer): this {
    if (this.sent) return this;
    this.sent = true;
    const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
    const length = bytes?.length ?? 0;
    if (length > 0 || this.head || (this.statusCode !== 204 && this.statusCode !== 304)) this.headers['content-length'] = String(length);
    this.raw.writeHead(this.statusCode, this.headers);
    // node writes no body in answer to HEAD, whatever end() is given.
    this.raw.end(length === 0 ? undefined : bytes);
    return this;
  }
}

export type Handler = (req: ApiRequest, reply: Reply) => Promise<unknown> | unknown;

interface Route {
  methods: ReadonlySet<string>;
  /** The pattern's segments after the leading slash. */
  segments: readonly string[];
  /** Ends in `*`: matches one or more further segments. */
  rest: boolean;
  handler: Handler;
}

export type Match = { handler: Handler; params: Record<string, string> };

/** The path of a request target: an absolute-form target loses its scheme and authority, the query and fragment go. */
export function pathOf(url: string): string {
  let start = 0;
  if (url[0] !== '/') {
    const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
    if (!scheme) return url;
    start = scheme[0].length;
  }
  let end = url.length;
  for (let i = start; i < end; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) end = i;
  }
  const path = url.slice(start, end);
  return path === '' ? '/' : path;
}

/**
 * The decoded segments of a path after its leading slash (one trailing slash dropped), or undefined when a
 * percent-escape is not valid (a bad escape, or bytes that are not UTF-8).
 */
export function segmentsOf(path: string): string[] | undefined {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const parts = trimmed.split('/').slice(1);
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i]!;
    if (!s.includes('%')) continue;
    try {
      parts[i] = decodeURIComponent(s);
    } catch {
      return undefined;
    }
  }
  return parts;
}

export class Router {
  private readonly routes: Route[] = [];

  /** Adds a route; the pattern starts with `/`, `:name` takes one non-empty segment, a final `*` the rest
   * (one segment or more). */
  on(methods: readonly string[], pattern: string, handler: Handler): void {
    const segments = pattern.split('/').slice(1);
    const rest = segments[segments.length - 1] === '*';
    if (rest) segments.pop();
    this.routes.push({ methods: new Set(methods), segments, rest, handler });
  }

  /** The route of a method (HEAD: the GET route) and decoded path segments, with its params; undefined if none. */
  find(method: string, segments: readonly string[]): Match | undefined {
    const m = method === 'HEAD' ? 'GET' : method;
    for (const r of this.routes) {
      if (!r.methods.has(m)) continue;
      const params = matchSegments(r, segments);
      if (params) return { handler: r.handler, params };
    }
    return undefined;
  }
}

function matchSegments(r: Route, segments: readonly string[]): Record<string, string> | undefined {
  if (r.rest ? segments.length <= r.segments.length : segments.length !== r.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < r.segments.length; i++) {
    const want = r.segments[i]!;
    const got = segments[i]!;
    if (want[0] === ':') {
      if (got === '') return undefined;
      params[want.slice(1)] = got;
    } else if (want !== got) {
      return undefined;
    }
  }
  return params;
}
