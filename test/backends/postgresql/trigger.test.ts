import { test, type TestContext } from 'node:test';
import pg from 'pg';
import assert from 'node:assert/strict';
import { TRIGGER_READ_TIMEOUT_MS } from '../../../src/backends/trigger-support.js';
import { BrokerError, ConfigError } from '../../../src/errors.js';
import { postgresqlTrigger, queueFromQuery } from '../../../src/backends/postgresql/index.js';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import { createScaler } from '../../../src/backends/registry.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import { closedPort, holdOne, needBroker, requireBroker, runAlone, silentServer, uniqueName } from '../../support/brokers.js';
import { component, ctx, dropQueue, PG_URL, tableName } from './support.js';

/** Lines of the (imaginary) ScaledObject: each metadata key on its own line from 20 on. */
function trigger(metadata: Record<string, string>): ResolvedTrigger {
  const keys = Object.keys(metadata);
  return {
    index: 0,
    type: 'postgresql',
    metricType: 'AverageValue',
    metadata,
    subject: 'trigger 0 (postgresql) of ScaledObject consumer-scaler',
    where: (field) => ({ file: 'scaledobject.yaml', line: field && keys.includes(field) ? 20 + keys.indexOf(field) : 18 }),
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test("postgresql trigger - the queue name is read from the documented query shape", { timeout: 120_000 }, () => {
  assert.equal(queueFromQuery("SELECT count(*) FROM qscale_queue WHERE queue = 'msgqueue'"), 'msgqueue');
  assert.equal(queueFromQuery("select COUNT(*) from public.qscale_queue where queue='jobs';"), 'jobs');
  assert.equal(queueFromQuery('SELECT max(id) FROM t'), undefined);
  const p = postgresqlTrigger.parseQueueParams(
    trigger({ connection: PG_URL, query: "SELECT count(*) FROM qscale_queue WHERE queue = 'msgqueue'", targetQueryValue: '5' }),
  );
  assert.deepEqual(p, { queueName: 'msgqueue', target: 5, activationTarget: 0 });
});

test('postgresql trigger accepts any query, as KEDA; only --embedded needs the queue, named by the queueName extension', { timeout: 120_000 }, () => {
  // Broker-native: any query is accepted (KEDA runs whatever returns one number); it measures no single queue.
  void postgresqlTrigger.create(trigger({ connection: PG_URL, query: 'SELECT 42', targetQueryValue: '5' })).close();
  assert.deepEqual(postgresqlTrigger.parseQueueParams(trigger({ connection: PG_URL, query: 'SELECT 42', targetQueryValue: '5' })), {
    queueName: '',
    target: 5,
    activationTarget: 0,
  });
  // --embedded serves a queue: without one it refuses, at the trigger, with the way out.
  const err = configError(() =>
    createScaler(trigger({ connection: PG_URL, query: 'SELECT 42', targetQueryValue: '5' }), { embedded: true, dataDir: '.qscale-test' }),
  );
  assert.match(err.message, /^scaledobject\.yaml:18: trigger 0 \(postgresql\) of ScaledObject consumer-scaler: --embedded cannot serve this trigger: it measures no single queue; add metadata 'queueName'/);
  const p = postgresqlTrigger.parseQueueParams(
    trigger({ connection: PG_URL, query: 'SELECT 42', targetQueryValue: '2.5', activationTargetQueryValue: '3', queueName: 'jobs' }),
  );
  assert.deepEqual(p, { queueName: 'jobs', target: 2.5, activationTarget: 3 });
});

test('postgresql trigger - missing targetQueryValue and missing host fields are named as KEDA names them', { timeout: 120_000 }, () => {
  const q = "SELECT count(*) FROM t WHERE queue = 'q'";
  assert.match(configError(() => postgresqlTrigger.parseQueueParams(trigger({ connection: PG_URL, query: q }))).message, /no targetQueryValue given/);
  const err = configError(() =>
    postgresqlTrigger.parseQueueParams(trigger({ host: '127.0.0.1', port: '5432', dbName: 'postgres', sslmode: 'disable', query: q, targetQueryValue: '5' })),
  );
  assert.match(err.message, /no userName given/);
  assert.match(configError(() => postgresqlTrigger.parseQueueParams(trigger({ connection: PG_URL, targetQueryValue: '5' }))).message, /missing required metadata 'query'/);
});

test('postgresql trigger - the metric equals the true queue depth, ready and in flight, through host/port fields', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const table = tableName();
  const queue = uniqueName('q');
  const b = new PostgresBackend(component({ connectionString: PG_URL, queueName: queue, table }), ctx());
  await b.init();
  const scaler = postgresqlTrigger.create(
    trigger({
      host: '127.0.0.1', port: '5432', userName: 'postgres', dbName: 'postgres', sslmode: 'disable',
      query: `SELECT count(*) FROM ${table} WHERE queue = '${queue}'`, targetQueryValue: '5', activationTargetQueryValue: '2',
    }),
  );
  t.after(async () => {
    await scaler.close();
    await b.close();
    await dropQueue(table);
  });
  assert.deepEqual(await scaler.metricAndActivity(), { value: 0, active: false });
  for (let i = 0; i < 2; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 2, active: false }, 'not above the activation value');
  for (let i = 0; i < 5; i++) await b.send(Buffer.from('1'), {});
  const holding = await holdOne(b);
  const depth = await b.depth();
  assert.deepEqual(depth, { ready: 6, inFlight: 1, deadLettered: 0 });
  assert.deepEqual(await scaler.metricAndActivity(), { value: depth.ready + depth.inFlight, active: true });
  await holding.stop();
  assert.equal((await scaler.metricAndActivity()).value, 6);
  assert.equal(scaler.metricName, 's0-postgresql');
  assert.equal(scaler.target, 5);
});

