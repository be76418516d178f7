/**
 * End-to-end messages/s: load → producer's sidecar (`POST /v1.0/bindings/message-queue`) → embedded queue →
 * consumer replicas' sidecars → the consumer app (WORK_MS=0), 1 and 4 replicas; and the memory of one replica.
 */
import path from 'node:path';
import { Pool } from 'undici';
import { Deployment } from '../src/supervisor/deployment.js';
import { parseRunFile } from '../src/supervisor/runfile.js';
import { CountingLogs, benchFolder, memoryOf, mib, runFileFor, seedComponent } from './system.js';
import { machineLine, writeSection } from './report.js';

const MESSAGES = Number(process.env.QSCALE_BENCH_MESSAGES ?? 20_000);
const SENDERS = 32;

interface Row { replicas: number; handlers: number; msgsPerSec: number; sendPerSec: number; seconds: number }

async function waitReady(dep: Deployment, n: number): Promise<void> {
  while (dep.readyCount < n) await new Promise((r) => setTimeout(r, 20));
}

async function run(replicas: number, handlers: number): Promise<{ row: Row; memory?: { app: ReturnType<typeof memoryOf>; sidecar: ReturnType<typeof memoryOf> } }> {
  const folder = benchFolder({
    'binding.yaml': seedComponent({ maxConcurrentHandlers: String(handlers) }),
    'dapr.yaml': runFileFor({ WORK_MS: '0' }),
  });
  const dataDir = path.join(folder, '.qscale');
  const runFile = parseRunFile(runFileFor({ WORK_MS: '0' }), path.join(folder, 'dapr.yaml'));
  const logs = new CountingLogs();
  const mk = (appId: string): Deployment =>
    new Deployment({ app: runFile.apps.find((a) => a.appId === appId)!, embedded: true, dataDir, graceMs: 10_000, logs, fixedPorts: false });
  const producer = mk('producer');
  const consumer = mk('consumer');
  await producer.scaleTo(1);
  await consumer.scaleTo(replicas);
  await Promise.all([waitReady(producer, 1), waitReady(consumer, replicas)]);
  const sidecarPort = producer.all()[0]!.sidecarPort;
  const pool = new Pool(`http://127.0.0.1:${sidecarPort}`, { connections: SENDERS, pipelining: 1 });
  const body = JSON.stringify({ data: { text: 'Hello World' }, operation: 'create' });
  let next = 0;
  const start = performance.now();
  let sentAt = 0;
  const sender = async (): Promise<void> => {
    while (next < MESSAGES) {
      next += 1;
      const res = await pool.request({ path: '/v1.0/bindings/message-queue', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.body.dump();
      if (res.statusCode !== 204) throw new Error(`send failed: ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  sentAt = performance.now();
  const doneAt = await logs.until(MESSAGES);
  const seconds = (doneAt - start) / 1000;
  const c = consumer.all()[0]!;
  const memory = { app: memoryOf(c.pids().app), sidecar: memoryOf(c.pids().sidecar) };
  await pool.close();
  await Promise.all([producer.stopAll(), consumer.stopAll()]);
  return {
    row: { replicas, handlers, msgsPerSec: MESSAGES / seconds, sendPerSec: MESSAGES / ((sentAt - start) / 1000), seconds },
    memory,
  };
}

const rows: Row[] = [];
let mem: Awaited<ReturnType<typeof run>>['memory'];
for (const [replicas, handlers] of [[1, 1], [1, 32], [4, 1], [4, 32]] as const) {
  const r = await run(replicas, handlers);
  rows.push(r.row);
  if (replicas === 1 && handlers === 1) mem = r.memory;
  console.log(`${replicas} replica(s), maxConcurrentHandlers ${handlers}: ${r.row.msgsPerSec.toFixed(0)} msgs/s end to end (${r.row.sendPerSec.toFixed(0)} sends/s into the producer's sidecar), ${MESSAGES} messages in ${r.row.seconds.toFixed(2)} s`);
}
if (mem) console.log(`one replica after the run: app RSS ${mib(mem.app.rss)} / PSS ${mib(mem.app.pss)}, sidecar RSS ${mib(mem.sidecar.rss)} / PSS ${mib(mem.sidecar.pss)}`);

const table = rows.map((r) => `| ${r.replicas} | ${r.handlers} | **${r.msgsPerSec.toFixed(0)}** | ${r.sendPerSec.toFixed(0)} | ${r.seconds.toFixed(2)} s |`).join('\n');
const m = mem!;
await writeSection('End to end (issue: the seed on one machine)', `
\`node dist/bench/e2e-throughput.js\`: ${MESSAGES} messages sent by ${SENDERS} concurrent HTTP clients to the producer's
\`qscale sidecar\` (\`POST /v1.0/bindings/message-queue\`, the seed's body), stored in the embedded queue, delivered by
each consumer replica's sidecar to the consumer app (\`WORK_MS=0\`, one log line per message). Replicas are started
the way \`qscale up\` starts them (app + sidecar processes). msgs/s = messages / (first send → last "Finished at" line
read from the apps' stdout). Goal: ≥ 5,000 msgs/s end to end.

| replicas | maxConcurrentHandlers | msgs/s end to end | sends/s into the producer sidecar | wall time |
|---|---|---|---|---|
${table}

Memory of one replica (1 replica run, read from /proc/<pid>/smaps_rollup after the run). RSS counts the node binary's
shared pages in each process; PSS divides shared pages between the processes that map them, so PSS is what a replica adds.
Goal: ≤ 80 MB per replica.

| process | RSS | PSS |
|---|---|---|
| consumer app | ${mib(m.app.rss)} | ${mib(m.app.pss)} |
| its sidecar | ${mib(m.sidecar.rss)} | ${mib(m.sidecar.pss)} |
| **replica** | **${mib(m.app.rss + m.sidecar.rss)}** | **${mib(m.app.pss + m.sidecar.pss)}** |

What limits it: all processes (load generator, producer sidecar, consumer sidecars, apps) share 2 cores; every message
costs two HTTP requests, two SQLite write transactions (enqueue, lease + complete) and one log line. With
maxConcurrentHandlers 1 (the Service Bus binding's default, the seed's "one after the other") each replica waits for
one app round trip per message.

${machineLine()}
`);
process.exit(0);
