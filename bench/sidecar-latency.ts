/**
 * What the sidecar adds to an output-binding call, and what one sidecar process weighs.
 *
 * 1. Latency: the same send (the seed's message, one at a time) straight to the embedded backend in this process,
 *    then through a `qscale sidecar` process over HTTP keep-alive. Added = through-sidecar minus direct, per
 *    percentile.
 * 2. RSS of a sidecar process: idle after start, and the peak under load (32 concurrent producers into its output
 *    binding while its input binding delivers to a small app with 16 handlers at once).
 *
 * Run: npm run build && node dist/bench/sidecar-latency.js [--calls 5000] [--no-write]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Pool } from 'undici';
import { EmbeddedBackend, parseEmbeddedComponent } from '../src/backends/embedded/index.js';
import type { ResolvedComponent } from '../src/backends/types.js';
import { ROOT, machineLine, percentile, writeSection } from './report.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const args = process.argv.slice(2);
const CALLS = Number(args[args.indexOf('--calls') + 1] ?? 5000) || 5000;
const WARMUP = 500;
const WRITE = !args.includes('--no-write');
const LOAD_MS = 5000;

const payload = (i: number): unknown => ({ text: 'Hello World', sentAt: new Date().toISOString(), i });

function component(queueName: string, extra: Record<string, string> = {}): ResolvedComponent {
  return {
    name: 'message-queue', type: 'bindings.qscale.embedded', version: 'v1', metadata: { queueName, ...extra },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
}

function yaml(queueName: string, extra: Record<string, string> = {}): string {
  const meta = Object.entries({ queueName, ...extra }).map(([k, v]) => `  - name: ${k}\n    value: "${v}"`).join('\n');
  return `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: message-queue\nspec:\n  type: bindings.qscale.embedded\n  version: v1\n  metadata:\n${meta}\n`;
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof a === 'object' && a ? a.port : 0;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startSidecarProcess(dir: string, dataDir: string, port: number, appPort?: number): Promise<ChildProcess> {
  const a = ['sidecar', '--app-id', 'bench', '--dapr-http-port', String(port), '--resources-path', dir, '--data-dir', dataDir];
  if (appPort !== undefined) a.push('--app-port', String(appPort));
  const child = spawn(process.execPath, [MAIN, ...a], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, QSCALE_LOG_LEVEL: 'warn' } });
  const pool = new Pool(`http://127.0.0.1:${port}`);
  const want = appPort === undefined ? '/v1.0/healthz/outbound' : '/v1.0/healthz';
  for (;;) {
    try {
      const r = await pool.request({ path: want, method: 'GET' });
      await r.body.dump();
      if (r.statusCode === 204) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await pool.close();
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const summary = (xs: number[]): { p50: number; p99: number } => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99) };
};

async function timeCalls(n: number, call: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await call(i);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-sidecar-'));
  const dataDir = path.join(dir, '.qscale');

  // 1a. Straight to the backend.
  const direct = new EmbeddedBackend(component('direct'), parseEmbeddedComponent(component('direct')), { logger: pino({ level: 'silent' }), dataDir });
  await direct.init();
  const send = (i: number): Promise<void> => direct.send(Buffer.from(JSON.stringify(payload(i))), {});
  await timeCalls(WARMUP, send);
  const directMs = await timeCalls(CALLS, send);
  await direct.close();

  // 1b. Through a sidecar process.
  writeFileSync(path.join(dir, 'q.yaml'), yaml('via-sidecar'));
  const port = await freePort();
  const sidecar = await startSidecarProcess(dir, dataDir, port);
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = rssMiB(sidecar.pid!);
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 });
  const post = async (i: number): Promise<void> => {
    const r = await pool.request({
      path: '/v1.0/bindings/message-queue', method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'create', data: payload(i) }),
    });
    await r.body.dump();
    if (r.statusCode !== 204) throw new Error(`sidecar answered ${r.statusCode}`);
  };
  await timeCalls(WARMUP, post);
  const viaMs = await timeCalls(CALLS, post);
  await stop(sidecar);

  // 2. Under load: producers into the output binding, the input binding delivering into an app.
  writeFileSync(path.join(dir, 'q.yaml'), yaml('load', { maxConcurrentHandlers: '16' }));
  let consumed = 0;
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') consumed++;
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appAddr = app.address();
  const appPort = typeof appAddr === 'object' && appAddr ? appAddr.port : 0;
  const loadPort = await freePort();
  const loaded = await startSidecarProcess(dir, dataDir, loadPort, appPort);
  const loadPool = new Pool(`http://127.0.0.1:${loadPort}`, { connections: 64 });
  let produced = 0;
  let peakRss = rssMiB(loaded.pid!);
  const until = Date.now() + LOAD_MS;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(loaded.pid!))), 100);
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (Date.now() < until) {
        const r = await loadPool.request({
          path: '/v1.0/bindings/message-queue', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ operation: 'create', data: payload(produced) }),
        });
        await r.body.dump();
        produced++;
      }
    }),
  );
  clearInterval(sampler);
  const consumedInWindow = consumed;
  await stop(loaded);
  await new Promise<void>((r) => app.close(() => r()));
  await Promise.all([pool.close(), loadPool.close()]);

  const d = summary(directMs);
  const v = summary(viaMs);
  const f = (x: number): string => `${x.toFixed(3)} ms`;
  const rows = [
    `| straight to the backend (in process) | ${f(d.p50)} | ${f(d.p99)} |`,
    `| through \`qscale sidecar\` (HTTP keep-alive) | ${f(v.p50)} | ${f(v.p99)} |`,
    `| **added by the sidecar** | **${f(v.p50 - d.p50)}** | **${f(v.p99 - d.p99)}** |`,
  ];
  const body = `\`node dist/bench/sidecar-latency.js\`: ${CALLS} output-binding calls one after the other (after ${WARMUP} warm-up
calls), the seed's message (\`{"text":"Hello World","sentAt":...,"i":n}\`) into the embedded queue (SQLite WAL). First
straight to the backend in the bench process, then as \`POST /v1.0/bindings/message-queue\` to a \`qscale sidecar\`
process over one keep-alive connection. Goal: at most 1 ms added at p50 (Dapr publishes ~1.06 ms median per call).

| path | p50 | p99 |
|---|---|---|
${rows.join('\n')}

RSS of one \`qscale sidecar\` process (from /proc/<pid>/status):

| state | RSS |
|---|---|
| idle (one binding loaded, 1 s after start) | ${idleRss.toFixed(1)} MiB |
| peak under load (${LOAD_MS / 1000} s: 32 concurrent producers, input binding into an app with 16 handlers) | ${peakRss.toFixed(1)} MiB |

Under that load the sidecar took ${Math.round(produced / (LOAD_MS / 1000))} sends/s and delivered ${Math.round(consumedInWindow / (LOAD_MS / 1000))} messages/s to the app
(producers and app in the bench process, one SQLite file, every process sharing the machine's CPUs; p99 figures move
with whatever else runs on the machine).

${machineLine()}`;
  process.stdout.write(`${body}\n`);
  if (WRITE) await writeSection('Sidecar', body);
}

await main();
