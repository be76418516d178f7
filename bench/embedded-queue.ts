/**
 * Embedded queue throughput and wake-up latency, with senders and receivers in separate processes as sidecars are.
 * Run: npm run build && node dist/bench/embedded-queue.js [messages=40000]
 * Prints figures and replaces the "Embedded queue" section of docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedBackend, QueueStore, parseEmbeddedComponent, watchArrivals } from '../src/backends/embedded/index.js';
import type { ResolvedComponent } from '../src/backends/types.js';
import { createLogger } from '../src/util/log.js';
import { machineLine, percentile, writeSection } from './report.js';

const SELF = fileURLToPath(import.meta.url);
const logger = createLogger('bench').child({}, { level: 'silent' });
const now = (): number => performance.timeOrigin + performance.now();

function component(queue: string, concurrency: number): ResolvedComponent {
  return {
    name: 'bench', type: 'bindings.qscale.embedded', version: 'v1', initTimeoutMs: 5000, ignoreErrors: false, scopes: [],
    file: 'bench', line: 1, where: () => ({ file: 'bench', line: 1 }),
    metadata: { queueName: queue, maxConcurrentHandlers: String(concurrency) },
  };
}

function open(dataDir: string, queue: string, concurrency = 1): EmbeddedBackend {
  const c = component(queue, concurrency);
  return new EmbeddedBackend(c, parseEmbeddedComponent(c), { logger, dataDir });
}

// ---- child processes ----------------------------------------------------------------------------------------------

async function child(mode: string, dataDir: string, queue: string, arg1: number, arg2: number): Promise<void> {
  const b = open(dataDir, queue, Math.max(1, arg1));
  await b.init();
  const report = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');
  if (mode === 'send') {
    const start = now();
    for (let i = 0; i < arg1; i++) await b.send(Buffer.from(JSON.stringify({ i, t: now() })), {});
    report({ count: arg1, ms: now() - start });
  } else if (mode === 'sendc') {
    // arg2 senders at once, as concurrent HTTP requests reach a sidecar.
    const start = now();
    let next = 0;
    await Promise.all(Array.from({ length: arg2 }, async () => {
      while (next < arg1) {
        next++;
        await b.send(Buffer.from(JSON.stringify({ t: now() })), {});
      }
    }));
    report({ count: arg1, ms: now() - start });
  } else if (mode === 'drain') {
    // Receives until the queue stays empty; reports the span between its first and last message.
    let count = 0;
    let first = 0;
    let last = 0;
    const ac = new AbortController();
    const cpu0 = process.cpuUsage();
    const watch = setInterval(() => {
      void b.depth().then((d) => {
        if (d.ready + d.inFlight === 0 && count > 0) ac.abort();
      });
    }, 50);
    await b.receive(async () => {
      if (count === 0) first = now();
      // arg2 = 1: each answer comes in its own I/O callback, as a sidecar's HTTP answers from the app do.
      if (arg2 === 1) await new Promise((r) => fs.stat(dataDir, r));
      count++;
      last = now();
      return true;
    }, { concurrency: arg1, signal: ac.signal });
    clearInterval(watch);
    const cpu = process.cpuUsage(cpu0);
    report({ count, first, last, cpuMs: (cpu.user + cpu.system) / 1000 });
  } else if (mode === 'trickle') {
    // arg1 messages, one every arg2 ms: each carries its send time.
    for (let i = 0; i < arg1; i++) {
      await b.send(Buffer.from(JSON.stringify({ i, t: now() })), {});
      await new Promise((r) => setTimeout(r, arg2));
    }
    report({ count: arg1 });
  } else if (mode === 'latency') {
    const lat: number[] = [];
    const ac = new AbortController();
    await b.receive(async (m) => {
      lat.push(now() - (JSON.parse(m.data.toString()) as { t: number }).t);
      if (lat.length >= arg1) ac.abort();
      return true;
    }, { concurrency: 1, signal: ac.signal });
    report({ lat });
  } else if (mode === 'arrivals') {
    // What the autoscaler sees: the call back when a message lands on the empty queue, paired with its send time.
    // The queue is emptied only after each call back, as no replica runs while the autoscaler waits for an arrival.
    const store = QueueStore.acquire(dataDir);
    const lat: number[] = [];
    const start = now();
    await new Promise<void>((resolve) => {
      const drain = (at: number): void => {
        let last = false;
        for (const m of store.lease(queue, 100, 60_000, 10).leased) {
          const { t, i } = JSON.parse(m.data.toString()) as { t: number; i: number };
          // Messages sent before the watch began were no arrival.
          if (t >= start) lat.push(at - t);
          last ||= i === arg1 - 1;
          store.complete(m.seq, m.token);
        }
        if (last) {
          stop();
          resolve();
        }
      };
      const stop = watchArrivals(dataDir, queue, () => drain(now()));
      drain(now());
    });
    store.unref();
    report({ lat });
  } else if (mode === 'idle') {
    const ac = new AbortController();
    const cpu0 = process.cpuUsage();
    setTimeout(() => ac.abort(), arg1);
    await b.receive(async () => true, { concurrency: 1, signal: ac.signal });
    const cpu = process.cpuUsage(cpu0);
    report({ cpuMs: (cpu.user + cpu.system) / 1000, ms: arg1 });
  }
  await b.close();
}

// ---- parent -------------------------------------------------------------------------------------------------------

function run(mode: string, dataDir: string, queue: string, a1: number, a2 = 0): Promise<Record<string, number | number[]>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SELF, 'child', mode, dataDir, queue, String(a1), String(a2)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${mode} exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number | number[]>);
    });
  });
}

async function fill(dataDir: string, queue: string, n: number): Promise<void> {
  const b = open(dataDir, queue);
  for (let i = 0; i < n; i++) await b.send(Buffer.from(JSON.stringify({ i, t: 0 })), {});
  await b.close();
}

async function drainWith(dataDir: string, queue: string, n: number, processes: number, concurrency: number, ioAnswers = false): Promise<{ rate: number; cpuPerMsgUs: number }> {
  await fill(dataDir, queue, n);
  const results = await Promise.all(Array.from({ length: processes }, () => run('drain', dataDir, queue, concurrency, ioAnswers ? 1 : 0)));
  const total = results.reduce((s, r) => s + (r.count as number), 0);
  if (total !== n) throw new Error(`drained ${total} of ${n}`);
  const span = Math.max(...results.map((r) => r.last as number)) - Math.min(...results.map((r) => r.first as number));
  const cpu = results.reduce((s, r) => s + (r.cpuMs as number), 0);
  return { rate: total / (span / 1000), cpuPerMsgUs: (cpu * 1000) / total };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 40_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-'));
  const lines: string[] = [];
  const say = (s: string): void => {
    console.log(s);
    lines.push(s);
  };

  const one = await run('send', dataDir, 'send-1', n);
  say(`- send, 1 process: **${Math.round(n / ((one.ms as number) / 1000))} msgs/s** (one transaction per message)`);
  const two = await Promise.all([run('send', dataDir, 'send-2', n / 2), run('send', dataDir, 'send-2', n / 2)]);
  const twoMs = Math.max(...two.map((r) => r.ms as number));
  say(`- send, 2 processes on one queue: **${Math.round(n / (twoMs / 1000))} msgs/s** together`);
  const burst = await run('sendc', dataDir, 'send-c', n, 32);
  say(`- send, 1 process with 32 sends in flight (as a sidecar under concurrent requests): **${Math.round(n / ((burst.ms as number) / 1000))} msgs/s** ` +
    '(sends of one event-loop turn share a transaction)');

  for (const [processes, concurrency] of [[1, 1], [4, 1], [1, 16], [4, 4]] as const) {
    const r = await drainWith(dataDir, `drain-${processes}-${concurrency}`, n, processes, concurrency);
    say(`- lease + complete, ${processes} receiver process${processes > 1 ? 'es' : ''} × concurrency ${concurrency}: ` +
      `**${Math.round(r.rate)} msgs/s**, ${r.cpuPerMsgUs.toFixed(0)} µs CPU per message`);
  }
  for (const concurrency of [1, 16]) {
    const r = await drainWith(dataDir, `drain-io-${concurrency}`, n, 1, concurrency, true);
    say(`- lease + complete, 1 receiver process × concurrency ${concurrency}, each answer in its own I/O callback (as a sidecar's ` +
      `HTTP answers): **${Math.round(r.rate)} msgs/s**, ${r.cpuPerMsgUs.toFixed(0)} µs CPU per message`);
  }

  const count = 300;
  const [lat] = await Promise.all([run('latency', dataDir, 'wake', count), run('trickle', dataDir, 'wake', count, 10)]);
  const sorted = (lat.lat as number[]).sort((a, b) => a - b);
  say(`- wake-up of an idle receiver by a send from another process (${count} messages, one per 10 ms): ` +
    `p50 **${percentile(sorted, 50).toFixed(2)} ms**, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)?.toFixed(2)} ms`);

  const arrivals = 40;
  const [arr] = await Promise.all([run('arrivals', dataDir, 'arrivals', arrivals), run('trickle', dataDir, 'arrivals', arrivals, 150)]);
  const arrSorted = (arr.lat as number[]).sort((a, b) => a - b);
  say(`- watchArrivals (the autoscaler's activation from zero), send from another process onto the empty queue → call back ` +
    `(${arrSorted.length} arrivals, one per 150 ms): p50 **${percentile(arrSorted, 50).toFixed(2)} ms**, p99 ${percentile(arrSorted, 99).toFixed(2)} ms`);

  const idle = await run('idle', dataDir, 'idle', 5000);
  say(`- CPU of an idle receiver (watching the -wal file, data_version re-checked on each event and every 200 ms): **${(((idle.cpuMs as number) / (idle.ms as number)) * 100).toFixed(2)} %** of one core`);

  fs.rmSync(dataDir, { recursive: true, force: true });
  await writeSection('Embedded queue', [
    `Run: \`npm run build && node dist/bench/embedded-queue.js ${n}\`. Every sender and receiver is its own process on one`,
    'SQLite file (WAL, synchronous=NORMAL) in the OS temp folder; receivers complete every message (handler returns true).',
    'Throughput = messages / (last − first message seen by any receiver).',
    '',
    machineLine(),
    '',
    ...lines,
    '',
    'How: a busy receiver carries the answers (completions and releases) of one event-loop turn in one transaction with',
    'the leases that refill their slots (one commit per message at concurrency 1, where a lone answer is written at once,',
    'no timer; one per turn above); concurrent sends of one event-loop turn share one transaction. An idle receiver watches the',
    '`-wal` file and re-reads `PRAGMA data_version` on each event; polling data_version on a 3 ms timer instead cost',
    '2.7 % of a core per idle receiver (timer wake-ups alone) for a p50 wake-up of 2 ms. Durability: WAL with',
    'synchronous=NORMAL loses nothing when a process is killed (the tests kill -9 receivers); a power cut can lose the',
    'last commits. Figures vary with whatever else runs on the machine (load average above 3 during this run is common here).',
  ].join('\n'));
}

if (process.argv[2] === 'child') {
  const [, , , mode, dataDir, queue, a1, a2] = process.argv;
  await child(mode ?? '', dataDir ?? '', queue ?? '', Number(a1), Number(a2));
} else {
  await main();
}
