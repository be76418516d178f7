/**
 * What an idle PostgreSQL receiver costs the server: transactions per second while receive() runs on an empty queue
 * (xact_commit + xact_rollback of pg_stat_database over a window). The receiver works in a database of its own, so
 * nothing else on the server is counted; the counters are read from another database.
 *
 * Run: npm run build && node dist/bench/postgresql-idle.js [seconds] [--no-write]
 */
import pg from 'pg';
import pino from 'pino';
import { postgresqlBackend } from '../src/backends/postgresql/index.js';
import type { ResolvedComponent } from '../src/backends/types.js';
import { machineLine, writeSection } from './report.js';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const DB = 'qscale_bench_idle';
const args = process.argv.slice(2);
const SECONDS = Number(args.find((a) => /^\d+$/.test(a)) ?? 10);
const WRITE = !args.includes('--no-write');

async function transactions(admin: pg.Client): Promise<number> {
  // Statistics reach pg_stat_database when a backend reports them (at most every second or so for an idle one).
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const r = await admin.query<{ n: string }>(
    'SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = $1', [DB]);
  return Number(r.rows[0]?.n ?? 0);
}

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DB}`);
  const component: ResolvedComponent = {
    name: 'idle-queue', type: 'bindings.qscale.postgresql', version: 'v1',
    metadata: { connectionString: `${SERVER}/${DB}`, queueName: `idle-${process.pid}` },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'bench', line: 1, where: () => ({}),
  };
  const b = postgresqlBackend.create(component, { logger: pino({ level: 'silent' }), dataDir: '.' });
  await b.init();
  const ac = new AbortController();
  const run = b.receive(async () => true, { concurrency: 1, signal: ac.signal });
  // Settle: the first claim, the LISTEN connection, a stats report.
  await new Promise((r) => setTimeout(r, 2000));
  const before = await transactions(admin);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  ac.abort();
  await run;
  // The receiver's last counters reach the statistics a moment after it stops.
  await new Promise((r) => setTimeout(r, 1500));
  const after = await transactions(admin);
  await b.close();
  await admin.end();
  const perSecond = (after - before) / elapsed;
  const text = `\`node dist/bench/postgresql-idle.js ${SECONDS}\`: one \`bindings.qscale.postgresql\` receiver (concurrency 1,
default metadata: pollInterval 1s) on an empty queue, in a database of its own; transactions = the delta of
xact_commit + xact_rollback in pg_stat_database over ${SECONDS} s.

- idle receiver: **${perSecond.toFixed(1)} transactions/s** (${after - before} in ${elapsed.toFixed(1)} s)

Before defaults were parsed like explicit values, pollInterval's default stayed the string '1s': the idle loop
waited about 1 ms between claims and never ran the sweep of expired last-chance leases — **604 transactions/s**,
measured the same way on the same machine.

${machineLine()}`;
  console.log(text);
  if (WRITE) await writeSection('PostgreSQL idle receiver', text);
}

await main();
