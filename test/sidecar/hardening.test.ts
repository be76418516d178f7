import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { assertMalformed, call, componentYaml, drainQueue, sidecarFor, tempDir, writeComponents } from './support.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';

const json = (text: string): Buffer => Buffer.from(text);
const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('sidecar hardening - request bodies that are not JSON it can read', { timeout: 120_000 }, () => {
  const dir = tempDir();
  const dataDir = path.join(dir, '.qscale');
  let sc: SidecarHandle;
  before(async () => {
    writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', { queueName: 'deep' }) });
    sc = await sidecarFor(dir);
  }, { timeout: 60_000 });
  after(async () => {
    await sc.close();
  }, { timeout: 60_000 });
  const post = (body: Buffer) => call(sc.port, 'POST', '/v1.0/bindings/message-queue', body, { 'content-type': 'application/json' });

  // daprd decodes with Go's encoding/json: nesting past 10,000 levels is "exceeded max depth", a 400.
  const refused: Array<[string, Buffer, RegExp]> = [
    ['100,000 nested arrays', json('['.repeat(100_000) + ']'.repeat(100_000)), /exceeded max depth/],
    ['100,000 nested objects', json('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)), /exceeded max depth/],
    ['data 100,000 arrays deep', json(`{"operation":"create","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), /exceeded max depth/],
    ['10,001 levels, one past the limit', json(`{"operation":"create","data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`), /exceeded max depth: JSON nested deeper than 10000 levels/],
    ['100,000 unclosed arrays', json('['.repeat(100_000)), /exceeded max depth/],
    ['truncated JSON', json('{"operation":"create","data":{"text":"Hello Wor'), /^failed deserializing HTTP body: /],
    ['bytes that are not UTF-8 outside a string', bytes('{"operation":"create","data":', [0xc3, 0x28], '}'), /^failed deserializing HTTP body: /],
    ['a lone continuation byte as the body', bytes([0x80]), /^failed deserializing HTTP body: /],
  ];
  for (const [what, body, message] of refused) {
    it(`json - ${what}: 400 ERR_MALFORMED_REQUEST, nothing stored, and the sidecar keeps serving`, async () => {
      assertMalformed(await post(body), message);
      assert.equal((await post(json('{"operation":"create","data":"after"}'))).status, 204);
      const stored = await drainQueue(dataDir, 'deep', 10);
      assert.deepEqual(stored.map((m) => m.data.toString()), ['"after"']);
    });
  }

  it('json - data 9,999 levels deep (10,000 with the body) is taken, as daprd takes it, and stored as sent', async () => {
    const data = '['.repeat(9_999) + ']'.repeat(9_999);
    const r = await post(json(`{"operation":"create","data":${data}}`));
    assert.equal(r.status, 204, r.text.slice(0, 300));
    const [m] = await drainQueue(dataDir, 'deep', 1);
    assert.equal(m?.data.toString(), data);
  });

  it('json - deep objects are stored with their keys and values, compacted', async () => {
    const levels = 6_000;
    const sent = '{ "k" : '.repeat(levels) + '[1, "x", null, true]' + ' }'.repeat(levels);
    const r = await post(json(`{"operation":"create","data":${sent}}`));
    assert.equal(r.status, 204, r.text.slice(0, 300));
    const [m] = await drainQueue(dataDir, 'deep', 1);
    assert.equal(m?.data.toString(), '{"k":'.repeat(levels) + '[1,"x",null,true]' + '}'.repeat(levels));
  });

  it('json - brackets inside strings are text, not nesting, escaped quotes and all', async () => {
    const text = `a \\" ${'['.repeat(20_000)} \\\\" ${'{'.repeat(20_000)}`;
    const r = await post(json(JSON.stringify({ operation: 'create', data: { text } })));
    assert.equal(r.status, 204, r.text.slice(0, 300));
    const [m] = await drainQueue(dataDir, 'deep', 1);
    assert.equal(m?.data.toString(), JSON.stringify({ text }));
  });

  it('json - bytes that are not UTF-8 inside a string become U+FFFD, as Go decodes them', async () => {
    const r = await post(bytes('{"operation":"create","data":{"text":"a', [0xff], 'b"}}'));
    assert.equal(r.status, 204, r.text);
    const [m] = await drainQueue(dataDir, 'deep', 1);
    assert.equal(m?.data.toString(), '{"text":"a\ufffdb"}');
  });
});

/** A raw connection that sends `first` and then nothing: resolves when the sidecar closes it, with what it answered. */
function stallingClient(port: number, first: string): { closed: Promise<string>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  socket.on('error', () => undefined);
  socket.write(first);
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(answer))) };
}

describe('sidecar hardening - slow clients', { timeout: 120_000 }, () => {
  const dir = tempDir();
  let defaults: SidecarHandle;
  let short: SidecarHandle;
  const sockets: net.Socket[] = [];
  before(async () => {
    writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', { queueName: 'slow' }) });
    defaults = await sidecarFor(dir);
    short = await sidecarFor(dir, { httpTimeouts: { headersMs: 1000, requestMs: 2000 } });
  }, { timeout: 60_000 });
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([defaults.close(), short.close()]);
  }, { timeout: 60_000 });

  // Node's own default would wait 60 s or more: this test's timeout is below that, so only the sidecar's
  // header timeout (10 s) can pass it.
  it('timeouts - a client that sends half its headers and stalls is disconnected; others are served meanwhile', { timeout: 45_000 }, async () => {
    const stalled = stallingClient(defaults.port, 'POST /v1.0/bindings/message-queue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
    sockets.push(stalled.socket);
    const idle = stallingClient(defaults.port, '');
    sockets.push(idle.socket);
    const ok = await call(defaults.port, 'POST', '/v1.0/bindings/message-queue', '{"operation":"create","data":1}');
    assert.equal(ok.status, 204);
    assert.equal((await call(defaults.port, 'GET', '/v1.0/healthz/outbound')).status, 204);
    assert.match(await stalled.closed, /^(HTTP\/1\.1 408 |$)/);
    await idle.closed;
    assert.equal((await call(defaults.port, 'GET', '/v1.0/metadata')).status, 200);
  });

  it('timeouts - a client that sends its headers and part of its body, then stalls, is disconnected; others are served', async () => {
    const stalled = stallingClient(
      short.port,
      'POST /v1.0/bindings/message-queue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"operation":',
    );
    sockets.push(stalled.socket);
    const ok = await call(short.port, 'POST', '/v1.0/bindings/message-queue', '{"operation":"create","data":2}');
    assert.equal(ok.status, 204);
    assert.match(await stalled.closed, /^(HTTP\/1\.1 408 |$)/);
    assert.equal((await call(short.port, 'GET', '/v1.0/metadata')).status, 200);
  });

  it('timeouts - a body that arrives in parts within the request timeout is taken', async () => {
    const socket = net.connect(short.port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const body = '{"operation":"create","data":3}';
    socket.write(`POST /v1.0/bindings/message-queue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.write(body.slice(0, 10));
    await new Promise((r) => setTimeout(r, 300));
    socket.end(body.slice(10));
    await new Promise((resolve) => socket.once('close', resolve));
    assert.match(answer, /^HTTP\/1\.1 204 /);
  });
});
