/**
 * PostgreSQL: what qscale's bindings.qscale.postgresql costs over the raw pg client doing the least queue work, and
 * whether the postgresql trigger's metric matches the queue's true depth.
 *
 * 1. send: N messages, one at a time and 32 in flight. Raw = one INSERT per message (pool of 10).
 * 2. receive + ack: N messages, 16 at a time. Raw = DELETE ... (SELECT ... LIMIT 16 FOR UPDATE SKIP LOCKED)
 *    RETURNING: take-and-delete, no lease, no delivery count — the floor any at-least-once queue pays more than.
 *    qscale = claim with a lease token, handler, then DELETE by id + token (one statement for the answers of a turn).
 * 3. trigger vs depth: 30 messages, 4 held by handlers; the trigger's metric next to depth().
 *
 * Run: npm run build && node dist/bench/broker-postgresql.js [N] [--no-write]
 */
import pg from 'pg';
import pino from 'pino';
import { postgresqlBackend, postgresqlTrigger } from '../src/backends/postgresql/index.js';
import type { Backend, ResolvedComponent } from '../src/backends/types.js';
import type { ResolvedTrigger } from '../src/autoscaler/scaler.js';
import { endToEnd } from './lib/broker-e2e.js';
import { machineLine, writeSection } from './report.js';
import { backendDrain, inFlight, rate } from './lib/measure.js';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
const WRITE = !args.includes('--no-write');
const logger = pino({ level: 'silent' });
const body = (i: number): Buffer => Buffer.from(JSON.stringify({ text: 'Hello World', sentAt: new Date().toISOString(), i }));
const TABLE = `bench_pg_${process.pid}`;
const RAW = `bench_pg_raw_${process.pid}`;

function component(queueName: string): ResolvedComponent {
  return {
    name: 'message-queue', type: 'bindings.qscale.postgresql', version: 'v1',
    metadata: { connectionString: PG_URL, queueName, table: TABLE },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
}



async function rawSend(pool: pg.Pool, i: number): Promise<void> {
  await pool.query(`INSERT INTO ${RAW} (data) VALUES ($1)`, [body(i)]);
}

async function rawDrain(pool: pg.Pool, n: number): Promise<number> {
  let seen = 0;
  return rate(n, () => inFlight(1, 1, async () => {
    while (seen < n) {
      const r = await pool.query(
        `DELETE FROM ${RAW} WHERE id IN (SELECT id FROM ${RAW} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, data`,
        [Math.min(16, n - seen)],
      );
      seen += r.rowCount ?? 0;
    }
  }));
}


async function main(): Promise<void> {
  const q = `bench-pg-${process.pid}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 10 });
  await pool.query(`CREATE TABLE ${RAW} (id bigserial PRIMARY KEY, data bytea NOT NULL)`);
  const b = postgresqlBackend.create(component(q), { logger, dataDir: '.' });
  await b.init();
  const rows: Array<[string, number, number]> = [];

  const rawSeqA = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(pool, i); });
  const qsSeq = await rate(N, async () => { for (let i = 0; i < N; i++) await b.send(body(i), {}); });
  const rawSeqB = await rate(N, async () => { for (let i = 0; i < N; i++) await rawSend(pool, i); });
  rows.push(['send, 1 at a time', (rawSeqA + rawSeqB) / 2, qsSeq]);
  const rawRecvA = await rawDrain(pool, N);
  const qsRecv = await backendDrain(b, N);
  const rawRecv = (rawRecvA + (await rawDrain(pool, N))) / 2;

  const rawParA = await rate(N, () => inFlight(N, 32, (i) => rawSend(pool, i)));
  const qsPar = await rate(N, () => inFlight(N, 32, (i) => b.send(body(i), {})));
  const rawParB = await rate(N, () => inFlight(N, 32, (i) => rawSend(pool, i)));
  rows.push(['send, 32 in flight', (rawParA + rawParB) / 2, qsPar]);
  rows.push(['receive + ack, 16 at a time', rawRecv, qsRecv]);
  await pool.query(`DELETE FROM ${TABLE}`);
  await pool.query(`DELETE FROM ${RAW}`);

  // trigger vs depth: 30 sent, 4 held by handlers
  for (let i = 0; i < 30; i++) await b.send(body(i), {});
  const ac = new AbortController();
  let held = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => { held++; await gate; return true; }, { concurrency: 4, signal: ac.signal });
  while (held < 4) await new Promise((r) => setTimeout(r, 20));
  const trigger: ResolvedTrigger = {
    index: 0, type: 'postgresql', metricType: 'AverageValue', subject: 'bench trigger', where: () => ({}),
    metadata: { connection: PG_URL, query: `SELECT count(*) FROM ${TABLE} WHERE queue = '${q}'`, targetQueryValue: '5' },
  };
  const scaler = postgresqlTrigger.create(trigger);
  const depth = await b.depth();
  const metric = await scaler.metricAndActivity();
  ac.abort();
  release();
  await run;
  await scaler.close();
  await b.close();

  const e2eQueue = `${q}-e2e`;
  const e2e = await endToEnd(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.postgresql
  version: v1
  metadata:
  - {name: connectionString, value: "${PG_URL}"}
  - {name: queueName, value: "${e2eQueue}"}
  - {name: table, value: "${TABLE}"}
  - {name: maxConcurrentHandlers, value: "16"}
`, N);
  await pool.query(`DROP TABLE IF EXISTS ${RAW}, ${TABLE}, ${TABLE}_dead_letter`);
  const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version.split(' ')[0] ?? '?';
  await pool.end();

  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const table = [
    '| operation | raw pg (mean of 2 runs) | qscale backend | qscale / raw |',
    '|---|---|---|---|',
    ...rows.map(([name, raw, qs]) => `| ${name} | ${fmt(raw)} msgs/s | ${fmt(qs)} msgs/s | ${(qs / raw).toFixed(2)} |`),
  ].join('\n');
  const text = `\`node dist/bench/broker-postgresql.js ${N}\`: PostgreSQL ${version} on 127.0.0.1 (default durability:
fsync on, synchronous_commit on), messages of the seed's shape, one process. Raw = pg by hand: INSERT per message;
take-and-delete in batches of 16 (no lease, no delivery count, nothing survives a crash mid-work). qscale =
\`bindings.qscale.postgresql\`: INSERT + NOTIFY per send; receive with concurrency 16 = claim with a lease token
(SKIP LOCKED), handler, DELETE by id + token (one per event-loop turn), lease renewal while a handler works.
Ratios move by about ±20 % from run to run on a shared machine.

${table}

End to end through two \`qscale sidecar\` processes (producer's: POST /v1.0/bindings/message-queue, 32 in flight;
consumer's: delivery to an app, 16 at a time): **${fmt(e2e)} msgs/s** from first send to last delivery.

Trigger against the true depth (30 messages, 4 held by handlers), query
\`SELECT count(*) FROM <table> WHERE queue = '<queue>'\`:

| what | value |
|---|---|
| true depth: depth() ready / inFlight | ${depth.ready} / ${depth.inFlight} |
| trigger metric (the query: ready + in flight) | ${metric.value} |

${machineLine()}`;
  console.log(text);
  if (WRITE) await writeSection('PostgreSQL', text);
}

await main();
