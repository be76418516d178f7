/**
 * The sidecar API's own HTTP handling on node:http, as a client sees it: malformed URLs, methods no route takes,
 * HEAD, trailing and doubled slashes, the token and its probe exemptions, a stalled client, a route that throws,
 * keep-alive and idle connections at close. The API is built on its own (buildApiServer) over a small context, so
 * a route can be made to fail; every exchange is real HTTP over a socket.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildApiServer, type ApiServer } from '../../src/sidecar/http/server.js';
import type { ApiContext } from '../../src/sidecar/http/context.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server wrote on the connection. */
  raw: string;
}

/** Parses the first answer of what a server wrote (Content-Length bodies only, as this API writes them). */
function parseAnswer(raw: string): Answer {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? 0);
  return { status: Number(statusLine.split(' ')[1]), headers, body: raw.slice(end + 4, end + 4 + length), raw };
}

/** Writes `text` on a new connection and collects what comes back until the server closes it or `ms` pass. */
function exchange(port: number, text: string, ms = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(text, 'latin1');
  });
}

async function ask(port: number, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const h = Object.entries({ host: 'x', connection: 'close', ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) });
  return parseAnswer(await exchange(port, `${method} ${target} HTTP/1.1\r\n${h.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body ?? ''}`));
}

function assertDaprError(a: Answer, status: number, code: string, message?: RegExp): void {
  assert.equal(a.status, status, a.raw);
  assert.match(a.headers['content-type'] ?? '', /^application\/json/);
  const j = JSON.parse(a.body) as { errorCode: string; message: string };
  assert.equal(j.errorCode, code, a.body);
  if (message) assert.match(j.message, message);
}

interface Api {
  port: number;
  server: ApiServer;
  logs: string[];
}

const open: ApiServer[] = [];

async function startApi(o: Partial<ApiContext> = {}): Promise<Api> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const ctx: ApiContext = {
    appId: 'router-test',
    daprApiToken: undefined,
    maxBodyBytes: 1024,
    timeouts: { headersMs: 10_000, requestMs: 20_000, keepAliveMs: 5_000 },
    outputBindingTimeoutMs: () => 1000,
    logger: pino({ level: 'info' }, sink),
    outputs: new Map(),
    outputOutage: () => undefined,
    componentsLoaded: () => true,
    health: () => ({ ready: true }),
    metadata: () => ({ id: 'router-test', components: [] }),
    shutdown: () => undefined,
    ...o,
  };
  const server = buildApiServer(ctx);
  open.push(server);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const addr = server.server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, server, logs };
}

