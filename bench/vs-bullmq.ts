/**
 * qscale against BullMQ on this machine, every role its own process, one private Redis:
 *
 *   BullMQ           producer (Queue.addBulk, 1,000 jobs a call) → Redis → one Worker (concurrency C, 0 ms processor)
 *   qscale Redis     producer → producer `qscale sidecar` (POST /v1.0/bindings/message-queue) → bindings.qscale.redis
 *                    → consumer `qscale sidecar` (maxConcurrentHandlers C) → consumer app (node:http, answers 200)
 *   qscale embedded  the same on bindings.qscale.embedded (one SQLite file both sidecars open)
 *
 * One round of a system: its processes start on an empty queue and sit idle (idle CPU and memory are read; in the
 * C = 16 rounds memory once more when V8's memory reducer has run, SETTLED_MS), the consumer process (Worker or consumer sidecar) is stopped with SIGSTOP, the producer enqueues N messages, SIGCONT, and
 * the backlog drains. Consumer throughput = N / (first → last message the handler saw); CPU per process from
 * /proc/<pid>/stat over each phase; peak memory sampled every 100 ms. Rounds interleave the systems (A, B, C, A, B,
 * C, …) at C = 1 and C = 16. Then: qscale's scale from zero (`qscale up`'s supervisor on the embedded queue, the one
 * bench/scaling.ts measures) beside a BullMQ Worker process started once the job is enqueued, and a CPU profile of the
 * consumer sidecar through one more qscale-on-Redis round at C = 16.
 *
 * Run: npm run build && node dist/bench/vs-bullmq.js [N] [--rounds 3] [--trials 10] [--no-profile] [--no-write]
 * Again from the last run's bench/results/vs-bullmq.json (the section and the chart only): --from-results
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { embeddedBackend } from '../src/backends/embedded/index.js';
import type { ResolvedComponent } from '../src/backends/types.js';
import { sleep } from '../src/util/abort.js';
import { withTimeout } from '../src/util/timeout.js';
import { freePort, startSidecar, stop } from './lib/broker-e2e.js';
import { summarise, type ProfileSummary } from './lib/cpu-profile.js';
import { cpuSeconds, maxMemory, memoryOf, type Memory } from './lib/proc.js';
import { fromZero } from './lib/scale-from-zero.js';
import type { RoleCommand, RoleMessage } from './lib/vs-bullmq-role.js';
import { ROOT, machineLine, percentile, writeSection } from './report.js';

// ---------------------------------------------------------------------------------------------------------- options

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i === -1) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`vs-bullmq: ${name} wants a whole number ≥ 1, got '${args[i + 1] ?? ''}'\n`);
    process.exit(2);
  }
  return v;
}
const positional = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.match(/^--(rounds|trials)$/));
const N = positional[0] === undefined ? 20_000 : Number(positional[0]);
if (!Number.isInteger(N) || N < 1) {
  process.stderr.write(`vs-bullmq: N (messages per round) must be a whole number ≥ 1, got '${positional[0]}'\n`);
  process.exit(2);
}
const ROUNDS = option('--rounds', 3);
const TRIALS = option('--trials', 10);
const PROFILE = !args.includes('--no-profile');
const WRITE = !args.includes('--no-write');
const CONCURRENCY = [1, 16] as const;
const SYSTEMS = ['BullMQ', 'qscale Redis', 'qscale embedded'] as const;
type SystemName = (typeof SYSTEMS)[number];
const SETTLE_MS = 1000;
const IDLE_MS = 3000;
/**
 * Since the processes started, when a C = 16 round reads memory again, "settled": V8's memory reducer shrinks an idle
 * heap (new space back to its minimum, old space compacted), so the reading at SETTLE_MS + IDLE_MS is a start-up
 * transient (~30 % more USS). The reducer looks every ~8 s whether the process is idle: measured, a consumer sidecar
 * mostly shrinks at the first look (~8–10 s after start), a BullMQ Worker at the first or the second (~10 or ~18 s).
 * 20 s covers two looks; the median of the rounds takes care of a later one. Only the C = 16 rounds wait (16 s each).
 */
const SETTLED_MS = 20_000;
const SETTLED_C = 16;
const PHASE_TIMEOUT_MS = 60_000 + N * 10;
const COMMAND = `node dist/bench/vs-bullmq.js${args.length > 0 ? ` ${args.filter((a) => a !== '--no-write').join(' ')}` : ''}`;

const ROLE = path.join(ROOT, 'dist/bench/lib/vs-bullmq-role.js');
const SVG = path.join(ROOT, 'docs/bench-vs-bullmq.svg');
const RESULTS = path.join(ROOT, 'bench/results/vs-bullmq.json');
const now = (): number => performance.timeOrigin + performance.now();
/** Microseconds of CLOCK_MONOTONIC, the clock of a .cpuprofile's sample times. */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

// ------------------------------------------------------------------------------------------------------- processes

interface Proc { label: string; pid: number }

