/**
 * End to end through two `qscale sidecar` processes on one broker, as the seed runs: a producer's sidecar takes
 * POST /v1.0/bindings/message-queue (32 in flight), a consumer's sidecar delivers each message to an app (POST
 * /message-queue, 16 at a time). Throughput = messages / (first send → last delivery). Used by bench/broker-*.ts;
 * kept under lib/ so `npm run bench` does not take it for a benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { ROOT } from '../report.js';
import { SIDECAR_NODE_FLAGS } from '../../src/supervisor/node-flags.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof a === 'object' && a ? a.port : 0;
}

/**
 * A `qscale sidecar` process on `dir`'s components, awaited until healthy; `nodeArgs` go before the script
 * (--cpu-prof), `args` after the sidecar's own flags.
 */
export async function startSidecar(dir: string, port: number, appId: string, appPort?: number, extra: { nodeArgs?: string[]; args?: string[]; main?: string } = {}): Promise<ChildProcess> {
  const a = ['sidecar', '--app-id', appId, '--dapr-http-port', String(port), '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')];
  if (appPort !== undefined) a.push('--app-port', String(appPort));
  a.push(...(extra.args ?? []));
  const child = spawn(process.execPath, [...SIDECAR_NODE_FLAGS, ...(extra.nodeArgs ?? []), extra.main ?? MAIN, ...a], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, QSCALE_LOG_LEVEL: 'warn' } });
  const pool = new Pool(`http://127.0.0.1:${port}`);
  const want = appPort === undefined ? '/v1.0/healthz/outbound' : '/v1.0/healthz';
  for (let i = 0; i < 400; i++) {
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

export async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** componentYaml: a Component named message-queue (with maxConcurrentHandlers 16 for the consumer's side). */
export async function endToEnd(componentYaml: string, n: number): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-e2e-'));
  writeFileSync(path.join(dir, 'binding.yaml'), componentYaml);
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = req.method === 'POST' || req.method === 'OPTIONS' ? 200 : 404;
      res.end();
      if (req.method === 'POST' && ++got === n) done();
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as { port: number }).port;
  const producerPort = await freePort();
  const consumerPort = await freePort();
  const producer = await startSidecar(dir, producerPort, 'producer');
  const consumer = await startSidecar(dir, consumerPort, 'consumer', appPort);
  const pool = new Pool(`http://127.0.0.1:${producerPort}`, { connections: 32 });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < n) {
      const i = next++;
      const r = await pool.request({
        path: '/v1.0/bindings/message-queue', method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ operation: 'create', data: { text: 'Hello World', sentAt: new Date().toISOString(), i } }),
      });
      await r.body.dump();
      if (r.statusCode !== 204) throw new Error(`producer sidecar answered ${r.statusCode}`);
    }
  }));
  await all;
  const perS = n / ((performance.now() - t0) / 1000);
  await pool.close();
  await stop(consumer);
  await stop(producer);
  await new Promise<void>((r) => app.close(() => r()));
  return perS;
}
