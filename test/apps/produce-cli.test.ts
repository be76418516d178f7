/**
 * `qscale produce` against a producer app running in this process (its sidecar a recording stand-in).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig } from '../../apps/producer/config.js';
import { produceInChunks, chunkSize } from '../../src/cli/produce/client.js';
import { resolveProducerUrl, DEFAULT_PRODUCER_URL } from '../../src/cli/produce/target.js';
import { lineProgress } from '../../src/cli/produce/run.js';
import { QscaleError } from '../../src/errors.js';
import { CLI_ERRORS } from '../../src/cli/codes.js';
import { startFakeSidecar, quietLogger, closedPort, type FakeAnswer, type FakeSidecar } from './support.js';

async function withLiveProducer(answer: ((i: number) => FakeAnswer) | undefined, fn: (url: string, fake: FakeSidecar) => Promise<void>): Promise<void> {
  const fake = await startFakeSidecar(answer);
  const app: FastifyInstance = await buildProducer({ config: { ...readProducerConfig({}), sidecarUrl: fake.url, port: 0 }, logger: quietLogger(), connectWaitMs: 0 });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    await fn(url, fake);
  } finally {
    await app.close();
    await fake.close();
  }
}

test('produce - a large count goes in chunks, progress rises to the total, every message is stored', { timeout: 120_000 }, async () => {
  await withLiveProducer(undefined, async (url, fake) => {
    const progress: number[] = [];
    const r = await produceInChunks({ url, source: '--url', count: 2500, intervalMs: 0, onProgress: (sent, total) => { assert.equal(total, 2500); progress.push(sent); } });
    assert.equal(r.sent, 2500);
    assert.equal(r.requests, 3);
    assert.deepEqual(progress, [0, 1000, 2000, 2500]);
    assert.equal(fake.requests.length, 2500);
    assert.ok(fake.requests.every((q) => q.body === '{"data":{"text":"Hello World"},"operation":"create"}'));
  });
});

test('produce - with an interval the messages still go one at a time across chunks', { timeout: 120_000 }, async () => {
  await withLiveProducer(() => ({ status: 204 }), async (url, fake) => {
    const progress: number[] = [];
    const r = await produceInChunks({ url, source: '--url', count: 7, intervalMs: 5, chunk: 3, onProgress: (s) => progress.push(s) });
    assert.equal(r.sent, 7);
    assert.deepEqual(progress, [0, 3, 6, 7]);
    assert.equal(fake.maxInFlight, 1);
  });
});

test('produce - chunk size gives about a second of work per request', { timeout: 120_000 }, () => {
  assert.equal(chunkSize(50, 0), 50);
  assert.equal(chunkSize(100_000, 0), 1000);
  assert.equal(chunkSize(100, 100), 10);
  assert.equal(chunkSize(100, 5000), 1);
});

test('produce - progress lines appear once per tenth, for logs that are not a terminal', { timeout: 120_000 }, () => {
  const lines: string[] = [];
  const p = lineProgress((l) => lines.push(l));
  for (let s = 0; s <= 1000; s += 50) p.update(s, 1000);
  assert.equal(lines.length, 10);
  assert.equal(lines[0], 'sent 100/1000 (10%)');
  assert.equal(lines.at(-1), 'sent 1000/1000 (100%)');
});

test('produce - a producer that cannot be reached is named, with where its URL came from', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  await assert.rejects(
    produceInChunks({ url, source: '.qscale/supervisor.json', count: 5, intervalMs: 0 }),
    (err: unknown) => {
      assert.ok(err instanceof QscaleError);
      assert.equal(err.code, 'ERR_PRODUCER_UNREACHABLE');
      assert.ok(err.message.includes(url), err.message);
      assert.match(err.message, /ECONNREFUSED/);
      assert.match(err.message, /supervisor\.json/);
      return true;
    },
  );
});

test("produce - a sidecar failure mid-run shows the producer's 500 body and how many were sent in all", { timeout: 120_000 }, async () => {
  const daprError = '{"errorCode":"ERR_INVOKE_OUTPUT_BINDING","message":"error invoking output binding message-queue: broker down"}';
  await withLiveProducer((i) => (i < 1500 ? { status: 204 } : { status: 500, body: daprError }), async (url) => {
    const progress: number[] = [];
    await assert.rejects(
      produceInChunks({ url, source: '--url', count: 3000, intervalMs: 0, onProgress: (s) => progress.push(s) }),
      (err: unknown) => {
        assert.ok(err instanceof QscaleError);
        assert.equal(err.code, 'ERR_PRODUCER_FAILED');
        assert.match(err.message, /answered 500/);
        assert.match(err.message, /broker down/, 'the sidecar error text reaches the user');
        const all = /\[(\d+) of 3000 messages sent in all\]/.exec(err.message);
        assert.ok(all, err.message);
        assert.ok(Number(all[1]) >= 1000 && Number(all[1]) <= 1500, `counts the first chunk and the stored part of the second: ${all[1]}`);
        return true;
      },
    );
    assert.deepEqual(progress, [0, 1000]);
  });
});

test('produce - a 4xx from the producer is shown with its body', { timeout: 120_000 }, async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    res.statusCode = 400;
    res.setHeader('content-type', 'application/json');
    res.end('{"errorCode":"ERR_BAD_REQUEST","message":"count must be at most 100000, got 200000","field":"count"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await assert.rejects(produceInChunks({ url, source: '--url', count: 5, intervalMs: 0 }), (err: unknown) => {
      assert.ok(err instanceof QscaleError);
      assert.equal(err.code, 'ERR_PRODUCER_REFUSED');
      assert.match(err.message, /answered 400: count must be at most 100000, got 200000/);
      return true;
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('produce - the URL comes from --url, then QSCALE_PRODUCER_URL, then the running supervisor, then the default', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-produce-'));
  assert.deepEqual(await resolveProducerUrl({ dataDir: dir, env: {} }), { url: DEFAULT_PRODUCER_URL, source: 'the default' });
  writeFileSync(path.join(dir, 'supervisor.json'), JSON.stringify({ pid: 1, controlUrl: 'http://127.0.0.1:1', producerUrl: 'http://127.0.0.1:5123', startedAt: 0, folder: '.' }));
  assert.equal((await resolveProducerUrl({ dataDir: dir, env: {} })).url, 'http://127.0.0.1:5123');
  assert.equal((await resolveProducerUrl({ dataDir: dir, env: { QSCALE_PRODUCER_URL: 'http://127.0.0.1:6001/' } })).url, 'http://127.0.0.1:6001');
  assert.equal((await resolveProducerUrl({ url: 'http://127.0.0.1:7001', dataDir: dir, env: { QSCALE_PRODUCER_URL: 'http://x:1' } })).url, 'http://127.0.0.1:7001');
  await assert.rejects(resolveProducerUrl({ url: 'localhost:5000', dataDir: dir, env: {} }), /must start with http/);
  await assert.rejects(resolveProducerUrl({ url: 'not a url', dataDir: dir, env: {} }), /is not a URL/);
});

const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/cli/main.js');

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'produce', ...args], { env: { ...process.env, QSCALE_PRODUCER_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('produce - the command prints progress lines on a pipe and a summary, exit 0', { timeout: 120_000 }, async () => {
  await withLiveProducer(undefined, async (url, fake) => {
    const r = await runCli(['--count', '3000', '--interval', '0', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^sent 3000 messages through ${url} in [\\d.]+ s`));
    assert.deepEqual(r.stderr.trim().split('\n'), ['sent 1000/3000 (33%)', 'sent 2000/3000 (66%)', 'sent 3000/3000 (100%)']);
    assert.equal(fake.requests.length, 3000);
  });
});

test('produce - the command finds the producer of the running system through its data folder', { timeout: 120_000 }, async () => {
  await withLiveProducer(undefined, async (url, fake) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-produce-'));
    writeFileSync(path.join(dir, 'supervisor.json'), JSON.stringify({ pid: 1, controlUrl: 'http://127.0.0.1:1', producerUrl: url, startedAt: 0, folder: '.' }));
    const r = await runCli(['-n', '2', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fake.requests.length, 2);
  });
});

test('produce - the command fails with one clear line and the catalog\'s exit status on bad flags or an unreachable producer', { timeout: 120_000 }, async () => {
  const flagCases: Array<[string[], string]> = [
    [['--count', 'ten'], "qscale: --count must be a whole number from 1 to 9007199254740991, got 'ten'"],
    [['--count', '1', '--interval', '-5'], "qscale: --interval must be a whole number from 0 to 3600000, got '-5'"],
    [['--cout', '3'], "qscale: unknown option '--cout' (Did you mean --count?)"],
    [['--count'], "qscale: option '-n, --count <n>' argument missing"],
    [['--count', '1', '--url', 'not a url'], "qscale: producer URL 'not a url' (from --url) is not a URL: expected e.g. http://127.0.0.1:5000"],
  ];
  for (const [args, line] of flagCases) {
    const bad = await runCli(args);
    assert.equal(bad.code, CLI_ERRORS.ERR_FLAG.exit, args.join(' '));
    assert.equal(bad.stderr, `${line}\n`, 'exactly one line, naming the flag');
    assert.equal(bad.stdout, '');
  }
  const port = await closedPort();
  const gone = await runCli(['--count', '1', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(gone.code, CLI_ERRORS.ERR_PRODUCER_UNREACHABLE.exit);
  assert.match(gone.stderr, new RegExp(`^qscale: cannot reach the producer at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED, URL from --url\\)`));
  assert.ok(!/\n\s+at /.test(gone.stderr), 'no stack trace for an expected failure');
});
