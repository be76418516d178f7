/**
 * RabbitMQ: what qscale's bindings.rabbitmq costs over the raw amqplib client doing the same work, and whether the
 * rabbitmq trigger's metric matches the queue's true depth.
 *
 * 1. send: N messages, persistent, each confirmed by the broker — one at a time (a sidecar serving one producer) and
 *    32 in flight (a sidecar under concurrent requests). Raw = ConfirmChannel.sendToQueue + confirm callback.
 * 2. receive + ack: N messages with 16 handlers at once. Raw = consume with prefetch 16, ack each (qscale: the acks
 *    of one event-loop turn together, a multiple ack where tag order allows).
 * 3. trigger vs depth: 30 messages, 4 held by handlers; the trigger's amqp and http metrics next to depth().
 *
 * Run: npm run build && node dist/bench/broker-rabbitmq.js [N] [--no-write]
 */
import amqp from 'amqplib';
import pino from 'pino';
import { rabbitmqBackend, rabbitmqTrigger } from '../src/backends/rabbitmq/index.js';
import type { Backend, ResolvedComponent } from '../src/backends/types.js';
import type { ResolvedTrigger } from '../src/autoscaler/scaler.js';
import { endToEnd } from './lib/broker-e2e.js';
import { machineLine, writeSection } from './report.js';
import { backendDrain, inFlight, rate } from './lib/measure.js';

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const MGMT_URL = 'http://guest:guest@127.0.0.1:15672';
const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
const WRITE = !args.includes('--no-write');
const logger = pino({ level: 'silent' });
const body = (i: number): Buffer => Buffer.from(JSON.stringify({ text: 'Hello World', sentAt: new Date().toISOString(), i }));

function component(queueName: string): ResolvedComponent {
  return {
    name: 'message-queue', type: 'bindings.rabbitmq', version: 'v1',
    metadata: { host: AMQP_URL, queueName, durable: 'true' },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
}

function trig(metadata: Record<string, string>): ResolvedTrigger {
  return { index: 0, type: 'rabbitmq', metricType: 'AverageValue', metadata, subject: 'bench trigger', where: () => ({}) };
}



async function withChannel<T>(fn: (ch: amqp.ConfirmChannel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    return await fn(await conn.createConfirmChannel());
  } finally {
    await conn.close();
  }
}

function rawSend(ch: amqp.ConfirmChannel, q: string, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.sendToQueue(q, body(i), { persistent: true, contentType: 'text/plain' }, (err: unknown) => (err ? reject(new Error(String(err))) : resolve()));
  });
}

async function rawDrain(q: string, n: number): Promise<number> {
  return withChannel(async (ch) => {
    await ch.prefetch(16);
    return rate(n, () => new Promise<void>((resolve) => {
      let seen = 0;
      void ch.consume(q, (m) => {
        if (!m) return;
        if (seen >= n) return; // left unacked: back to the queue when the connection closes
        ch.ack(m);
        if (++seen === n) resolve();
      });
    }));
  });
}


