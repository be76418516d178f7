/**
 * NATS JetStream: what qscale's bindings.qscale.nats-jetstream costs over the raw nats client doing the same work,
 * and whether the nats-jetstream trigger's metric matches the consumer's true depth.
 *
 * 1. send: N messages, one at a time and 32 in flight, each confirmed by a PubAck. Raw = js.publish.
 * 2. receive + ack: N messages, 16 at a time. Raw = consumer.consume({max_messages: 16}) and ack() per message
 *    (fire-and-forget). qscale = pulls only for free handlers, progress acks while working, ack confirmed (ackAck).
 * 3. trigger vs depth: 30 messages, 4 held by handlers; the trigger's metric through the monitoring endpoint (a
 *    nats-server started here with -m) and through the qscale protocol fallback, next to depth().
 *
 * Run: npm run build && node dist/bench/broker-nats.js [N] [--no-write]
 */
import { connect, AckPolicy, RetentionPolicy, StorageType, type JetStreamClient, type NatsConnection } from 'nats';
import pino from 'pino';
import { natsBackend, natsJetStreamTrigger } from '../src/backends/nats/index.js';
import type { Backend, ResolvedComponent } from '../src/backends/types.js';
import type { ResolvedTrigger } from '../src/autoscaler/scaler.js';
import { TestNatsServer } from '../test/backends/nats/server.js';
import { endToEnd } from './lib/broker-e2e.js';
import { machineLine, writeSection } from './report.js';
import { backendDrain, inFlight, rate } from './lib/measure.js';

const NATS_URL = 'nats://127.0.0.1:4222';
const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
const WRITE = !args.includes('--no-write');
const logger = pino({ level: 'silent' });
const body = (i: number): Buffer => Buffer.from(JSON.stringify({ text: 'Hello World', sentAt: new Date().toISOString(), i }));