/** A forked bench/lib/vs-bullmq-role.js process: its messages are kept until waited for. */
class RoleProc implements Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  private readonly got: RoleMessage[] = [];
  private readonly waiters: Array<{ kind: RoleMessage['kind']; resolve: (m: RoleMessage) => void; reject: (e: Error) => void }> = [];
  private stopping = false;

  constructor(readonly label: string, role: string, argv: Array<string | number>) {
    this.child = fork(ROLE, [role, ...argv.map(String)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.pid = this.child.pid!;
    this.child.on('message', (m: RoleMessage) => {
      const w = this.waiters.find((x) => x.kind === m.kind);
      if (w) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      } else this.got.push(m);
    });
    this.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${label} (${role}) exited with ${code ?? signal} before '${w.kind}'`));
    });
  }

  wait<K extends RoleMessage['kind']>(kind: K, ms = PHASE_TIMEOUT_MS): Promise<Extract<RoleMessage, { kind: K }>> {
    const i = this.got.findIndex((m) => m.kind === kind);
    if (i !== -1) return Promise.resolve(this.got.splice(i, 1)[0] as Extract<RoleMessage, { kind: K }>);
    const p = new Promise<RoleMessage>((resolve, reject) => this.waiters.push({ kind, resolve, reject }));
    return withTimeout(p, ms, `${this.label}: no '${kind}' within ${ms / 1000} s`) as Promise<Extract<RoleMessage, { kind: K }>>;
  }

  send(c: RoleCommand): void {
    this.child.send(c);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ kind: 'exit' } satisfies RoleCommand);
    await withTimeout(exited, 10_000, `${this.label} did not exit`, () => this.child.kill('SIGKILL'));
  }
}

async function stopSidecar(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await withTimeout(stop(child), 40_000, 'a sidecar did not stop', () => child.kill('SIGKILL'));
}

// ----------------------------------------------------------------------------------------------------------- Redis

interface RedisTarget { port: number; db: number; pid: number | undefined; how: string; child?: ChildProcess }

/** A redis-server of our own on a free port, no persistence; DB 15 of 127.0.0.1:6379 when one cannot start. */
async function startRedis(): Promise<RedisTarget> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const failed = new Promise<string>((r) => {
    child.once('error', (e) => r(e.message));
    child.once('exit', (code) => r(`exited with ${code}`));
  });
  for (let i = 0; i < 100; i++) {
    const why = await Promise.race([failed, sleep(50).then(() => undefined)]);
    if (why !== undefined) {
      process.stderr.write(`vs-bullmq: redis-server could not start (${why}); using DB 15 of 127.0.0.1:6379 instead\n`);
      return { port: 6379, db: 15, pid: undefined, how: 'DB 15 of the shared Redis on 127.0.0.1:6379 (redis-server could not be started)' };
    }
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // not up yet: connect() rejects too
    try {
      await probe.connect();
      const version = /redis_version:(\S+)/.exec(await probe.info('server'))?.[1];
      probe.disconnect();
      return { port, db: 0, pid: child.pid, child, how: `a private redis-server ${version ?? ''} on 127.0.0.1:${port} (--save "" --appendonly no)` };
    } catch {
      probe.disconnect();
    }
  }
  throw new Error('redis-server started but never answered PING');
}

// --------------------------------------------------------------------------------------------------------- systems

interface Running {
  procs: Proc[];
  producer: RoleProc;
  /** The process whose handler counts deliveries: the Worker, or the consumer app. */
  counter: RoleProc;
  /** The process stopped while the producer fills the queue: the Worker, or the consumer sidecar. */
  consumer: Proc;
  /** Messages still in the queue (waiting or held), to see every ack land. */
  depth(): Promise<number>;
  close(): Promise<void>;
  profileDir?: string;
}

/** daprd's metrics stay on (as a user runs the sidecar), each sidecar on a free port of its own. */
const METRICS = ['--metrics-port', '0'];

function componentYaml(type: string, metadata: Record<string, string>): string {
  const lines = Object.entries(metadata).map(([k, v]) => `  - {name: ${k}, value: "${v}"}`).join('\n');
  return `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: message-queue\nspec:\n  type: ${type}\n  version: v1\n  metadata:\n${lines}\n`;
}

async function startBullmq(redis: RedisTarget, c: number, queue: string): Promise<Running> {
  const producer = new RoleProc('producer', 'bullmq-producer', [redis.port, redis.db, queue]);
  const worker = new RoleProc('worker', 'bullmq-worker', [redis.port, redis.db, queue, c, N]);
  await Promise.all([producer.wait('ready', 30_000), worker.wait('ready', 30_000)]);
  const q = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port, db: redis.db } });
  return {
    procs: [producer, worker, ...redisProc(redis)],
    producer, counter: worker, consumer: worker,
    depth: async () => Object.values(await q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed')).reduce((s, x) => s + x, 0),
    close: async () => {
      await q.close();
      await Promise.all([producer.stop(), worker.stop()]);
    },
  };
}

function redisProc(redis: RedisTarget): Proc[] {
  return redis.pid === undefined ? [] : [{ label: 'redis-server', pid: redis.pid }];
}

async function startQscale(system: SystemName, redis: RedisTarget, admin: Redis, c: number, queue: string, profile: boolean): Promise<Running> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-vs-'));
  const onRedis = system === 'qscale Redis';
  const metadata: Record<string, string> = onRedis
    ? { redisHost: `127.0.0.1:${redis.port}`, redisDB: String(redis.db), queueName: queue, maxConcurrentHandlers: String(c) }
    : { queueName: queue, maxConcurrentHandlers: String(c) };
  const type = onRedis ? 'bindings.qscale.redis' : 'bindings.qscale.embedded';
  writeFileSync(path.join(dir, 'binding.yaml'), componentYaml(type, metadata));
  const app = new RoleProc('consumer app', 'qscale-app', [N]);
  const appPort = (await app.wait('ready', 30_000)).port!;
  const [producerPort, consumerPort] = [await freePort(), await freePort()];
  const profileDir = profile ? path.join(dir, 'profile') : undefined;
  if (profileDir) mkdirSync(profileDir);
  const [producerSidecar, consumerSidecar] = await Promise.all([
    startSidecar(dir, producerPort, 'producer', undefined, { args: METRICS }),
    startSidecar(dir, consumerPort, 'consumer', appPort, { args: METRICS, nodeArgs: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [] }),
  ]);
  const producer = new RoleProc('producer', 'qscale-producer', [producerPort]);
  await producer.wait('ready', 30_000);
  const consumer = { label: 'consumer sidecar', pid: consumerSidecar.pid! };
  let depth: () => Promise<number>;
  let closeDepth = async (): Promise<void> => {};
  if (onRedis) {
    depth = async () => admin.xlen(queue);
  } else {
    const component: ResolvedComponent = {
      name: 'message-queue', type, version: 'v1', metadata,
      initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
    };
    let b: ReturnType<typeof embeddedBackend.create> | undefined;
    depth = async () => {
      if (!b) {
        b = embeddedBackend.create(component, { logger: pino({ level: 'silent' }), dataDir: path.join(dir, '.qscale') });
        await b.init();
      }
      const d = await b.depth();
      return d.ready + d.inFlight;
    };
    closeDepth = async () => b?.close();
  }
  return {
    procs: [producer, { label: 'producer sidecar', pid: producerSidecar.pid! }, consumer, app, ...(onRedis ? redisProc(redis) : [])],
    producer, counter: app, consumer, profileDir,
    depth,
    close: async () => {
      await closeDepth();
      await producer.stop();
      await Promise.all([stopSidecar(producerSidecar), stopSidecar(consumerSidecar)]);
      await app.stop();
    },
  };
}

// ----------------------------------------------------------------------------------------------------------- rounds

type PerProc<T> = Record<string, T>;
interface RoundResult {
  system: SystemName;
  c: number;
  round: number;
  n: number;
  producePerSec: number;
  consumePerSec: number;
  /** CPU seconds per process while the producer enqueued N, and while the backlog drained (SIGCONT → queue empty). */
  cpuProduce: PerProc<number>;
  cpuDrain: PerProc<number>;
  /** Fraction of one core per process over IDLE_MS on the empty queue. */
  idleCpu: PerProc<number>;
  idle: PerProc<Memory>;
  /** At SETTLED_MS after the processes started (the C = SETTLED_C rounds only; absent from older results). */
  settled?: PerProc<Memory>;
  peak: PerProc<Memory>;
}

const cpuAll = (procs: Proc[]): PerProc<number> => Object.fromEntries(procs.map((p) => [p.label, cpuSeconds(p.pid)]));
const memAll = (procs: Proc[]): PerProc<Memory> => Object.fromEntries(procs.map((p) => [p.label, memoryOf(p.pid)]));
const minus = (b: PerProc<number>, a: PerProc<number>): PerProc<number> =>
  Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - a[k]!]));

async function untilEmpty(r: Running, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const left = await r.depth();
    if (left === 0) return;
    if (Date.now() > end) throw new Error(`${what}: ${left} message(s) still in the queue 30 s after the last delivery (not acked)`);
    await sleep(10);
  }
}

type Profiled = RoundResult & { profileDir?: string; drainUs: { fromUs: number; toUs: number } };

async function round(system: SystemName, c: number, index: number, redis: RedisTarget, admin: Redis, profile = false): Promise<Profiled> {
  await admin.flushdb();
  const queue = `vs-bullmq-${index}-${c}-${system.replace(/\W+/g, '-')}`;
  const what = `${system}, C=${c}, round ${index}`;
  const r = system === 'BullMQ' ? await startBullmq(redis, c, queue) : await startQscale(system, redis, admin, c, queue, profile);
  const started = performance.now();
  let stopped = false;
  try {
    await sleep(SETTLE_MS);
    const i0 = cpuAll(r.procs);
    await sleep(IDLE_MS);
    const idleCpu = Object.fromEntries(Object.entries(minus(cpuAll(r.procs), i0)).map(([k, s]) => [k, s / (IDLE_MS / 1000)]));
    const idle = memAll(r.procs);
    let settled: PerProc<Memory> | undefined;
    if (c === SETTLED_C && !profile) {
      await sleep(SETTLED_MS - (performance.now() - started));
      settled = memAll(r.procs);
    }
    const peak: PerProc<Memory> = {};
    const sample = (): void => {
      for (const [k, m] of Object.entries(memAll(r.procs))) peak[k] = maxMemory(peak[k], m);
    };
    const sampler = setInterval(sample, 100);
    try {
      process.kill(r.consumer.pid, 'SIGSTOP');
      stopped = true;
      const p0 = cpuAll(r.procs);
      r.producer.send({ kind: 'produce', n: N, from: 0 });
      const produced = await r.producer.wait('produced');
      const p1 = cpuAll(r.procs);
      const fromUs = monoUs();
      process.kill(r.consumer.pid, 'SIGCONT');
      stopped = false;
      const consumed = await r.counter.wait('consumed');
      await untilEmpty(r, what);
      const d1 = cpuAll(r.procs);
      const toUs = monoUs();
      sample();
      const result: RoundResult = {
        system, c, round: index, n: N,
        producePerSec: N / ((produced.last - produced.first) / 1000),
        consumePerSec: N / ((consumed.last - consumed.first) / 1000),
        cpuProduce: minus(p1, p0), cpuDrain: minus(d1, p1), idleCpu, idle, ...(settled ? { settled } : {}), peak,
      };
      process.stdout.write(`${what}: produce ${fmt(result.producePerSec)} msgs/s, consume ${fmt(result.consumePerSec)} msgs/s; ` +
        `drain CPU ${Object.entries(result.cpuDrain).map(([k, s]) => `${k} ${s.toFixed(2)} s`).join(', ')}\n`);
      return { ...result, drainUs: { fromUs, toUs }, ...(r.profileDir ? { profileDir: r.profileDir } : {}) };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    if (stopped) {
      try {
        process.kill(r.consumer.pid, 'SIGCONT');
      } catch {
        // it is gone already: the error that stopped the round says why
      }
    }
    await r.close();
  }
}

/** BullMQ's counterpart of a scale from zero: the job is enqueued, then a Worker process starts and runs it. */
async function bullmqColdStart(redis: RedisTarget, admin: Redis, trials: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < trials; i++) {
    await admin.flushdb();
    const name = `vs-bullmq-cold-${i}`;
    const q = new Queue(name, { connection: { host: '127.0.0.1', port: redis.port, db: redis.db } });
    await q.waitUntilReady();
    await sleep(300 + Math.random() * 700);
    const t0 = now();
    await q.add('message', { text: 'Hello World', i }, { removeOnComplete: true, removeOnFail: true });
    const worker = new RoleProc('worker', 'bullmq-worker', [redis.port, redis.db, name, 1, 1]);
    const done = await worker.wait('consumed', 30_000);
    out.push(done.first - t0);
    await worker.stop();
    await q.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------- figures

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '–');

const CONSUMER_SIDE = ['worker', 'consumer sidecar', 'consumer app', 'redis-server'];
const PRODUCER_SIDE = ['producer', 'producer sidecar', 'redis-server'];

function pick(rows: RoundResult[], system: SystemName, c?: number): RoundResult[] {
  return rows.filter((r) => r.system === system && (c === undefined || r.c === c));
}

/** Median over rounds of CPU seconds per 1,000 messages for each process of `side`, and of their sum. */
function cpuPer1k(rows: RoundResult[], side: string[], phase: 'cpuProduce' | 'cpuDrain'): { per: PerProc<number>; total: number } {
  const labels = side.filter((l) => rows.some((r) => l in r[phase]));
  const per1k = (r: RoundResult, l: string): number => (r[phase][l]! / r.n) * 1000;
  const per = Object.fromEntries(labels.map((l) => [l, median(rows.map((r) => per1k(r, l)))]));
  const total = median(rows.map((r) => labels.reduce((s, l) => s + per1k(r, l), 0)));
  return { per, total };
}

function memMedian(rows: RoundResult[], label: string, which: 'idle' | 'settled' | 'peak'): Memory {
  const ms = rows.map((r) => r[which]?.[label]).filter((m): m is Memory => m !== undefined);
  return { rss: median(ms.map((m) => m.rss)), pss: median(ms.map((m) => m.pss)), uss: median(ms.map((m) => m.uss)) };
}

// ------------------------------------------------------------------------------------------------------------ chart

/** Everything a report is made of: what bench/results/vs-bullmq.json keeps, and --from-results reads back. */
interface Run {
  command: string;
  machine: string;
  load: string;
  redis: string;
  bullmq: string;
  ioredis: string;
  n: number;
  rounds: number;
  trials: number;
  idleMs: number;
  /** SETTLED_MS (absent from older results). */
  settledMs?: number;
  results: RoundResult[];
  scaleFromZeroMs: { qscale: number[]; bullmq: number[] };
  profile?: { summary: ProfileSummary; perSec: number };
}

const PROCESS_COLOURS: Record<string, string> = { worker: '#d62728', 'consumer sidecar': '#1f77b4', 'consumer app': '#9edae5', 'redis-server': '#7f7f7f' };

async function chart(run: Run): Promise<string> {
  const rows = run.results;
  const tput = SYSTEMS.flatMap((s) => CONCURRENCY.map((c) => {
    const v = median(pick(rows, s, c).map((r) => r.consumePerSec));
    const b = median(pick(rows, 'BullMQ', c).map((r) => r.consumePerSec));
    return { system: s, C: `C = ${c}`, msgsPerSec: Math.round(v), label: s === 'BullMQ' ? fmt(v) : `${fmt(v)} (${ratio(v, b)})` };
  }));
  const bar = (s: SystemName, c: number): string => `${s.replace(' ', '|')}|C = ${c}`;
  const cpu = SYSTEMS.flatMap((s) => CONCURRENCY.flatMap((c) => {
    const { per } = cpuPer1k(pick(rows, s, c), CONSUMER_SIDE, 'cpuDrain');
    return Object.entries(per).map(([process, ms]) => ({ bar: bar(s, c), process, rank: CONSUMER_SIDE.indexOf(process), ms: Number(ms.toFixed(3)) }));
  }));
  const totals = SYSTEMS.flatMap((s) => CONCURRENCY.map((c) => {
    const { per, total: t } = cpuPer1k(pick(rows, s, c), CONSUMER_SIDE, 'cpuDrain');
    const b = cpuPer1k(pick(rows, 'BullMQ', c), CONSUMER_SIDE, 'cpuDrain').total;
    // The label (the table's total: the median of each round's sum) sits on top of the stack (the sum of medians).
    const top = Object.values(per).reduce((x, y) => x + y, 0);
    return { bar: bar(s, c), total: top, label: s === 'BullMQ' ? t.toFixed(2) : `${t.toFixed(2)} (${ratio(t, b)})` };
  }));
  const bars = SYSTEMS.flatMap((s) => CONCURRENCY.map((c) => bar(s, c)));
  const processes = CONSUMER_SIDE.filter((p) => cpu.some((r) => r.process === p));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `qscale vs BullMQ: draining ${fmt(run.n)} messages into one consumer (median of ${run.rounds} interleaved rounds)`, fontSize: 14, anchor: 'start' },
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11 }, title: { fontSize: 12 } },
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    spacing: 40,
    hconcat: [
      {
        title: 'Consumer throughput, msgs/s (× = qscale / BullMQ)',
        width: 300, height: 280,
        data: { values: tput },
        encoding: {
          x: { field: 'C', type: 'nominal', title: 'concurrency C', axis: { labelAngle: 0 } },
          xOffset: { field: 'system', type: 'nominal', sort: [...SYSTEMS] },
          y: { field: 'msgsPerSec', type: 'quantitative', title: 'messages per second', scale: { domainMax: Math.max(...tput.map((t) => t.msgsPerSec)) * 1.3 } },
        },
        layer: [
          { mark: 'bar', encoding: { color: { field: 'system', type: 'nominal', sort: [...SYSTEMS], title: 'system', legend: { orient: 'bottom', direction: 'horizontal' }, scale: { domain: [...SYSTEMS], range: ['#d62728', '#1f77b4', '#2ca02c'] } } } },
          { mark: { type: 'text', angle: 270, align: 'left', dx: 4, fontSize: 10 }, encoding: { text: { field: 'label' } } },
        ],
      },
      {
        title: 'Consumer-path CPU per message, ms (= CPU s per 1,000 messages)',
        width: 420, height: 280,
        encoding: {
          x: { field: 'bar', type: 'nominal', sort: bars, title: null, axis: { labelAngle: 0, labelExpr: "split(datum.label, '|')", labelFontSize: 10 } },
        },
        layer: [
          {
            data: { values: cpu },
            mark: 'bar',
            encoding: {
              y: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'CPU ms per message', scale: { domainMax: Math.max(...totals.map((t) => t.total)) * 1.35 } },
              color: { field: 'process', type: 'nominal', title: 'process', sort: processes, legend: { orient: 'bottom', direction: 'horizontal' }, scale: { domain: processes, range: processes.map((p) => PROCESS_COLOURS[p]!) } },
              order: { field: 'rank', type: 'quantitative' },
            },
          },
          {
            data: { values: totals },
            mark: { type: 'text', angle: 270, align: 'left', dx: 4, fontSize: 10 },
            encoding: { y: { field: 'total', type: 'quantitative' }, text: { field: 'label' } },
          },
        ],
      },
    ],
  };
  const warnings: string[] = [];
  const logger: vega.LoggerInterface = {
    level() { return logger as never; },
    error(...a: readonly unknown[]) { warnings.push(a.join(' ')); return logger; },
    warn(...a: readonly unknown[]) { warnings.push(a.join(' ')); return logger; },
    info() { return logger; },
    debug() { return logger; },
  };
  const view = new vega.View(vega.parse(compile(spec, { logger }).spec), { renderer: 'none' });
  try {
    for (const w of warnings) process.stderr.write(`vs-bullmq: chart: ${w}\n`);
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

// ----------------------------------------------------------------------------------------------------------- report

function report(run: Run): string {
  const { results: rows, scaleFromZeroMs: cold, profile } = run;
  const b = (c: number): RoundResult[] => pick(rows, 'BullMQ', c);
  const tputRows = CONCURRENCY.map((c) => {
    const cell = (s: SystemName): string => {
      const xs = pick(rows, s, c).map((r) => r.consumePerSec);
      return `**${fmt(median(xs))}** (${xs.map(fmt).join(' / ')})`;
    };
    const m = (s: SystemName): number => median(pick(rows, s, c).map((r) => r.consumePerSec));
    /** The ratio of the medians, then round by round (each qscale round against the BullMQ round just before it). */
    const vs = (s: SystemName): string => {
      const each = pick(rows, s, c).map((r) => r.consumePerSec / (pick(rows, 'BullMQ', c).find((x) => x.round === r.round)?.consumePerSec ?? NaN));
      return `**${ratio(m(s), m('BullMQ'))}** (${each.map((x) => x.toFixed(2)).join(' / ')})`;
    };
    return `| ${c} | ${cell('BullMQ')} | ${cell('qscale Redis')} | ${cell('qscale embedded')} | ${vs('qscale Redis')} | ${vs('qscale embedded')} |`;
  });
  const f3 = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(3));
  const cpuRows = CONCURRENCY.flatMap((c) => SYSTEMS.map((s) => {
    const { per, total } = cpuPer1k(pick(rows, s, c), CONSUMER_SIDE, 'cpuDrain');
    const own = total - (per['redis-server'] ?? 0);
    const base = cpuPer1k(b(c), CONSUMER_SIDE, 'cpuDrain');
    const baseOwn = base.total - (base.per['redis-server'] ?? 0);
    return `| ${c} | ${s} | ${f3(per.worker ?? per['consumer sidecar'])} | ${f3(per['consumer app'])} | ${f3(per['redis-server'])} | **${f3(total)}** | ${s === 'BullMQ' ? '1' : ratio(total, base.total)} | ${s === 'BullMQ' ? '1' : ratio(own, baseOwn)} |`;
  }));
  const prodRows = SYSTEMS.map((s) => {
    const rs = pick(rows, s);
    const { per, total } = cpuPer1k(rs, PRODUCER_SIDE, 'cpuProduce');
    const base = cpuPer1k(pick(rows, 'BullMQ'), PRODUCER_SIDE, 'cpuProduce');
    const perSec = median(rs.map((r) => r.producePerSec));
    return `| ${s} | ${fmt(perSec)} | ${f3(per.producer)} | ${f3(per['producer sidecar'])} | ${f3(per['redis-server'])} | **${f3(total)}** | ${s === 'BullMQ' ? '1' : ratio(total, base.total)} |`;
  });
  const mib = (x: number): string => (Number.isNaN(x) ? '–' : x.toFixed(1));
  const memRows: string[] = [];
  const memCell = (m: Memory): string => `${mib(m.rss)} / ${mib(m.pss)} / ${mib(m.uss)}`;
  const readings = ['idle', 'settled', 'peak'] as const;
  const consumerTotals = new Map<SystemName, Record<(typeof readings)[number], number>>();
  for (const s of SYSTEMS) {
    const rs = pick(rows, s, SETTLED_C);
    const labels = Object.keys(rs[0]?.idle ?? {});
    const totals = { idle: 0, settled: 0, peak: 0 };
    for (const l of labels) {
      const m = Object.fromEntries(readings.map((w) => [w, memMedian(rs, l, w)])) as Record<(typeof readings)[number], Memory>;
      const cpu = median(rs.map((r) => r.idleCpu[l]!)) * 100;
      memRows.push(`| ${s} | ${l} | ${memCell(m.idle)} | ${memCell(m.settled)} | ${memCell(m.peak)} | ${cpu.toFixed(1)} % |`);
      if (CONSUMER_SIDE.includes(l) && l !== 'redis-server') for (const w of readings) totals[w] += m[w].pss;
    }
    consumerTotals.set(s, totals);
  }
  const bt = consumerTotals.get('BullMQ')!;
  const memTotals = SYSTEMS.map((s) => {
    const t = consumerTotals.get(s)!;
    return `| ${s} |${readings.map((w) => ` ${mib(t[w])} MiB | ${s === 'BullMQ' ? '1' : ratio(t[w], bt[w])} |`).join('')}`;
  });
  const settledS = run.settledMs === undefined ? '–' : `${run.settledMs / 1000} s`;
  const stat = (xs: number[]): { p50: number; min: number; max: number } => {
    const s = [...xs].sort((x, y) => x - y);
    return { p50: percentile(s, 50), min: s[0]!, max: s[s.length - 1]! };
  };
  const q = stat(cold.qscale);
  const bm = stat(cold.bullmq);
  let profileText = '';
  if (profile) {
    const { summary } = profile;
    const pct = (ms: number): string => `${((ms / summary.busyMs) * 100).toFixed(1)} %`;
    const names = [...new Set([...summary.byCaller, ...summary.groups].map((g) => g.name))];
    const ms = (list: typeof summary.groups, name: string): number => list.find((g) => g.name === name)?.ms ?? 0;
    const groupRows = names
      .sort((a, b) => ms(summary.byCaller, b) + ms(summary.groups, b) - ms(summary.byCaller, a) - ms(summary.groups, a))
      .slice(0, 12)
      .map((n) => `| ${n} | ${fmt(ms(summary.groups, n))} ms | ${pct(ms(summary.groups, n))} | ${fmt(ms(summary.byCaller, n))} ms | ${pct(ms(summary.byCaller, n))} |`)
      .join('\n');
    profileText = `
**Where the consumer sidecar's CPU goes** — \`node --cpu-prof\` on the consumer sidecar for one more qscale-on-Redis
round at C = 16 (${fmt(run.n)} messages, ${fmt(profile.perSec)} msgs/s under the profiler; not counted above). Self time of
the samples taken while the backlog drained (SIGCONT → queue empty; start-up and idle left out): ${(summary.busyMs / 1000).toFixed(2)} s busy,
${(summary.idleMs / 1000).toFixed(2)} s idle (waiting on Redis or the app).

Self time = where the CPU went; by caller = each sample given to the innermost frame on its stack that is qscale's,
node's http, ioredis's or another package's (a socket write under an ioredis command counts for ioredis, under a call
to the app for qscale, whose own HTTP client makes it), so the second column is what each part's work costs with the
I/O it causes.

| code | self time | share | by caller | share |
|---|---|---|---|---|
${groupRows}

Top ${summary.functions.length} functions by self time:

| function | group | self time | share |
|---|---|---|---|
${summary.functions.map((f) => `| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.group} | ${fmt(f.ms)} ms | ${pct(f.ms)} |`).join('\n')}
`;
  }
  return `
\`${run.command}\` — the yardstick for qscale's consumer path. ${run.rounds} interleaved rounds (BullMQ, qscale Redis,
qscale embedded, BullMQ, …) at C = 1 and at C = 16, ${fmt(run.n)} messages a round, every role its own process on this
machine${run.n === 20_000 ? '' : ' (`npm run bench` runs 20,000 a round; this run took fewer to stay short on a loaded machine)'},
Redis: ${run.redis}. BullMQ ${run.bullmq} (ioredis ${run.ioredis}).

- **BullMQ**: a producer process adds the jobs with \`Queue.addBulk\` (1,000 a call, \`removeOnComplete\`/\`removeOnFail\`
  so a finished job is deleted as qscale deletes an acked message); one \`Worker\` process, \`concurrency\` C, a 0 ms
  processor.
- **qscale Redis** / **qscale embedded**: a producer process POSTs \`/v1.0/bindings/message-queue\` to its
  \`qscale sidecar\` (32 in flight) → \`bindings.qscale.redis\` (a stream read through a consumer group) or
  \`bindings.qscale.embedded\` (SQLite WAL) → the consumer \`qscale sidecar\` (\`maxConcurrentHandlers\` C, daprd's
  metrics on) → a node:http consumer app answering 200 (the 2xx acks; its idle keep-alive connections never time out,
  since the consumer sidecar is paused while the queue fills and would otherwise first write on a socket the app closed).

Each round: all processes start on an empty queue and sit idle ${run.idleMs / 1000} s (idle CPU and memory read there; in
the C = ${SETTLED_C} rounds memory again ${settledS} after they started, once V8's memory reducer has run); the
consumer process (the Worker, or the consumer sidecar) is paused with SIGSTOP; the producer enqueues all messages
(produce rate); SIGCONT, and the backlog drains. **Throughput = messages / (first → last delivery the handler sees)**;
the drain's CPU window runs from SIGCONT until the queue is empty (every ack landed). CPU = utime + stime from
/proc/<pid>/stat (10 ms ticks) per process; memory from /proc/<pid>/smaps_rollup, peak sampled every 100 ms during
produce and drain. Cells give the median of the rounds; ratios are qscale / BullMQ of those medians, all from this one
run. All processes share the machine's CPUs with whatever else runs on it: the ratios are the figure to read.
Machine load: ${run.load}.

![Throughput and consumer-path CPU per message, qscale against BullMQ](bench-vs-bullmq.svg)

**Consumer throughput** (msgs/s; median, then each round; ratio of the medians, then round by round). Wall-clock rates
move with the machine's load from round to round; CPU per message (next table) moves far less and is the steadier
yardstick:

| C | BullMQ | qscale Redis | qscale embedded | qscale Redis / BullMQ | qscale embedded / BullMQ |
|---|---|---|---|---|---|
${tputRows.join('\n')}

**CPU seconds per 1,000 messages on the consumer path** while the backlog drains (the Worker; or the consumer sidecar
and the consumer app), with Redis's share (BullMQ's scripts run inside Redis):

| C | system | Worker / consumer sidecar | consumer app | redis-server | total | total / BullMQ | without Redis / BullMQ |
|---|---|---|---|---|---|---|---|
${cpuRows.join('\n')}

**Producing** (all rounds; CPU seconds per 1,000 messages while the producer enqueues — BullMQ adds 1,000 jobs per call,
qscale takes one HTTP request per message through the producer sidecar, as Dapr's output binding does):

| system | enqueued msgs/s | producer | producer sidecar | redis-server | total | total / BullMQ |
|---|---|---|---|---|---|---|
${prodRows.join('\n')}

**Memory**, MiB RSS / PSS / USS (median of the C = ${SETTLED_C} rounds): idle ${run.idleMs / 1000} s = after ${(SETTLE_MS + run.idleMs) / 1000} s on the
empty queue (${run.idleMs / 1000} s idle after a ${SETTLE_MS / 1000} s settle); settled = ${settledS} after the processes started, once V8's memory
reducer has shrunk each idle heap (it looks every ~8 s whether a process is idle; the idle reading is a start-up transient);
peak = the largest sample during produce and drain. PSS shares the node binary's pages between the processes that map
them; USS is what the process alone holds.

| system | process | idle ${run.idleMs / 1000} s RSS / PSS / USS | settled RSS / PSS / USS | peak RSS / PSS / USS | idle CPU |
|---|---|---|---|---|---|
${memRows.join('\n')}

Consumer side (Worker; or consumer sidecar + consumer app), PSS:

| system | idle ${run.idleMs / 1000} s | idle / BullMQ | settled | settled / BullMQ | peak | peak / BullMQ |
|---|---|---|---|---|---|---|
${memTotals.join('\n')}

**Scale from zero** (${run.trials} trials each, a random 0.3–1 s pause between them): qscale = \`qscale up\`'s supervisor on
the embedded queue, as bench/scaling.ts measures it (one message through the seed's producer while the consumer is at 0
replicas → the consumer app's "Finished at" line: activation, the replica's warm standby adopted — its sidecar,
started ahead with its components loaded, and its warm app runtime, a node process started ahead with the replica's
environment that now runs the consumer's script (none of the app's code runs at 0 replicas; \`--no-warm-app\` starts
the app as a new process instead, \`--no-warm-sidecar\` both) — the message leased and delivered). BullMQ has no scale
from zero; its counterpart here is a job enqueued with no Worker running, then a Worker process started → the
processor called: that includes node's own start, which the warm app runtime takes off qscale's path
(\`node dist/bench/scaling.js --from-zero-only\` measures qscale with and without it).

| | p50 | min | max |
|---|---|---|---|
| qscale: \`qscale up\`, 0 → 1 replica (warm sidecar and warm app runtime adopted) | **${fmt(q.p50)} ms** | ${fmt(q.min)} ms | ${fmt(q.max)} ms |
| BullMQ: Worker process started after the enqueue | **${fmt(bm.p50)} ms** | ${fmt(bm.min)} ms | ${fmt(bm.max)} ms |
| qscale / BullMQ | **${ratio(q.p50, bm.p50)}** | | |
${profileText}
Raw per-round figures: bench/results/vs-bullmq.json (\`node dist/bench/vs-bullmq.js --from-results\` writes this
section and the chart again from them).

${run.machine}
`;
}