test('postgresql trigger - a wrong database gives an error naming the trigger and the server, not the password', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const scaler = postgresqlTrigger.create(
    trigger({ connection: 'postgres://postgres:Hush123@127.0.0.1:5432/no_such_db', query: "SELECT count(*) FROM t WHERE queue = 'q'", targetQueryValue: '5' }),
  );
  t.after(() => scaler.close());
  const err = await scaler.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, /trigger 0 \(postgresql\) of ScaledObject consumer-scaler: cannot read the query's value \(queue q\) at PostgreSQL postgres@127\.0\.0\.1:5432\/no_such_db: .*no_such_db/);
  assert.doesNotMatch(err.message, /Hush123/);
});

const QUERY = "SELECT count(*) FROM qscale_queue WHERE queue = 'q'";

test('postgresql trigger - nothing listening rejects naming the server, the password never', { timeout: 30_000 }, async (t) => {
  const port = await closedPort();
  const scaler = postgresqlTrigger.create(trigger({ connection: `postgres://postgres:Hush123@127.0.0.1:${port}/postgres`, query: QUERY, targetQueryValue: '5' }));
  t.after(() => scaler.close());
  const err = await scaler.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.equal(
    err.message,
    `trigger 0 (postgresql) of ScaledObject consumer-scaler: cannot read the query's value (queue q) at PostgreSQL postgres@127.0.0.1:${port}/postgres: connection refused (is PostgreSQL running on that host and port?)`,
  );
});

test('postgresql trigger - a server that accepts and never answers is a bounded error, not a hang', { timeout: 30_000 }, async (t) => {
  const silent = await silentServer();
  t.after(() => silent.close());
  const scaler = postgresqlTrigger.create(trigger({ connection: `postgres://postgres@127.0.0.1:${silent.port}/postgres`, query: QUERY, targetQueryValue: '5' }));
  t.after(() => scaler.close());
  await assert.rejects(scaler.metricAndActivity(), new RegExp(`cannot read the query's value \\(queue q\\) at PostgreSQL postgres@127\\.0\\.0\\.1:${silent.port}/postgres: (no answer within ${TRIGGER_READ_TIMEOUT_MS} ms|.*timeout)`, 'i'));
});

test('postgresql trigger - a queue table that does not exist is named in the error', { timeout: 30_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const table = tableName();
  const scaler = postgresqlTrigger.create(trigger({ connection: PG_URL, query: `SELECT count(*) FROM ${table} WHERE queue = 'q'`, targetQueryValue: '5' }));
  t.after(() => scaler.close());
  await assert.rejects(scaler.metricAndActivity(), new RegExp(`cannot read the query's value \\(queue q\\) at PostgreSQL .*: relation "${table}" does not exist`));
});

test('postgresql trigger - close() releases the connection: a process that queried and closed exits by itself', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const run = await runAlone(
    `
const trig = (md) => ({ index: 0, type: 'postgresql', metricType: 'AverageValue', metadata: md, subject: 'trigger 0 (postgresql) of ScaledObject s', where: () => ({}) });
const md = { connection: ${JSON.stringify(PG_URL)}, query: "SELECT 3", queueName: 'q', targetQueryValue: '5' };
const a = pg.postgresqlTrigger.create(trig(md));
console.log('values', (await Promise.all([a.metricAndActivity(), a.metricAndActivity()])).map((m) => m.value).join(','));
await a.close();
console.log('after close:', await a.metricAndActivity().then(() => 'read', (e) => e.message));
const b = pg.postgresqlTrigger.create(trig(md));
const pending = b.metricAndActivity().then(() => 'read', (e) => e.message);
await b.close();
console.log('mid-connect:', await pending);
`,
    { from: import.meta.url, imports: { pg: '../../../src/backends/postgresql/index.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /values 3,3/);
  assert.match(run.stdout, /after close: trigger 0 \(postgresql\) of ScaledObject s: the trigger was closed/);
});

/** A table of its own with rows (n int, label text), dropped when the test ends. */
async function tableWith(t: TestContext, rows: Array<[number | null, string]>): Promise<string> {
  const table = tableName();
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`CREATE TABLE ${table} (n int, label text)`);
    for (const [n, label] of rows) await c.query(`INSERT INTO ${table} VALUES ($1, $2)`, [n, label]);
  } finally {
    await c.end();
  }
  t.after(() => dropQueue(table));
  return table;
}