async function main(): Promise<void> {
  const q = `bench-rmq-${process.pid}`;
  const b = rabbitmqBackend.create(component(q), { logger, dataDir: '.' });
  await b.init();
  const rows: Array<[string, number, number]> = [];

  // Each pair runs raw, qscale, raw again: the broker's fsync batching drifts, the mean of the raw runs is fairer.
  const rawSeqA = await withChannel((ch) => rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(ch, q, i); }));
  const qsSeq = await rate(N, async () => { for (let i = 0; i < N; i++) await b.send(body(i), {}); });
  const rawSeqB = await withChannel((ch) => rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(ch, q, i); }));
  rows.push(['send, 1 at a time, confirmed', (rawSeqA + rawSeqB) / 2, qsSeq]);
  const rawRecvA = await rawDrain(q, N);
  const qsRecv = await backendDrain(b, N);
  const rawRecv = (rawRecvA + (await rawDrain(q, N))) / 2;

  const rawParA = await withChannel((ch) => rate(N, () => inFlight(N, 32, (i) => rawSend(ch, q, i))));
  const qsPar = await rate(N, () => inFlight(N, 32, (i) => b.send(body(i), {})));
  const rawParB = await withChannel((ch) => rate(N, () => inFlight(N, 32, (i) => rawSend(ch, q, i))));
  rows.push(['send, 32 in flight, confirmed', (rawParA + rawParB) / 2, qsPar]);
  rows.push(['receive + ack, 16 at a time', rawRecv, qsRecv]);
  await withChannel((ch) => ch.purgeQueue(q));

  // trigger vs depth: 30 sent, 4 held by handlers
  for (let i = 0; i < 30; i++) await b.send(body(i), {});
  const ac = new AbortController();
  let held = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => { held++; await gate; return true; }, { concurrency: 4, signal: ac.signal });
  while (held < 4) await new Promise((r) => setTimeout(r, 20));
  const amqpTrigger = rabbitmqTrigger.create(trig({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  const httpTrigger = rabbitmqTrigger.create(trig({ host: MGMT_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  let depth = await b.depth();
  for (let i = 0; i < 40 && depth.inFlight !== 4; i++) {
    await new Promise((r) => setTimeout(r, 250)); // management statistics refresh every 5 s
    depth = await b.depth();
  }
  let viaHttp = await httpTrigger.metricAndActivity().catch(() => ({ value: NaN, active: false }));
  for (let i = 0; i < 40 && viaHttp.value !== 30; i++) {
    await new Promise((r) => setTimeout(r, 250));
    viaHttp = await httpTrigger.metricAndActivity().catch(() => ({ value: NaN, active: false }));
  }
  const viaAmqp = await amqpTrigger.metricAndActivity();
  ac.abort();
  release();
  await run;
  await amqpTrigger.close();
  await httpTrigger.close();
  await b.close();
  await withChannel(async (ch) => { await ch.deleteQueue(q); await ch.deleteQueue(`${q}-dlq`); });

  const e2eQueue = `${q}-e2e`;
  const e2e = await endToEnd(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - {name: host, value: "${AMQP_URL}"}
  - {name: queueName, value: "${e2eQueue}"}
  - {name: durable, value: "true"}
  - {name: maxConcurrentHandlers, value: "16"}
`, N);
  await withChannel(async (ch) => { await ch.deleteQueue(e2eQueue); await ch.deleteQueue(`${e2eQueue}-dlq`); });

  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const table = [
    '| operation | raw amqplib (mean of 2 runs) | qscale backend | qscale / raw |',
    '|---|---|---|---|',
    ...rows.map(([name, raw, qs]) => `| ${name} | ${fmt(raw)} msgs/s | ${fmt(qs)} msgs/s | ${(qs / raw).toFixed(2)} |`),
  ].join('\n');
  const trigTable = [
    '| what | value |',
    '|---|---|',
    `| true depth: depth() ready / inFlight | ${depth.ready} / ${depth.inFlight} |`,
    `| trigger, protocol amqp (ready only, as KEDA) | ${viaAmqp.value} |`,
    `| trigger, protocol http (ready + unacked) | ${viaHttp.value} |`,
  ].join('\n');
  const text = `\`node dist/bench/broker-rabbitmq.js ${N}\`: RabbitMQ ${'3.10'} on 127.0.0.1, durable queue, persistent messages
of the seed's shape, one process. Raw = amqplib by hand (ConfirmChannel, prefetch 16); qscale = \`bindings.rabbitmq\`
(confirm per send; receive with concurrency 16 = prefetch 16, delivery count and outcome per message, the acks of
one event-loop turn together).
Everything shares the machine's CPUs with whatever else runs: ratios move by about ±20 % from run to run.

${table}

End to end through two \`qscale sidecar\` processes (producer's: POST /v1.0/bindings/message-queue, 32 in flight;
consumer's: delivery to an app, 16 at a time): **${fmt(e2e)} msgs/s** from first send to last delivery.

Trigger against the true depth (30 messages, 4 held by handlers):

${trigTable}

The management API's counters trail the queue by up to its 5 s statistics interval; the amqp protocol cannot see
unacked messages at all (kedacore/keda#356), which is why the example uses protocol http.

${machineLine()}`;
  console.log(text);
  if (WRITE) await writeSection('RabbitMQ', text);
}

await main();