// ------------------------------------------------------------------------------------------------------------- main

async function measure(): Promise<Run> {
  const require = createRequire(import.meta.url);
  const version = (pkg: string): string => (require(`${pkg}/package.json`) as { version: string }).version;
  const loadBefore = os.loadavg()[0]!;
  let loadPeak = loadBefore;
  const loadWatch = setInterval(() => (loadPeak = Math.max(loadPeak, os.loadavg()[0]!)), 5000);
  const redis = await startRedis();
  const admin = new Redis({ host: '127.0.0.1', port: redis.port, db: redis.db });
  const results: RoundResult[] = [];
  let profile: Run['profile'];
  let cold: Run['scaleFromZeroMs'];
  try {
    for (let i = 1; i <= ROUNDS; i++) {
      for (const c of CONCURRENCY) {
        for (const s of SYSTEMS) {
          const { drainUs: _, ...row } = await round(s, c, i, redis, admin);
          results.push(row);
        }
      }
    }
    if (PROFILE) {
      const r = await round('qscale Redis', 16, 0, redis, admin, true);
      const file = readdirSync(r.profileDir!).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`the consumer sidecar wrote no .cpuprofile into ${r.profileDir}`);
      profile = { summary: summarise(path.join(r.profileDir!, file), 15, r.drainUs), perSec: r.consumePerSec };
      process.stdout.write(`profile: ${path.join(r.profileDir!, file)}\n`);
    }
    const bullmq = await bullmqColdStart(redis, admin, TRIALS);
    cold = { qscale: await fromZero(true, TRIALS, 30), bullmq };
  } finally {
    clearInterval(loadWatch);
    admin.disconnect();
    if (redis.child) {
      const exited = new Promise((r) => redis.child!.once('exit', r));
      redis.child.kill('SIGTERM');
      await exited;
    }
  }
  return {
    command: COMMAND, machine: machineLine(),
    load: `load average (1 min) ${loadBefore.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end, up to ${loadPeak.toFixed(1)} during the run`,
    redis: redis.how, bullmq: version('bullmq'), ioredis: version('ioredis'),
    n: N, rounds: ROUNDS, trials: TRIALS, idleMs: IDLE_MS, settledMs: SETTLED_MS, results, scaleFromZeroMs: cold,
    ...(profile ? { profile } : {}),
  };
}

const run: Run = args.includes('--from-results') ? JSON.parse(readFileSync(RESULTS, 'utf8')) as Run : await measure();
const text = report(run);
process.stdout.write(text);
if (WRITE) {
  writeFileSync(SVG, await chart(run));
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(run, null, 1) + '\n');
  await writeSection('qscale vs BullMQ', text);
}
process.exit(0);
