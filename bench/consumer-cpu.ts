/**
 * The consumer sidecar's cost per message, paired A/B: the same drain as bench/vs-bullmq.ts's qscale rounds
 * (producer → producer sidecar → queue → consumer sidecar, maxConcurrentHandlers C → node:http app answering 200), with
 * only the consumer sidecar's build changing between the two runs of a pair. Each pair runs the base build and this
 * one back to back, in alternating order, so both see the same moment of a shared machine.
 *
 * Per run: every process starts on an empty queue, the consumer sidecar is stopped (SIGSTOP), N messages are
 * enqueued, SIGCONT, and the backlog drains until the queue is empty (every ack landed). Reported: the consumer
 * sidecar's and the app's CPU (utime + stime from /proc) over the drain, in µs per message, and with --strace the
 * consumer sidecar's system calls per message (`strace -c -f` attached over the drain; strace slows what it traces, so
 * its runs are separate from the CPU runs).
 *
 * Run: npm run build && node dist/bench/consumer-cpu.js [N] [--backend embedded|redis] [--c 1,16] [--pairs 3]
 *        [--base /path/to/other/checkout] [--strace] [--prof DIR]
 * --base: the other build's root (its dist/src/cli/main.js runs the consumer sidecar); without it only this build runs.
 * --prof: writes a .cpuprofile of this build's consumer sidecar per run into DIR.
 * Redis: 127.0.0.1:6379, DB 14 (flushed before each run).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { embeddedBackend } from '../src/backends/embedded/index.js';
import type { ResolvedComponent } from '../src/backends/types.js';
import { sleep } from '../src/util/abort.js';
import { freePort, startSidecar, stop } from './lib/broker-e2e.js';
import { cpuSeconds } from './lib/proc.js';
import { ROOT } from './report.js';
import type { RoleCommand, RoleMessage } from './lib/vs-bullmq-role.js';

const args = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const N = Number(args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ?? 20_000);
const BACKEND = value('--backend') ?? 'embedded';
const CS = (value('--c') ?? '1,16').split(',').map(Number);
const PAIRS = Number(value('--pairs') ?? 3);
const BASE = value('--base');
const STRACE = args.includes('--strace');
const PROF = value('--prof');
if (!Number.isInteger(N) || N < 1 || !['embedded', 'redis'].includes(BACKEND) || CS.some((c) => !Number.isInteger(c) || c < 1) || !(PAIRS >= 1)) {
  process.stderr.write('usage: consumer-cpu [N] [--backend embedded|redis] [--c 1,16] [--pairs 3] [--base DIR] [--strace] [--prof DIR]\n');
  process.exit(2);
}
const ROLE = path.join(ROOT, 'dist/bench/lib/vs-bullmq-role.js');
const REDIS_DB = 14;

class Role {
  readonly child: ChildProcess;
  private readonly got: RoleMessage[] = [];
  private waiter: ((m: RoleMessage) => void) | undefined;
  constructor(role: string, argv: Array<string | number>) {
    this.child = fork(ROLE, [role, ...argv.map(String)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: RoleMessage) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(m);
      } else this.got.push(m);
    });
  }
  async wait(kind: RoleMessage['kind']): Promise<RoleMessage> {
    for (;;) {
      const m = this.got.shift() ?? await new Promise<RoleMessage>((r) => (this.waiter = r));
      if (m.kind === kind) return m;
    }
  }
  send(c: RoleCommand): void {
    this.child.send(c);
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ kind: 'exit' } satisfies RoleCommand);
    await exited;
  }
}

interface RunResult { build: string; c: number; sidecarUs: number; appUs: number; syscalls?: number; perSec: number }

async function run(build: 'base' | 'this', c: number, traced: boolean, admin: Redis | undefined, index: number): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-consumer-cpu-'));
  const queue = `consumer-cpu-${process.pid}-${index}`;
  const metadata: Record<string, string> = BACKEND === 'redis'
    ? { redisHost: '127.0.0.1:6379', redisDB: String(REDIS_DB), queueName: queue, maxConcurrentHandlers: String(c) }
    : { queueName: queue, maxConcurrentHandlers: String(c) };
  const type = `bindings.qscale.${BACKEND}`;
  const lines = Object.entries(metadata).map(([k, v]) => `  - {name: ${k}, value: "${v}"}`).join('\n');
  writeFileSync(path.join(dir, 'binding.yaml'),
    `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: message-queue\nspec:\n  type: ${type}\n  version: v1\n  metadata:\n${lines}\n`);
  if (admin) await admin.flushdb();
  const app = new Role('qscale-app', [N]);
  const appPort = (await app.wait('ready') as Extract<RoleMessage, { kind: 'ready' }>).port!;
  const [pPort, cPort] = [await freePort(), await freePort()];
  const prof = PROF && build === 'this' && !traced ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(PROF)] : [];
  if (prof.length) mkdirSync(PROF!, { recursive: true });
  const [producerSidecar, consumerSidecar] = await Promise.all([
    startSidecar(dir, pPort, 'producer', undefined, { args: ['--metrics-port', '0'] }),
    startSidecar(dir, cPort, 'consumer', appPort, {
      args: ['--metrics-port', '0'], nodeArgs: prof,
      ...(build === 'base' ? { main: path.join(BASE!, 'dist/src/cli/main.js') } : {}),
    }),
  ]);
  const producer = new Role('qscale-producer', [pPort]);
  await producer.wait('ready');
  let depth: () => Promise<number>;
  let closeDepth = async (): Promise<void> => {};
  if (admin) depth = async () => admin.xlen(queue);
  else {
    const component: ResolvedComponent = {
      name: 'message-queue', type, version: 'v1', metadata,
      initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
    };
    const b = embeddedBackend.create(component, { logger: pino({ level: 'silent' }), dataDir: path.join(dir, '.qscale') });
    await b.init();
    depth = async () => {
      const d = await b.depth();
      return d.ready + d.inFlight;
    };
    closeDepth = () => b.close();
  }
  const pid = consumerSidecar.pid!;
  try {
    await sleep(1000);
    process.kill(pid, 'SIGSTOP');
    producer.send({ kind: 'produce', n: N, from: 0 });
    await producer.wait('produced');
    let strace: ChildProcess | undefined;
    let straceOut = '';
    if (traced) {
      strace = spawn('strace', ['-c', '-f', '-U', 'calls,name', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      strace.stderr!.on('data', (d: Buffer) => (straceOut += d.toString()));
      await sleep(500);
    }
    const s0 = cpuSeconds(pid);
    const a0 = cpuSeconds(app.child.pid!);
    process.kill(pid, 'SIGCONT');
    const consumed = await app.wait('consumed') as Extract<RoleMessage, { kind: 'consumed' }>;
    for (let i = 0; (await depth()) > 0; i++) {
      if (i > 3000) throw new Error('messages left in the queue 30 s after the last delivery');
      await sleep(10);
    }
    const s1 = cpuSeconds(pid);
    const a1 = cpuSeconds(app.child.pid!);
    let syscalls: number | undefined;
    if (strace) {
      const exited = new Promise((r) => strace!.once('exit', r));
      strace.kill('SIGINT');
      await exited;
      const total = /\n\s*(\d+)\s+total/.exec(straceOut);
      syscalls = total ? Number(total[1]) / N : NaN;
      if (!total) process.stderr.write(straceOut);
      const top = [...straceOut.matchAll(/^\s*(\d+)\s+(\w+)$/gm)].filter((m) => m[2] !== 'total').map((m) => [m[2]!, Number(m[1])] as const)
        .sort((x, y) => y[1] - x[1]).slice(0, 6).map(([name, n]) => `${name} ${(n / N).toFixed(2)}`).join(', ');
      process.stdout.write(`  ${build} C=${c} syscalls/msg: ${top}\n`);
    }
    return { build, c, sidecarUs: ((s1 - s0) / N) * 1e6, appUs: ((a1 - a0) / N) * 1e6, syscalls, perSec: N / ((consumed.last - consumed.first) / 1000) };
  } finally {
    await closeDepth();
    await producer.stop();
    await Promise.all([stop(producerSidecar), stop(consumerSidecar)]);
    await app.stop();
  }
}

const admin = BACKEND === 'redis' ? new Redis({ host: '127.0.0.1', port: 6379, db: REDIS_DB }) : undefined;
const builds: Array<'base' | 'this'> = BASE ? ['base', 'this'] : ['this'];
const results: RunResult[] = [];
let index = 0;
process.stdout.write(`consumer-cpu: ${BACKEND}, N = ${N}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
for (let p = 0; p < PAIRS; p++) {
  for (const c of CS) {
    const order = p % 2 === 0 ? builds : [...builds].reverse();
    for (const traced of STRACE ? [false, true] : [false]) {
      for (const b of order) {
        const r = await run(b, c, traced, admin, index++);
        results.push(r);
        process.stdout.write(`pair ${p + 1} C=${c} ${b.padEnd(4)}${traced ? ' strace' : '       '}: sidecar ${r.sidecarUs.toFixed(1)} µs/msg, app ${r.appUs.toFixed(1)} µs/msg` +
          `${r.syscalls !== undefined ? `, ${r.syscalls.toFixed(2)} syscalls/msg` : ''}, ${Math.round(r.perSec)} msgs/s\n`);
      }
    }
  }
}
const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
for (const c of CS) {
  for (const b of builds) {
    const cpu = results.filter((r) => r.c === c && r.build === b && r.syscalls === undefined);
    const tr = results.filter((r) => r.c === c && r.build === b && r.syscalls !== undefined);
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(' / ');
    process.stdout.write(`C=${c} ${b}: sidecar median ${med(cpu.map((r) => r.sidecarUs)).toFixed(1)} µs/msg (${list(cpu.map((r) => r.sidecarUs))}), ` +
      `app ${med(cpu.map((r) => r.appUs)).toFixed(1)}, ${Math.round(med(cpu.map((r) => r.perSec)))} msgs/s` +
      `${tr.length ? `; syscalls/msg ${med(tr.map((r) => r.syscalls!)).toFixed(2)} (${list(tr.map((r) => r.syscalls!))})` : ''}\n`);
  }
}
process.stdout.write(`load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
admin?.disconnect();
