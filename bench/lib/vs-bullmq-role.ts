/**
 * The processes of bench/vs-bullmq.ts other than the sidecars, one role per process (forked with an IPC channel that
 * carries only the start and the result, never a message):
 *
 *   bullmq-producer <redisPort> <db> <queue>           adds N jobs with Queue.addBulk, 1,000 per call
 *   bullmq-worker   <redisPort> <db> <queue> <C> <N>   a Worker with concurrency C and a 0 ms processor
 *   qscale-producer <sidecarPort>                      POST /v1.0/bindings/message-queue N times, 32 in flight
 *   qscale-app      <N>                                a node:http app answering 200 to the consumer sidecar
 *
 * Times are epoch milliseconds with sub-millisecond precision (performance.timeOrigin + performance.now()), so the
 * bench compares them across processes.
 */
import http from 'node:http';

export type RoleMessage =
  | { kind: 'ready'; port?: number }
  | { kind: 'produced'; n: number; first: number; last: number }
  | { kind: 'consumed'; n: number; first: number; last: number };

export type RoleCommand = { kind: 'produce'; n: number; from: number } | { kind: 'exit' };

const now = (): number => performance.timeOrigin + performance.now();
const tell = (m: RoleMessage): void => {
  process.send?.(m);
};
const SENDERS = 32;
const BULK = 1000;

/** The job's data and the binding's data: the same small object. */
const payload = (i: number): { text: string; i: number } => ({ text: 'Hello World', i });

function onCommand(handle: (c: RoleCommand) => Promise<void>): void {
  process.on('message', (c: RoleCommand) => {
    if (c.kind === 'exit') process.exit(0);
    handle(c).catch((err: unknown) => {
      process.stderr.write(`${process.argv[2]}: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
  });
}

/** Counts the N deliveries and reports the first and the last; a counter past N means a duplicate. */
function counter(n: number): () => void {
  let seen = 0;
  let first = 0;
  return () => {
    seen += 1;
    if (seen === 1) first = now();
    if (seen === n) tell({ kind: 'consumed', n: seen, first, last: now() });
    if (seen > n) process.stderr.write(`${process.argv[2]}: delivery ${seen} of ${n}: a message came twice\n`);
  };
}

async function bullmqProducer(redisPort: number, db: number, name: string): Promise<void> {
  const { Queue } = await import('bullmq');
  const queue = new Queue(name, {
    connection: { host: '127.0.0.1', port: redisPort, db },
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  await queue.waitUntilReady();
  onCommand(async (c) => {
    if (c.kind !== 'produce') return;
    const first = now();
    for (let i = 0; i < c.n; i += BULK) {
      const jobs = [];
      for (let j = i; j < Math.min(c.n, i + BULK); j++) jobs.push({ name: 'message', data: payload(c.from + j) });
      await queue.addBulk(jobs);
    }
    tell({ kind: 'produced', n: c.n, first, last: now() });
  });
  tell({ kind: 'ready' });
}

async function bullmqWorker(redisPort: number, db: number, name: string, concurrency: number, n: number): Promise<void> {
  const { Worker } = await import('bullmq');
  const seen = counter(n);
  const worker = new Worker(name, async () => {
    seen();
  }, { connection: { host: '127.0.0.1', port: redisPort, db, maxRetriesPerRequest: null }, concurrency });
  worker.on('error', (err) => process.stderr.write(`bullmq-worker: ${err.message}\n`));
  await worker.waitUntilReady();
  onCommand(async () => {});
  tell({ kind: 'ready' });
}

async function qscaleProducer(sidecarPort: number): Promise<void> {
  // Loaded by the producer role only: the consumer app is a plain node:http app and holds none of undici's memory.
  const { Pool } = await import('undici');
  const pool = new Pool(`http://127.0.0.1:${sidecarPort}`, { connections: SENDERS });
  onCommand(async (c) => {
    if (c.kind !== 'produce') return;
    const first = now();
    let next = 0;
    await Promise.all(Array.from({ length: SENDERS }, async () => {
      while (next < c.n) {
        const i = c.from + next++;
        const r = await pool.request({
          path: '/v1.0/bindings/message-queue', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ operation: 'create', data: payload(i) }),
        });
        await r.body.dump();
        if (r.statusCode !== 204) throw new Error(`the producer sidecar answered ${r.statusCode} to message ${i}`);
      }
    }));
    tell({ kind: 'produced', n: c.n, first, last: now() });
  });
  tell({ kind: 'ready' });
}

async function qscaleApp(n: number): Promise<void> {
  const seen = counter(n);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = req.method === 'POST' || req.method === 'OPTIONS' ? 200 : 404;
      res.end();
      if (req.method === 'POST') seen();
    });
  });
  // The consumer sidecar is paused (SIGSTOP) while the producer fills the queue: it cannot see the app closing an idle
  // keep-alive connection then (node's 5 s default), would send the first delivery after SIGCONT on that dead socket
  // ('socket hang up') and see that message again only after the retry back-off. Idle connections stay open instead.
  server.keepAliveTimeout = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCommand(async () => {});
  tell({ kind: 'ready', port: (server.address() as { port: number }).port });
}

const [role, a, b, c, d, e] = process.argv.slice(2);
switch (role) {
  case 'bullmq-producer': await bullmqProducer(Number(a), Number(b), c!); break;
  case 'bullmq-worker': await bullmqWorker(Number(a), Number(b), c!, Number(d), Number(e)); break;
  case 'qscale-producer': await qscaleProducer(Number(a)); break;
  case 'qscale-app': await qscaleApp(Number(a)); break;
  default:
    if (process.send) {
      process.stderr.write(`vs-bullmq-role: unknown role '${role}' (bullmq-producer, bullmq-worker, qscale-producer, qscale-app)\n`);
      process.exit(2);
    }
}
