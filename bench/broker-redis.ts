/**
 * Redis: what qscale's bindings.qscale.redis costs over the raw ioredis client doing the same stream work, and
 * whether the redis-streams trigger's metrics match the queue's true depth.
 *
 * 1. send: N XADDs of the seed's message — one at a time, and 32 in flight.
 * 2. receive + ack: N entries with 16 at a time. Raw = XREADGROUP COUNT 16 then XACK + XDEL each (what the backend
 *    does, without delivery counts, claim sweeps or lease renewal).
 * 3. trigger vs depth: 30 entries, 4 held by handlers; streamLength, lag and pending next to depth().
 *
 * Run: npm run build && node dist/bench/broker-redis.js [N] [--no-write]
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { redisBackend, redisStreamsTrigger } from '../src/backends/redis/index.js';
import type { Backend, ResolvedComponent } from '../src/backends/types.js';
import type { ResolvedTrigger } from '../src/autoscaler/scaler.js';
import { endToEnd } from './lib/broker-e2e.js';
import { machineLine, writeSection } from './report.js';
import { backendDrain, inFlight, rate } from './lib/measure.js';

const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
const WRITE = !args.includes('--no-write');
const logger = pino({ level: 'silent' });
const body = (i: number): Buffer => Buffer.from(JSON.stringify({ text: 'Hello World', sentAt: new Date().toISOString(), i }));

function component(queueName: string): ResolvedComponent {
  return {
    name: 'message-queue', type: 'bindings.qscale.redis', version: 'v1',
    metadata: { redisHost: '127.0.0.1:6379', queueName },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
}

function trig(metadata: Record<string, string>): ResolvedTrigger {
  return { index: 0, type: 'redis-streams', metricType: 'AverageValue', metadata, subject: 'bench trigger', where: () => ({}) };
}



async function rawDrain(r: Redis, stream: string, n: number): Promise<number> {
  return rate(n, async () => {
    let seen = 0;
    while (seen < n) {
      const reply = (await r.call('XREADGROUP', 'GROUP', 'qscale', 'raw', 'COUNT', String(Math.min(16, n - seen)), 'BLOCK', '1000', 'STREAMS', stream, '>')) as unknown;
      const entries = (Array.isArray(reply) ? ((reply as unknown[][])[0]?.[1] as unknown[][] | undefined) : undefined) ?? [];
      await Promise.all(entries.map(async (e) => {
        const id = String(e[0]);
        await r.multi().xack(stream, 'qscale', id).xdel(stream, id).exec();
      }));
      seen += entries.length;
    }
  });
}


async function main(): Promise<void> {
  const q = `bench-rds-${process.pid}`;
  const raw = new Redis({ host: '127.0.0.1', port: 6379, protocol: 2 });
  const b = redisBackend.create(component(q), { logger, dataDir: '.' });
  await b.init();
  const rows: Array<[string, number, number]> = [];
  const rawSend = async (i: number): Promise<void> => {
    await raw.xadd(q, '*', 'data', body(i), 'meta', '{}');
  };

  // Raw, qscale, raw again: the mean of the raw runs evens out drift.
  const seqA = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(i); });
  const seqQ = await rate(N, async () => { for (let i = 0; i < N; i++) await b.send(body(i), {}); });
  const seqB = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(i); });
  rows.push(['send (XADD), 1 at a time', (seqA + seqB) / 2, seqQ]);
  const recvA = await rawDrain(raw, q, N);
  const recvQ = await backendDrain(b, N);
  const recvB = await rawDrain(raw, q, Math.min(N, await raw.xlen(q)));
  const parA = await rate(N, () => inFlight(N, 32, rawSend));
  const parQ = await rate(N, () => inFlight(N, 32, (i) => b.send(body(i), {})));
  const parB = await rate(N, () => inFlight(N, 32, rawSend));
  rows.push(['send (XADD), 32 in flight', (parA + parB) / 2, parQ]);
  rows.push(['receive + ack + delete, 16 at a time', (recvA + recvB) / 2, recvQ]);
  await raw.del(q);
  await raw.call('XGROUP', 'CREATE', q, 'qscale', '0', 'MKSTREAM');

  for (let i = 0; i < 30; i++) await b.send(body(i), {});
  const ac = new AbortController();
  let held = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => { held++; await gate; return true; }, { concurrency: 4, signal: ac.signal });
  while (held < 4) await new Promise((r) => setTimeout(r, 20));
  const depth = await b.depth();
  const length = redisStreamsTrigger.create(trig({ address: '127.0.0.1:6379', stream: q }));
  const lag = redisStreamsTrigger.create(trig({ address: '127.0.0.1:6379', stream: q, consumerGroup: 'qscale', lagCount: '5' }));
  const pending = redisStreamsTrigger.create(trig({ address: '127.0.0.1:6379', stream: q, consumerGroup: 'qscale' }));
  const [vl, vg, vp] = [await length.metricAndActivity(), await lag.metricAndActivity(), await pending.metricAndActivity()];
  ac.abort();
  release();
  await run;
  for (const s of [length, lag, pending]) await s.close();
  await b.close();
  await raw.del(q, `${q}:dlq`);

  const e2eQueue = `${q}-e2e`;
  const e2e = await endToEnd(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.redis
  version: v1
  metadata:
  - {name: redisHost, value: "127.0.0.1:6379"}
  - {name: queueName, value: "${e2eQueue}"}
  - {name: maxConcurrentHandlers, value: "16"}
`, N);
  await raw.del(e2eQueue, `${e2eQueue}:dlq`);
  raw.disconnect();

  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const table = [
    '| operation | raw ioredis (mean of 2 runs) | qscale backend | qscale / raw |',
    '|---|---|---|---|',
    ...rows.map(([name, r, qs]) => `| ${name} | ${fmt(r)} msgs/s | ${fmt(qs)} msgs/s | ${(qs / r).toFixed(2)} |`),
  ].join('\n');
  const trigTable = [
    '| what | value |',
    '|---|---|',
    `| true depth: depth() ready / inFlight | ${depth.ready} / ${depth.inFlight} |`,
    `| trigger, streamLength (no consumerGroup) | ${vl.value} |`,
    `| trigger, consumerGroup + lagCount | ${vg.value} |`,
    `| trigger, consumerGroup alone (pending) | ${vp.value} |`,
  ].join('\n');
  const text = `\`node dist/bench/broker-redis.js ${N}\`: Redis on 127.0.0.1 (no persistence), the seed's message, one process.
Raw = ioredis by hand (XADD; XREADGROUP COUNT 16, XACK + XDEL per entry); qscale = \`bindings.qscale.redis\` (the same
commands plus delivery counts, a claim sweep every second and lease renewal).
Everything shares the machine's CPUs with whatever else runs: ratios move by about ±20 % from run to run.

${table}

End to end through two \`qscale sidecar\` processes (producer's: POST /v1.0/bindings/message-queue, 32 in flight;
consumer's: delivery to an app, 16 at a time): **${fmt(e2e)} msgs/s** from first send to last delivery.

Trigger against the true depth (30 entries, 4 held by handlers): acked entries are deleted, so the stream length is
ready + in flight; lag is ready; pending is in flight.

${trigTable}

${machineLine()}`;
  console.log(text);
  if (WRITE) await writeSection('Redis', text);
}

await main();