function component(url: string, stream: string): ResolvedComponent {
  return {
    name: 'message-queue', type: 'bindings.qscale.nats-jetstream', version: 'v1',
    metadata: { natsURL: url, stream },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
}

function trig(metadata: Record<string, string>): ResolvedTrigger {
  return { index: 0, type: 'nats-jetstream', metricType: 'AverageValue', metadata, subject: 'bench trigger', where: () => ({}) };
}



async function rawSetup(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [stream], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  await jsm.consumers.add(stream, { durable_name: 'raw', ack_policy: AckPolicy.Explicit });
}

async function rawDrain(js: JetStreamClient, stream: string, n: number): Promise<number> {
  const c = await js.consumers.get(stream, 'raw');
  return rate(n, async () => {
    let seen = 0;
    while (seen < n) {
      const batch = await c.fetch({ max_messages: Math.min(16, n - seen), expires: 1000 });
      for await (const m of batch) {
        m.ack();
        seen++;
      }
    }
  });
}


async function triggerVsDepth(url: string, monitoring: string | undefined): Promise<{ ready: number; inFlight: number; metric: number }> {
  const stream = `bench_nats_trig_${process.pid}`;
  const b = natsBackend.create(component(url, stream), { logger, dataDir: '.' });
  await b.init();
  for (let i = 0; i < 30; i++) await b.send(body(i), {});
  const ac = new AbortController();
  let held = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => { held++; await gate; return true; }, { concurrency: 4, signal: ac.signal });
  while (held < 4) await new Promise((r) => setTimeout(r, 20));
  const scaler = natsJetStreamTrigger.create(trig({
    ...(monitoring ? { natsServerMonitoringEndpoint: monitoring } : { natsURL: url }),
    account: '$G', stream, consumer: `${stream}-consumer`, lagThreshold: '5',
  }));
  const depth = await b.depth();
  const metric = (await scaler.metricAndActivity()).value;
  ac.abort();
  release();
  await run;
  await scaler.close();
  await b.close();
  const nc = await connect({ servers: url });
  const jsm = await nc.jetstreamManager();
  for (const s of [stream, `${stream}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
  await nc.close();
  return { ready: depth.ready, inFlight: depth.inFlight, metric };
}

async function main(): Promise<void> {
  const stream = `bench_nats_${process.pid}`;
  const rawStream = `bench_nats_raw_${process.pid}`;
  const nc = await connect({ servers: NATS_URL });
  const js = nc.jetstream();
  await rawSetup(nc, rawStream);
  const b = natsBackend.create(component(NATS_URL, stream), { logger, dataDir: '.' });
  await b.init();
  const rows: Array<[string, number, number]> = [];
  const rawSend = async (i: number): Promise<void> => { await js.publish(rawStream, body(i)); };

  const rawSeqA = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(i); });
  const qsSeq = await rate(N, async () => { for (let i = 0; i < N; i++) await b.send(body(i), {}); });
  const rawSeqB = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(i); });
  rows.push(['send, 1 at a time, PubAck', (rawSeqA + rawSeqB) / 2, qsSeq]);
  const rawRecvA = await rawDrain(js, rawStream, N);
  const qsRecv = await backendDrain(b, N);
  const rawRecv = (rawRecvA + (await rawDrain(js, rawStream, N))) / 2;

  const rawParA = await rate(N, () => inFlight(N, 32, rawSend));
  const qsPar = await rate(N, () => inFlight(N, 32, (i) => b.send(body(i), {})));
  const rawParB = await rate(N, () => inFlight(N, 32, rawSend));
  rows.push(['send, 32 in flight, PubAck', (rawParA + rawParB) / 2, qsPar]);
  rows.push(['receive + ack, 16 at a time', rawRecv, qsRecv]);
  await b.close();
  const jsm = await nc.jetstreamManager();
  for (const s of [stream, `${stream}-dlq`, rawStream]) await jsm.streams.delete(s).catch(() => undefined);
  const version = nc.info?.version ?? '?';
  await nc.close();

  const server = await TestNatsServer.start();
  const viaMonitoring = await triggerVsDepth(server.url, server.monitoringEndpoint);
  await server.stop();
  const viaProtocol = await triggerVsDepth(NATS_URL, undefined);

  const e2eStream = `bench_nats_e2e_${process.pid}`;
  const e2e = await endToEnd(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.nats-jetstream
  version: v1
  metadata:
  - {name: natsURL, value: "${NATS_URL}"}
  - {name: stream, value: "${e2eStream}"}
  - {name: maxConcurrentHandlers, value: "16"}
`, N);
  const nc2 = await connect({ servers: NATS_URL });
  const jsm2 = await nc2.jetstreamManager();
  for (const s of [e2eStream, `${e2eStream}-dlq`]) await jsm2.streams.delete(s).catch(() => undefined);
  await nc2.close();

  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const table = [
    '| operation | raw nats.js (mean of 2 runs) | qscale backend | qscale / raw |',
    '|---|---|---|---|',
    ...rows.map(([name, raw, qs]) => `| ${name} | ${fmt(raw)} msgs/s | ${fmt(qs)} msgs/s | ${(qs / raw).toFixed(2)} |`),
  ].join('\n');
  const text = `\`node dist/bench/broker-nats.js ${N}\`: nats-server ${version} with JetStream on 127.0.0.1, work-queue
stream on file storage, messages of the seed's shape, one process. Raw = nats.js by hand: js.publish awaiting the
PubAck; fetch() batches of 16 with a fire-and-forget ack(). qscale = \`bindings.qscale.nats-jetstream\`:
publish with the metadata as headers; receive with concurrency 16 = pull only as many as there are free handlers
(fetch), progress acks while working, ack confirmed by the server (ackAck) before the next pull for that slot.
Ratios move by about ±20 % from run to run on a shared machine.

${table}

End to end through two \`qscale sidecar\` processes (producer's: POST /v1.0/bindings/message-queue, 32 in flight;
consumer's: delivery to an app, 16 at a time): **${fmt(e2e)} msgs/s** from first send to last delivery.

Trigger against the true depth (30 messages, 4 held by handlers):

| what | value |
|---|---|
| true depth: depth() ready / inFlight (monitoring run) | ${viaMonitoring.ready} / ${viaMonitoring.inFlight} |
| trigger via natsServerMonitoringEndpoint (/jsz, as KEDA) | ${viaMonitoring.metric} |
| true depth: depth() ready / inFlight (protocol run) | ${viaProtocol.ready} / ${viaProtocol.inFlight} |
| trigger via natsURL (qscale extension: consumer info over NATS) | ${viaProtocol.metric} |

${machineLine()}`;
  console.log(text);
  if (WRITE) await writeSection('NATS JetStream', text);
}

await main();