async function rowCount(table: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  } finally {
    await c.end();
  }
}

test('postgresql trigger runs an arbitrary query, as KEDA: the metric is the first column of its first row, numbers as text included', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const table = await tableWith(t, [[4, 'a'], [9, 'b'], [2, '12.5']]);
  const make = (query: string, activation = '0'): ReturnType<typeof postgresqlTrigger.create> => {
    const s = postgresqlTrigger.create(trigger({ connection: PG_URL, query, targetQueryValue: '5', activationTargetQueryValue: activation }));
    t.after(() => s.close());
    return s;
  };
  assert.deepEqual(await make(`SELECT max(n), min(n) FROM ${table}`).metricAndActivity(), { value: 9, active: true });
  assert.deepEqual(await make(`SELECT sum(n)::numeric / 2 FROM ${table}`, '7.5').metricAndActivity(), { value: 7.5, active: false }, 'numeric arrives as text');
  assert.deepEqual(await make(`SELECT label FROM ${table} WHERE n = 2`).metricAndActivity(), { value: 12.5, active: true }, 'text that is a number');
  assert.deepEqual(await make(`SELECT n FROM ${table} ORDER BY n`).metricAndActivity(), { value: 2, active: true }, 'the first row');
});

test('postgresql trigger refuses a query result that is no number, NULL or no row at all, as KEDA', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const table = await tableWith(t, [[null, 'many']]);
  const cases: Array<[string, RegExp]> = [
    [`SELECT n FROM ${table}`, /it returned NULL$/],
    [`SELECT n FROM ${table} WHERE false`, /it returned no row$/],
    [`SELECT label FROM ${table}`, /it returned 'many', which is not a number$/],
    ['SELECT true', /it returned a boolean, which is not a number$/],
  ];
  for (const [query, re] of cases) {
    const s = postgresqlTrigger.create(trigger({ connection: PG_URL, query, targetQueryValue: '5' }));
    t.after(() => s.close());
    const err = await s.metricAndActivity().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof BrokerError, `${query}: ${String(err)}`);
    assert.match(err.message, /^trigger 0 \(postgresql\) of ScaledObject consumer-scaler: the query must return a number in the first column of its first row, /);
    assert.match(err.message, re, query);
  }
});

test('postgresql trigger measures without changing data: a query that writes fails in its read-only transaction, one statement only', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const table = await tableWith(t, [[1, 'x']]);
  const writes = postgresqlTrigger.create(trigger({ connection: PG_URL, query: `INSERT INTO ${table} VALUES (5, 'y') RETURNING n`, targetQueryValue: '5' }));
  const smuggled = postgresqlTrigger.create(trigger({ connection: PG_URL, query: `SELECT 1; DELETE FROM ${table}`, targetQueryValue: '5' }));
  const after = postgresqlTrigger.create(trigger({ connection: PG_URL, query: `SELECT count(*) FROM ${table}`, targetQueryValue: '5' }));
  t.after(async () => {
    await writes.close();
    await smuggled.close();
    await after.close();
  });
  await assert.rejects(writes.metricAndActivity(), /cannot execute INSERT in a read-only transaction \(the query runs in a read-only transaction: it may only read\)/);
  await assert.rejects(smuggled.metricAndActivity(), /cannot insert multiple commands into a prepared statement/);
  assert.equal(await rowCount(table), 1);
  // The connection that failed is usable again: the next read of the same trigger works.
  assert.deepEqual(await after.metricAndActivity(), { value: 1, active: true });
  await assert.rejects(writes.metricAndActivity(), /read-only transaction/);
});

test('postgresql trigger bounds a slow query on the server too: it is cancelled, named, and the next read answers', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'postgresql'))) return;
  const marker = uniqueName('slow');
  const slow = postgresqlTrigger.create(trigger({ connection: PG_URL, query: `SELECT 1 FROM pg_sleep(30) -- ${marker}`, targetQueryValue: '5' }));
  t.after(() => slow.close());
  await assert.rejects(slow.metricAndActivity(), /cannot read the query's value at PostgreSQL postgres@127\.0\.0\.1:5432\/postgres: (canceling statement due to statement timeout|no answer within \d+ ms|Query read timeout)/);
  // The server gave up on it: nothing of the trigger's is still running there.
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  t.after(() => c.end());
  let running = 1;
  for (let i = 0; i < 50 && running > 0; i++) {
    running = Number((await c.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'qscale:keda-postgresql' AND query LIKE $1 AND state = 'active'", [`%${marker}%`])).rows[0].n);
    if (running > 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(running, 0);
});
