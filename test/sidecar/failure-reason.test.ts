/**
 * A delivery the app refuses carries the app's answer as its failure reason: the status and the first bytes of the
 * body, escaped and cut, kept with the dead letter. The sidecar never holds more of an answer than those bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readDeadLetters } from '../../src/backends/embedded/index.js';
import { REASON_BODY_BYTES, refusalReason } from '../../src/sidecar/app-channel.js';
import { call, componentYaml, sidecarFor, tempDir, waitFor, writeComponents } from './support.js';

const send = (port: number, name: string, data: unknown) =>
  call(port, 'POST', `/v1.0/bindings/${name}`, JSON.stringify({ operation: 'create', data }));

describe('sidecar failure reason - the refusal read as text', { timeout: 30_000 }, () => {
  it('reason - status and body start; an empty body leaves the status alone', { timeout: 5000 }, () => {
    assert.equal(refusalReason({ status: 500, head: Buffer.from('{"error":"bad order"}\n'), total: 22 }), 'app answered 500: {"error":"bad order"}');
    assert.equal(refusalReason({ status: 503, head: Buffer.alloc(0), total: 0 }), 'app answered 503');
    assert.equal(refusalReason({ status: 404, head: Buffer.from('  \r\n'), total: 4 }), 'app answered 404');
  });

  it('reason - control characters are escaped, so the reason stays one line', { timeout: 5000 }, () => {
    const r = refusalReason({ status: 500, head: Buffer.from("line 1\nline 2\r\n\ttab \x1b[31mred\x00"), total: 29 });
    assert.equal(r, 'app answered 500: line 1\\nline 2\\r\\n\\ttab \\x1b[31mred\\x00');
    assert.doesNotMatch(r, /[\x00-\x1f]/);
  });

  it('reason - a long answer is cut at REASON_BODY_BYTES, marked, and never splits a character', { timeout: 5000 }, () => {
    const body = Buffer.from('é'.repeat(150)); // 300 bytes, 2 each
    const r = refusalReason({ status: 500, head: body.subarray(0, REASON_BODY_BYTES), total: body.length });
    assert.equal(r, `app answered 500: ${'é'.repeat(100)}… (the first 200 of 300 bytes)`);
    const odd = Buffer.concat([Buffer.from('x'), body]).subarray(0, REASON_BODY_BYTES); // ends in half an é
    const r2 = refusalReason({ status: 500, head: odd, total: undefined });
    assert.equal(r2, `app answered 500: x${'é'.repeat(99)}… (the first 199 bytes of a longer answer)`);
    assert.doesNotMatch(r2, /\uFFFD/, 'no replacement character for the cut one');
  });

  it('reason - bytes that are not UTF-8 show as replacement characters, not as raw bytes', { timeout: 5000 }, () => {
    assert.equal(refusalReason({ status: 500, head: Buffer.from([0x6f, 0x6b, 0xff, 0xfe]), total: 4 }), 'app answered 500: ok\uFFFD\uFFFD');
  });
});

interface BodyApp {
  port: number;
  posts: number;
  close(): Promise<void>;
}

/** An app that answers every POST with `answer()` (status and body; a body may be streamed). */
async function bodyApp(answer: (n: number, res: http.ServerResponse) => void): Promise<BodyApp> {
  const app: BodyApp = { port: 0, posts: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.statusCode = 200;
        res.end();
        return;
      }
      app.posts++;
      answer(app.posts, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  app.port = typeof addr === 'object' && addr ? addr.port : 0;
  app.close = () => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return app;
}

describe('sidecar failure reason - kept with the dead letter', { timeout: 120_000 }, () => {
  it('dead letter - a 500 with a JSON body is dead-lettered with "app answered 500: {...}"', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('orders', { queueName: 'reason-json', maxDeliveryCount: '2', retryBackoff: '0s' }) });
    const app = await bodyApp((_n, res) => {
      res.statusCode = 500;
      res.setHeader('content-type', 'application/json');
      res.end('{"error":"bad order"}\n');
    });
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      assert.equal((await send(sc.port, 'orders', { order: 7 })).status, 204);
      const [dead] = await waitFor('the dead letter', () => {
        const d = readDeadLetters(dataDir, 'reason-json', 10);
        return d.length > 0 && d;
      }, 30_000);
      assert.equal(dead?.data.toString(), '{"order":7}');
      assert.match(dead?.reason ?? '', /app answered 500: \{"error":"bad order"\}$/);
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('dead letter - an endless answer is cut: the reason keeps its start, and the sidecar goes on delivering', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('orders', { queueName: 'reason-endless', maxDeliveryCount: '1', retryBackoff: '0s' }) });
    const chunk = Buffer.alloc(16 * 1024, 'A');
    const streams: http.ServerResponse[] = [];
    const app = await bodyApp((n, res) => {
      if (n > 1) {
        res.statusCode = 200;
        res.end();
        return;
      }
      // No content-length, no end: the answer only stops when the sidecar hangs up.
      res.statusCode = 502;
      streams.push(res);
      const write = (): void => {
        if (res.destroyed) return;
        if (res.write(chunk)) setImmediate(write);
        else res.once('drain', write);
      };
      write();
    });
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'orders', 'first');
      const [dead] = await waitFor('the dead letter', () => {
        const d = readDeadLetters(dataDir, 'reason-endless', 10);
        return d.length > 0 && d;
      }, 30_000);
      assert.match(dead?.reason ?? '', /app answered 502: A{200}… \(the first 200 bytes of a longer answer\)$/);
      await send(sc.port, 'orders', 'second');
      await waitFor('the next delivery', () => app.posts >= 2, 30_000);
    } finally {
      for (const s of streams) s.destroy();
      await sc.close();
      await app.close();
    }
  });
});
