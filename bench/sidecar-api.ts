/**
 * The sidecar's own HTTP API, build against build: two qscale checkouts (each built, each with node_modules) run
 * the same `qscale sidecar` with one embedded binding, in interleaved pairs (the order flips every pair), and each
 * sidecar process is measured from /proc:
 * - start-up CPU: CPU seconds of the process when it prints that its HTTP API listens;
 * - idle memory: PSS and USS (smaps_rollup) 2 s after that;
 * - CPU per output-binding POST: the process's CPU over `--calls` POSTs (after a warm-up) at concurrency 1 and 16;
 * - CPU per GET /v1.0/healthz at concurrency 16: the HTTP server and router alone, without the queue's write.
 *
 * Run: npm run build && node dist/bench/sidecar-api.js --a <old checkout> --b <new checkout> [--pairs 3] [--calls 4000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Pool } from 'undici';
import { cpuSeconds, memoryOf } from './lib/proc.js';
import { machineLine } from './report.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const BUILDS = { a: path.resolve(arg('--a', '.')), b: path.resolve(arg('--b', '.')) };
const PAIRS = Number(arg('--pairs', '3'));
const CALLS = Number(arg('--calls', '4000'));
const WARMUP = 500;
const BODY = JSON.stringify({ operation: 'create', data: { text: 'Hello World', i: 1 } });

interface Run {
  startCpuMs: number;
  pss: number;
  uss: number;
  cpuUsPerPost: Record<number, number>;
  cpuUsPerHealthz: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sidecar(root: string, dir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'sidecar', '--app-id', 'bench', '--dapr-http-port', '0',
    '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--enable-metrics=false'], { env: { ...process.env, QSCALE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stderr! }).on('line', (l) => {
      const m = /HTTP API listening on [^\s"]*:(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`sidecar of ${root} exited (${code}) before listening`)));
  });
  return { child, port };
}

async function calls(port: number, concurrency: number, n: number, method: 'GET' | 'POST' = 'POST'): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const r = method === 'POST'
        ? await pool.request({ path: '/v1.0/bindings/jobs', method, body: BODY, headers: { 'content-type': 'application/json' } })
        : await pool.request({ path: '/v1.0/healthz', method });
      await r.body.dump();
      if (r.statusCode !== 204) throw new Error(`${method} answered ${r.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
}

async function measure(root: string): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-api-bench-'));
  writeFileSync(path.join(dir, 'q.yaml'), 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: jobs\nspec:\n  type: bindings.qscale.embedded\n  version: v1\n  metadata:\n  - name: queueName\n    value: jobs\n');
  const { child, port } = await sidecar(root, dir);
  const pid = child.pid!;
  try {
    const startCpuMs = cpuSeconds(pid) * 1000;
    await sleep(2000);
    const { pss, uss } = memoryOf(pid);
    const cpuUsPerPost: Record<number, number> = {};
    for (const c of [1, 16]) {
      await calls(port, c, WARMUP);
      const before = cpuSeconds(pid);
      await calls(port, c, CALLS);
      cpuUsPerPost[c] = ((cpuSeconds(pid) - before) * 1e6) / CALLS;
    }
    await calls(port, 16, WARMUP, 'GET');
    const before = cpuSeconds(pid);
    await calls(port, 16, CALLS, 'GET');
    const cpuUsPerHealthz = ((cpuSeconds(pid) - before) * 1e6) / CALLS;
    return { startCpuMs, pss, uss, cpuUsPerPost, cpuUsPerHealthz };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs: Record<'a' | 'b', Run[]> = { a: [], b: [] };
for (let p = 0; p < PAIRS; p++) {
  for (const k of (p % 2 === 0 ? ['a', 'b'] : ['b', 'a']) as Array<'a' | 'b'>) {
    const r = await measure(BUILDS[k]);
    runs[k].push(r);
    process.stdout.write(`pair ${p + 1} ${k}: start ${r.startCpuMs.toFixed(0)} ms CPU, PSS ${r.pss.toFixed(1)} MiB, USS ${r.uss.toFixed(1)} MiB, ` +
      `POST C=1 ${r.cpuUsPerPost[1]!.toFixed(1)} µs, C=16 ${r.cpuUsPerPost[16]!.toFixed(1)} µs, healthz C=16 ${r.cpuUsPerHealthz.toFixed(1)} µs CPU\n`);
  }
}
const median = (xs: number[]): number => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], d: number): string => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
const figures: Array<[string, (r: Run) => number, number]> = [
  ['start-up CPU to listening, ms', (r) => r.startCpuMs, 0], ['idle PSS, MiB', (r) => r.pss, 1], ['idle USS, MiB', (r) => r.uss, 1],
  ['CPU per POST at C=1, µs', (r) => r.cpuUsPerPost[1]!, 1], ['CPU per POST at C=16, µs', (r) => r.cpuUsPerPost[16]!, 1],
  ['CPU per GET /v1.0/healthz at C=16, µs', (r) => r.cpuUsPerHealthz, 1],
];
process.stdout.write(`\n${machineLine()}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${PAIRS} pairs, ${CALLS} POSTs per concurrency\n`);
process.stdout.write(`| figure | a: ${BUILDS.a} | b: ${BUILDS.b} | b / a |\n|---|---|---|---|\n`);
for (const [name, f, d] of figures) {
  const a = runs.a.map(f);
  const b = runs.b.map(f);
  process.stdout.write(`| ${name} | ${range(a, d)} | ${range(b, d)} | ${(median(b) / median(a)).toFixed(2)} |\n`);
}