describe('sidecar API on node:http - what the router answers itself', { timeout: 60_000 }, () => {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  }, { timeout: 30_000 });

  it('a malformed URL (bad percent-encoding) answers 400 ERR_MALFORMED_REQUEST naming it, and the server serves on', { timeout: 10_000 }, async () => {
    const api = await startApi();
    for (const target of ['/v1.0/healthz%zz', '/v1.0/bindings/a%zz', '/v1.0/publish/p/%E0%A4%A']) {
      assertDaprError(await ask(api.port, 'GET', target), 400, 'ERR_MALFORMED_REQUEST', new RegExp(`malformed URL: '${target}'`));
    }
    // A well-formed escape is decoded before matching, as daprd matches the decoded path.
    assert.equal((await ask(api.port, 'GET', '/v1.0/%68ealthz')).status, 204);
  });

  it('a method no route takes is ERR_NOT_FOUND; a method node cannot parse is a 400', { timeout: 10_000 }, async () => {
    const api = await startApi();
    assertDaprError(await ask(api.port, 'DELETE', '/v1.0/healthz'), 404, 'ERR_NOT_FOUND', /^no API route for DELETE \/v1\.0\/healthz$/);
    assertDaprError(await ask(api.port, 'PROPFIND', '/v1.0/metadata'), 404, 'ERR_NOT_FOUND');
    assertDaprError(await ask(api.port, 'GET', '/v1.0/bindings/jobs'), 404, 'ERR_NOT_FOUND');
    assertDaprError(await ask(api.port, 'GET', '/nope?x=1'), 404, 'ERR_NOT_FOUND', /^no API route for GET \/nope$/);
    const bogus = parseAnswer(await exchange(api.port, 'FOO BAR /v1.0/healthz HTTP/1.1\r\nhost: x\r\n\r\n'));
    assert.equal(bogus.status, 400, bogus.raw);
  });

  it('HEAD is GET without the body: same status and length', { timeout: 10_000 }, async () => {
    const api = await startApi();
    const get = await ask(api.port, 'GET', '/v1.0/metadata');
    const head = await ask(api.port, 'HEAD', '/v1.0/metadata');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)));
    assert.ok(head.raw.endsWith('\r\n\r\n'), `a HEAD answer with a body: ${head.raw}`);
    assert.equal((await ask(api.port, 'HEAD', '/v1.0/healthz')).status, 204);
    // HEAD exists only where GET does.
    assert.equal((await ask(api.port, 'HEAD', '/v1.0/bindings/jobs')).status, 404);
  });

  it('a trailing slash is the path without it; a doubled slash or a second trailing one is not a route', { timeout: 10_000 }, async () => {
    const api = await startApi();
    assert.equal((await ask(api.port, 'GET', '/v1.0/metadata/')).status, 200);
    assert.equal((await ask(api.port, 'GET', '/v1.0/healthz/outbound/?x=1')).status, 204);
    assertDaprError(await ask(api.port, 'POST', '/v1.0/bindings/jobs/', {}, '{"operation":"create"}'), 500, 'ERR_INVOKE_OUTPUT_BINDING', /couldn't find output binding jobs$/);
    for (const target of ['//v1.0/metadata', '/v1.0//metadata', '/v1.0/metadata//']) {
      assertDaprError(await ask(api.port, 'GET', target), 404, 'ERR_NOT_FOUND');
    }
  });

  it('with a token: 401 "invalid api token" everywhere but GET/HEAD of the health probes', { timeout: 10_000 }, async () => {
    const api = await startApi({ daprApiToken: 's3cret' });
    for (const [method, target] of [['GET', '/v1.0/healthz'], ['HEAD', '/v1.0/healthz/'], ['GET', '/v1.0/healthz/outbound'], ['HEAD', '/v1.0/healthz/outbound/']]) {
      assert.equal((await ask(api.port, method!, target!)).status, 204, `${method} ${target}`);
    }
    for (const [method, target] of [['GET', '/v1.0/metadata'], ['POST', '/v1.0/healthz'], ['GET', '/nope'], ['POST', '/v1.0/bindings/jobs']]) {
      const a = await ask(api.port, method!, target!, {}, method === 'POST' ? '{}' : undefined);
      assert.equal(a.status, 401, `${method} ${target}: ${a.raw}`);
      assert.equal(a.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(a.body, 'invalid api token');
    }
    assert.equal((await ask(api.port, 'GET', '/v1.0/metadata', { 'dapr-api-token': 's3cret-' })).status, 401);
    assert.equal((await ask(api.port, 'GET', '/v1.0/metadata', { 'dapr-api-token': 's3cret' })).status, 200);
  });

  it('a client that stalls in its headers or its body gets 408 and its connection closed; others are served', { timeout: 20_000 }, async () => {
    const api = await startApi({ timeouts: { headersMs: 400, requestMs: 800, keepAliveMs: 5_000 } });
    const inHeaders = exchange(api.port, 'GET /v1.0/healthz HTTP/1.1\r\nhost: x\r\n', 8_000);
    const inBody = exchange(api.port, 'POST /v1.0/bindings/jobs HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"operation":', 8_000);
    assert.equal((await ask(api.port, 'GET', '/v1.0/healthz')).status, 204);
    for (const raw of await Promise.all([inHeaders, inBody])) {
      const a = parseAnswer(raw);
      assert.equal(a.status, 408, raw);
      assert.equal(JSON.parse(a.body).message, 'Client Timeout');
    }
  });

  it('a route that throws answers 500 ERR_INTERNAL with one log line, and the server serves on', { timeout: 10_000 }, async () => {
    let fail = true;
    const api = await startApi({
      metadata: () => {
        if (fail) throw new Error('metadata exploded');
        return { id: 'router-test' };
      },
    });
    assertDaprError(await ask(api.port, 'GET', '/v1.0/metadata'), 500, 'ERR_INTERNAL', /^internal error: metadata exploded$/);
    const lines = api.logs.filter((l) => l.includes('metadata exploded'));
    assert.equal(lines.length, 1, api.logs.join(''));
    assert.match(lines[0]!, /internal error on GET \/v1\.0\/metadata/);
    fail = false;
    assert.equal((await ask(api.port, 'GET', '/v1.0/metadata')).status, 200);
  });

  it('keep-alive: pipelined requests are answered in order on one connection; an idle one is closed at close()', { timeout: 10_000 }, async () => {
    // Keep-alive far past this test's timeout: only close() can end the connection in time.
    const api = await startApi({ timeouts: { headersMs: 10_000, requestMs: 20_000, keepAliveMs: 60_000 } });
    const socket = net.connect(api.port, '127.0.0.1');
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /v1.0/healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /v1.0/metadata HTTP/1.1\r\nhost: x\r\n\r\n');
    while (!out.includes('router-test')) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, /^HTTP\/1\.1 204 [^]*HTTP\/1\.1 200 /);
    assert.match(out, /connection: keep-alive/i);
    await api.server.close();
    open.splice(open.indexOf(api.server), 1);
    await closed;
  });
});
