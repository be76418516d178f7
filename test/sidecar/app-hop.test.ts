/**
 * The sidecar's hop to the app (AppChannel on its own HTTP/1.1 client): deliveries reach apps however they frame
 * their answers (content-length, chunked, read to the close, after an interim 1xx), keep-alive connections are
 * reused (one per call in flight), an app closing an idle connection fails no delivery, and what cannot be
 * delivered fails with the reason daprd would give. The apps are raw TCP servers so each answer is exactly the
 * bytes a test means.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { AppChannel } from '../../src/sidecar/app-channel.js';

/** A TCP app: `answer` gets each request's head and body and writes the answer itself. */
interface RawApp {
  port: number;
  connections: number;
  /** Connections open now. */
  open(): number;
  requests: Array<{ head: string; body: Buffer }>;
  close(): Promise<void>;
}

async function rawApp(answer: (s: net.Socket, head: string, body: Buffer, n: number) => void): Promise<RawApp> {
  const sockets = new Set<net.Socket>();
  const app: RawApp = { port: 0, connections: 0, open: () => sockets.size, requests: [], close: async () => undefined };
  const server = net.createServer((s) => {
    app.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        app.requests.push({ head, body });
        answer(s, head, body, app.requests.length);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  app.port = (server.address() as net.AddressInfo).port;
  app.close = () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
  return app;
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
const data = Buffer.from('{"order":1}');

describe('sidecar app hop - deliveries over qscale\'s keep-alive client', { timeout: 60_000 }, () => {
  it('answers framed every way an app frames them are read: length, chunked, to the close, after 100/103', { timeout: 10_000 }, async () => {
    const answers = [
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: t\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
      'HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbad \r\n5\r\norder\r\n0\r\n\r\n',
      'HTTP/1.0 503 Service Unavailable\r\n\r\nbusy, no length',
    ];
    const app = await rawApp((s, _h, _b, n) => {
      const a = answers[n - 1]!;
      // Each answer in pieces, split inside its head and body, as a slow app's would come.
      const bytes = Buffer.from(a, 'latin1');
      s.write(bytes.subarray(0, 7));
      setTimeout(() => {
        s.write(bytes.subarray(7));
        if (a.startsWith('HTTP/1.0')) s.end();
      }, 5);
    });
    const ch = new AppChannel('127.0.0.1', app.port, undefined, 1);
    try {
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: true });
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: true });
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: true });
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: false, reason: 'app answered 500: bad order' });
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: false, reason: 'app answered 503: busy, no length' });
      assert.equal(app.connections, 1, 'the first four answers left the connection open for the next delivery');
      assert.deepEqual(app.requests.map((r) => r.body.toString()), Array(5).fill('{"order":1}'));
    } finally {
      await ch.destroy();
      await app.close();
    }
  });

  it('one connection per delivery in flight, reused; headers as daprd sends them, UTF-8 values as their bytes', { timeout: 10_000 }, async () => {
    const app = await rawApp((s) => setTimeout(() => s.write(OK), 2));
    const ch = new AppChannel('127.0.0.1', app.port, 'secret-token', 4);
    try {
      const outs = await Promise.all(Array.from({ length: 40 }, (_, i) => ch.deliver('/orders', data, { 'X-Order': String(i), city: 'Zürich' })));
      assert.ok(outs.every((o) => o.ok), JSON.stringify(outs));
      assert.ok(app.connections <= 4, `${app.connections} connections for 4 in flight`);
      const { head } = app.requests[0]!;
      assert.match(head, /^POST \/orders HTTP\/1\.1\r\n/);
      assert.match(head, new RegExp(`\r\nhost: 127\\.0\\.0\\.1:${app.port}\r\n`));
      assert.match(head, /\r\ncontent-type: application\/json\r\n/);
      assert.match(head, /\r\ndapr-api-token: secret-token\r\n/);
      assert.match(head, /\r\ncontent-length: 11\r\n/);
      assert.match(head, /\r\nx-order: \d+\r\n/);
      const city = /\r\ncity: ([^\r]*)/.exec(head)![1]!;
      assert.equal(Buffer.from(city, 'latin1').toString('utf8'), 'Zürich');
    } finally {
      await ch.destroy();
      await app.close();
    }
  });

  it('an app that closes or resets an idle connection fails no delivery', { timeout: 10_000 }, async () => {
    // Each connection answers one request, then drops the next one sent on it without a byte: the race of an app
    // closing an idle keep-alive connection as a delivery goes out on it.
    const served = new WeakSet<net.Socket>();
    const app = await rawApp((s) => {
      if (served.has(s)) {
        s.resetAndDestroy();
        return;
      }
      served.add(s);
      s.write(OK);
    });
    const ch = new AppChannel('127.0.0.1', app.port, undefined, 1);
    try {
      for (let i = 0; i < 5; i++) assert.deepEqual(await ch.deliver('/q', data, {}), { ok: true });
    } finally {
      await ch.destroy();
      await app.close();
    }
    // And node's own server closing idle connections after its keep-alive timeout.
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    server.keepAliveTimeout = 1;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const ch2 = new AppChannel('127.0.0.1', (server.address() as net.AddressInfo).port, undefined, 2);
    try {
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await ch2.deliver('/q', data, {}), { ok: true });
        await new Promise((r) => setTimeout(r, 5 * i));
      }
    } finally {
      await ch2.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('an app that cannot be reached, resets a fresh connection or breaks off its answer fails the delivery with the cause', { timeout: 10_000 }, async () => {
    const closed = await rawApp(() => undefined);
    const port = closed.port;
    await closed.close();
    const none = new AppChannel('127.0.0.1', port, undefined, 1);
    const refused = await none.deliver('/q', data, {});
    assert.equal(refused.ok, false);
    assert.match((refused as { reason: string }).reason, new RegExp(`^app call failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));

    const app = await rawApp((s, _h, _b, n) => {
      if (n === 1) s.resetAndDestroy();
      else if (n === 2) s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhal');
      else s.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 10\r\n\r\nhal');
    });
    const ch = new AppChannel('127.0.0.1', app.port, undefined, 1);
    try {
      const reset = await ch.deliver('/q', data, {});
      assert.equal(reset.ok, false);
      assert.match((reset as { reason: string }).reason, /^app call failed: (read ECONNRESET|socket hang up)$/);
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: false, reason: 'app call failed: aborted' });
      assert.deepEqual(await ch.deliver('/q', data, {}), { ok: false, reason: 'app answered 502: hal' }, 'a refusal broken off still says what the app refused with');
    } finally {
      await ch.destroy();
      await app.close();
    }
  });

  it('probe: a silent app times out; close() lets a running delivery finish, then closes its connection; destroy() aborts', { timeout: 10_000 }, async () => {
    let release: (() => void) | undefined;
    const app = await rawApp((s, head) => {
      if (head.startsWith('OPTIONS')) return; // never answers
      release = () => s.write(OK);
    });
    const ch = new AppChannel('127.0.0.1', app.port, undefined, 2, 200);
    try {
      assert.deepEqual(await ch.probe('/q'), { subscribed: false, reason: 'OPTIONS /q failed: no answer within 200 ms' });
      const running = ch.deliver('/q', data, {});
      while (!release) await new Promise((r) => setTimeout(r, 5));
      await ch.close();
      release();
      assert.deepEqual(await running, { ok: true });
      // Its connection is not kept for a next delivery once the channel closes.
      while (app.open() > 0) await new Promise((r) => setTimeout(r, 5));
      release = undefined;
      const after = ch.deliver('/q', data, {});
      while (!release) await new Promise((r) => setTimeout(r, 5));
      assert.match(app.requests.at(-1)!.head, /\r\nconnection: close(\r\n|$)/);
      await ch.destroy();
      const out = await after;
      assert.equal(out.ok, false);
      assert.match((out as { reason: string }).reason, /^app call failed: /);
    } finally {
      await ch.destroy();
      await app.close();
    }
  });

  it('exchange: the status and the first bytes of the answer; metadata that cannot be a header fails the delivery', { timeout: 10_000 }, async () => {
    const app = await rawApp((s) => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\n{"stat\r\n9\r\nus":"OK"}\r\n0\r\n\r\n'));
    const ch = new AppChannel('127.0.0.1', app.port, 't', undefined);
    try {
      const a = await ch.exchange({ method: 'POST', path: '/sub', headers: { 'content-type': 'application/cloudevents+json' }, body: data, keepBytes: 10, limited: true });
      assert.deepEqual({ status: a.statusCode, body: a.body.toString() }, { status: 200, body: '{"status":' });
      assert.match(app.requests[0]!.head, /\r\ndapr-api-token: t\r\n/);
      const bad = await ch.deliver('/q', data, { 'x-bad': 'a\nb' });
      assert.equal(bad.ok, false);
      assert.match((bad as { reason: string }).reason, /^metadata 'x-bad' has a control character/);
      assert.equal(app.requests.length, 1, 'nothing sent for it');
    } finally {
      await ch.destroy();
      await app.close();
    }
  });
});
