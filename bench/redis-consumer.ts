/**
 * The consumer path of bindings.qscale.redis alone: receive + ack of N messages already in the stream, CPU per
 * message of the receiving process (process.cpuUsage) and of a private redis-server (/proc/<pid>/stat), at
 * concurrency 1 and 16, with a handler that answers at once and one that answers in a setImmediate.
 *
 * Every run is a child process of its own (a fresh heap and JIT each time). With --impl DIR (a built dist of another
 * revision, e.g. of main; may be given more than once) the runs alternate between those builds and this one, the
 * order reversed every other round (A, B, B, A, …), so all see the same machine: paired A/B, medians reported.
 *
 * Run: npm run build && node dist/bench/redis-consumer.js [N] [--rounds 5] [--impl /path/to/other/dist]...
 * [--read-ahead 0,4,16]: this build once per readAheadCount given, alternating like the builds (to choose its default).
 * One run, e.g. under --cpu-prof: node --cpu-prof dist/bench/redis-consumer.js --child DIST PORT C HANDLER N
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pino from 'pino';
import type { BackendDefinition } from '../src/backends/types.js';
import { freePort } from './lib/broker-e2e.js';
import { cpuSeconds } from './lib/proc.js';

const SELF = fileURLToPath(import.meta.url);
const THIS_DIST = path.resolve(path.dirname(SELF), '..');
const args = process.argv.slice(2);

type HandlerKind = 'now' | 'setImmediate';
interface Done { kind: 'done'; cpuUs: number; wallMs: number }

// ------------------------------------------------------------------------------------------------------------ child

async function child(dist: string, port: number, concurrency: number, handlerKind: HandlerKind, n: number): Promise<void> {
  const readAhead = process.env.QSCALE_BENCH_READ_AHEAD;
  const mod = (await import(pathToFileURL(path.join(dist, 'src/backends/redis/index.js')).href)) as { redisBackend: BackendDefinition };
  const q = `bench-consumer-${process.pid}`;
  const raw = new Redis({ host: '127.0.0.1', port, protocol: 2 });
  const body = Buffer.from(JSON.stringify({ text: 'Hello World', sentAt: new Date().toISOString(), i: 0 }));
  const meta = JSON.stringify({ 'content-type': 'application/json', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  for (let i = 0; i < n; i += 1000) {
    const p = raw.pipeline();
    for (let j = i; j < Math.min(n, i + 1000); j++) p.xadd(q, '*', 'data', body, 'meta', meta);
    await p.exec();
  }
  const b = mod.redisBackend.create({
    name: 'message-queue', type: 'bindings.qscale.redis', version: 'v1',
    metadata: { redisHost: `127.0.0.1:${port}`, queueName: q, ...(readAhead === undefined ? {} : { readAheadCount: readAhead }) },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  }, { logger: pino({ level: 'silent' }), dataDir: '.' });
  await b.init();
  // The parent reads redis-server's CPU between these two messages.
  if (process.send) {
    await new Promise<void>((resolve) => {
      process.once('message', () => resolve());
      process.send?.({ kind: 'ready' });
    });
  }
  let seen = 0;
  let allSeen!: () => void;
  const finished = new Promise<void>((r) => (allSeen = r));
  const ac = new AbortController();
  const count = (): true => {
    if (++seen === n) allSeen();
    return true;
  };
  const handler = handlerKind === 'now'
    ? async (): Promise<true> => count()
    : (): Promise<true> => new Promise((r) => setImmediate(() => r(count())));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const run = b.receive(handler, { concurrency, signal: ac.signal });
  await finished;
  ac.abort();
  await run;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const left = await raw.xlen(q);
  if (left !== 0) throw new Error(`${left} entries left in the stream after the run`);
  await b.close();
  await raw.del(q);
  raw.disconnect();
  const done: Done = { kind: 'done', cpuUs: cpu.user + cpu.system, wallMs };
  if (process.send) process.send(done);
  else console.log(`${(done.cpuUs / n).toFixed(1)} µs/msg of CPU, ${Math.round(n / (wallMs / 1000))} msgs/s`);
}

// ----------------------------------------------------------------------------------------------------------- parent

async function startRedis(): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      probe.disconnect();
      return { port, proc };
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  proc.kill();
  throw new Error('redis-server never answered');
}

/** One run in a child process: CPU µs per message of the child and of redis-server, and messages per second. */
async function runOnce(dist: string, redis: { port: number; pid: number }, c: number, h: HandlerKind, n: number, readAhead?: string): Promise<{ app: number; redis: number; rate: number }> {
  const env = readAhead === undefined ? process.env : { ...process.env, QSCALE_BENCH_READ_AHEAD: readAhead };
  const cp = fork(SELF, ['--child', dist, String(redis.port), String(c), h, String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  let r0 = 0;
  const done = await new Promise<Done>((resolve, reject) => {
    cp.on('message', (m: { kind: string }) => {
      if (m.kind === 'ready') {
        r0 = cpuSeconds(redis.pid);
        cp.send('go');
      } else if (m.kind === 'done') resolve(m as Done);
    });
    cp.once('exit', (code) => reject(new Error(`run exited with ${code} before it was done`)));
  });
  const r1 = cpuSeconds(redis.pid);
  await new Promise((r) => cp.once('exit', r));
  return { app: done.cpuUs / n, redis: ((r1 - r0) * 1e6) / n, rate: n / (done.wallMs / 1000) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function parent(): Promise<void> {
  const option = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const n = Number(args.find((a, i) => /^\d+$/.test(a) && !args[i - 1]?.startsWith('--')) ?? 20_000);
  const rounds = Number(option('--rounds') ?? 5);
  const others = args.flatMap((a, i) => (a === '--impl' && args[i + 1] !== undefined ? [path.resolve(args[i + 1]!)] : []));
  const readAheads = option('--read-ahead')?.split(',');
  const impls: Array<[string, string, string?]> = [
    ...others.map((d): [string, string] => [d, d]),
    ...(readAheads ?? [undefined]).map((ra): [string, string, string?] => [ra === undefined ? 'this build' : `this build, readAheadCount ${ra}`, THIS_DIST, ra]),
  ];
  const { port, proc } = await startRedis();
  const redis = { port, pid: proc.pid! };
  const results = new Map<string, Array<{ app: number; redis: number; rate: number }>>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const c of [1, 16]) {
        for (const h of ['now', 'setImmediate'] as const) {
          // A, B in even rounds; B, A in odd ones: none always runs first.
          const order = round % 2 === 0 ? impls : [...impls].reverse();
          for (const [label, dist, readAhead] of order) {
            const r = await runOnce(dist, redis, c, h, n, readAhead);
            const key = `C=${c} ${h}|${label}`;
            results.set(key, [...(results.get(key) ?? []), r]);
            process.stderr.write(`round ${round + 1} ${key}: app ${r.app.toFixed(1)} µs/msg, redis ${r.redis.toFixed(1)} µs/msg, ${Math.round(r.rate)} msgs/s\n`);
          }
        }
      }
    }
  } finally {
    proc.kill();
  }
  console.log(`receive + ack of ${n} messages, medians of ${rounds} runs (private redis-server ${redis.port})`);
  console.log('| case | build | consumer µs/msg | redis-server µs/msg | msgs/s |');
  console.log('|---|---|---|---|---|');
  for (const [key, rs] of results) {
    const [what, label] = key.split('|');
    console.log(`| ${what} | ${label} | ${median(rs.map((r) => r.app)).toFixed(1)} | ${median(rs.map((r) => r.redis)).toFixed(1)} | ${Math.round(median(rs.map((r) => r.rate)))} |`);
  }
}

if (args[0] === '--child') {
  const [, dist, port, c, h, n] = args;
  await child(dist!, Number(port), Number(c), h as HandlerKind, Number(n));
  process.exit(0);
} else {
  await parent();
}
