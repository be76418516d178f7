/**
 * The PostgreSQL queue's dead letters and purge beyond the conformance file: tables made by the previous qscale keep
 * working, requeue is atomic and goes to the end of the queue, purge around leases, ids that name nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import { failed, type HandlerResult, type QueueMessage } from '../../../src/backends/types.js';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { GIVE_UP_MS, holdOne, receiveFor as receiveForAny, until } from '../embedded/support.js';
import { component, ctx, dropQueue, PG_URL, tableName } from './support.js';

async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** A backend on its own table (dropped after the test); `table` reuses one made beforehand. */
async function open(t: TestContext, extra: Record<string, string> = {}, table = tableName(), queue = uniqueName('q')): Promise<{ b: PostgresBackend; table: string; queue: string }> {
  const b = new PostgresBackend(component({ connectionString: PG_URL, queueName: queue, table, retryBackoff: '0s', ...extra }), ctx());
  t.after(async () => {
    await b.close();
    await dropQueue(table);
  });
  await b.init();
  return { b, table, queue };
}

/** One handler at a time: FIFO order is what these tests read. */
function receiveFor(b: PostgresBackend, ms: number, handler?: (m: QueueMessage) => Promise<HandlerResult>): Promise<QueueMessage[]> {
  return receiveForAny(b, ms, handler, 1);
}

/** Sends the bodies and fails each delivery until all are dead-lettered (maxDeliveryCount 1). */
async function poison(b: PostgresBackend, bodies: string[], result: (m: QueueMessage) => HandlerResult = () => false): Promise<void> {
  for (const body of bodies) await b.send(Buffer.from(body), {});
  let failures = 0;
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS);
  await b.receive(async (m) => {
    if (++failures === bodies.length) ac.abort();
    return result(m);
  }, { concurrency: 1, signal: ac.signal });
  clearTimeout(giveUp);
  await until(async () => (await b.depth()).deadLettered === bodies.length, 'dead-lettered');
}

/** The tables as the previous qscale made them (before dead letters could be shown, requeued and purged by id). */
function previousTables(table: string): string[] {
  const t = `public."${table}"`;
  const dl = `public."${table}_dead_letter"`;
  return [
    `CREATE TABLE ${t} (id bigserial PRIMARY KEY, queue text NOT NULL, data bytea NOT NULL, metadata jsonb NOT NULL DEFAULT '{}',
       enqueued_at timestamptz NOT NULL DEFAULT now(), delivery_count integer NOT NULL DEFAULT 0, lease_token uuid, lease_until timestamptz)`,
    `CREATE INDEX "${table}_queue_id" ON ${t} (queue, id)`,
    `CREATE TABLE ${dl} (id bigint PRIMARY KEY, queue text NOT NULL, data bytea NOT NULL, metadata jsonb NOT NULL DEFAULT '{}',
       enqueued_at timestamptz NOT NULL, delivery_count integer NOT NULL, reason text NOT NULL,
       dead_lettered_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE INDEX "${table}_dead_letter_queue_id" ON ${dl} (queue, id)`,
  ];
}

test('postgresql dead letters - tables made by the previous qscale keep their messages and dead letters, with their times', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const table = tableName();
  const queue = uniqueName('old');
  t.after(() => dropQueue(table));
  for (const stmt of previousTables(table)) await sql(stmt);
  const sentAt = Date.UTC(2026, 0, 2, 3, 4, 5);
  await sql(`INSERT INTO public."${table}" (queue, data, metadata, enqueued_at) VALUES ($1, $2, '{"kind":"old"}', to_timestamp($3))`,
    [queue, Buffer.from('"waiting"'), (sentAt + 1000) / 1000]);
  // An id the sequence has already handed out, as a dead letter moved from the queue table carries.
  await sql(`INSERT INTO public."${table}_dead_letter" (id, queue, data, metadata, enqueued_at, delivery_count, reason, dead_lettered_at)
    VALUES (nextval(pg_get_serial_sequence('public."${table}"', 'id')), $1, $2, '{"kind":"poison"}', to_timestamp($3), 3, 'handler failed 3 deliveries', to_timestamp($4))`,
    [queue, Buffer.from('"poison"'), sentAt / 1000, (sentAt + 5000) / 1000]);

  const { b } = await open(t, {}, table, queue);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 1 });
  const [dead, ...more] = await b.deadLetters(10);
  assert.deepEqual(more, []);
  assert.ok(dead);
  assert.deepEqual({ ...dead, id: undefined, data: dead.data.toString() }, {
    id: undefined, data: '"poison"', metadata: { kind: 'poison' }, deliveryCount: 3, reason: 'handler failed 3 deliveries',
    enqueuedAt: sentAt, deadLetteredAt: sentAt + 5000,
  });
  assert.equal((await b.deadLetter(dead.id))?.reason, 'handler failed 3 deliveries');

  const [waiting] = await receiveFor(b, 500);
  assert.deepEqual([waiting?.data.toString(), waiting?.metadata.kind, waiting?.enqueuedAt], ['"waiting"', 'old', sentAt + 1000]);
  assert.equal(await b.requeueDeadLetters([dead.id]), 1);
  const [again] = await receiveFor(b, 500);
  assert.deepEqual([again?.data.toString(), again?.metadata.kind, again?.deliveryCount], ['"poison"', 'poison', 1]);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('postgresql dead letters - a requeue goes behind the waiting messages, oldest dead letter first, as a new message', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { maxDeliveryCount: '1' });
  await poison(b, ['"a"', '"b"'], () => failed('app answered 503: busy'));
  const dead = await b.deadLetters(10);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"a"', '"b"']);
  assert.deepEqual(dead.map((d) => d.reason), Array(2).fill('MaxDeliveryCountExceeded: failed on delivery 1 of 1: app answered 503: busy'));
  assert.ok(dead.every((d) => (d.deadLetteredAt ?? 0) >= (d.enqueuedAt ?? Infinity)), 'dead-lettered after it was enqueued');
  assert.deepEqual((await b.deadLetters(1)).map((d) => d.data.toString()), ['"a"'], 'limit keeps the oldest');
  await b.send(Buffer.from('"c"'), {});
  assert.equal(await b.requeueDeadLetters([dead[1]?.id ?? '', dead[0]?.id ?? '', dead[0]?.id ?? '']), 2, 'each named one once');
  const got = await receiveFor(b, 500);
  assert.deepEqual(got.map((m) => [m.data.toString(), m.deliveryCount]), [['"c"', 1], ['"a"', 1], ['"b"', 1]]);
  const [c, a, bee] = got;
  assert.ok(a && bee && c);
  assert.ok(!dead.some((d) => d.id === a.id || d.id === bee.id), 'requeued as new rows');
  assert.ok((a.enqueuedAt ?? 0) >= (c.enqueuedAt ?? Infinity), 'enqueued at the requeue, after the message that was waiting');
});

test('postgresql dead letters - two requeues of one dead letter at once move it once', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b, table, queue } = await open(t, { maxDeliveryCount: '1' });
  const other = new PostgresBackend(component({ connectionString: PG_URL, queueName: queue, table }), ctx());
  t.after(() => other.close());
  await other.init();
  await poison(b, ['"once"']);
  const [dead] = await b.deadLetters(10);
  assert.ok(dead);
  const moved = await Promise.all([b.requeueDeadLetters([dead.id]), other.requeueDeadLetters('all'), b.requeueDeadLetters([dead.id])]);
  assert.equal(moved.reduce((x, y) => x + y, 0), 1, `moved ${moved.join(' + ')}`);
  const rows = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM public."${table}" WHERE queue = $1`, [queue]);
  assert.equal(rows[0]?.n, 1, 'one message in the queue');
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
});

test('postgresql dead letters - ids that name no row show, move and delete nothing, without an error', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { maxDeliveryCount: '1' });
  await poison(b, ['"kept"']);
  const [dead] = await b.deadLetters(10);
  assert.ok(dead);
  for (const id of ['abc', '-1', '1.5', '', ' 1', '99999999999999999999', '9223372036854775808']) {
    assert.equal(await b.deadLetter(id), undefined, `deadLetter('${id}')`);
    assert.equal(await b.requeueDeadLetters([id]), 0, `requeue '${id}'`);
    assert.equal(await b.purgeDeadLetters([id]), 0, `purge '${id}'`);
  }
  assert.equal(await b.requeueDeadLetters([]), 0);
  assert.equal(await b.purgeDeadLetters([]), 0);
  assert.equal((await b.deadLetter(dead.id))?.data.toString(), '"kept"');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
});

test('postgresql dead letters - ids name dead letters of their own queue only: another queue in the same table is untouched', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b, table } = await open(t, { maxDeliveryCount: '1' });
  const other = new PostgresBackend(component({ connectionString: PG_URL, queueName: uniqueName('other'), table }), ctx());
  t.after(() => other.close());
  await other.init();
  await poison(b, ['"mine"']);
  const [dead] = await b.deadLetters(10);
  assert.ok(dead);
  assert.equal(await other.deadLetter(dead.id), undefined);
  assert.equal(await other.requeueDeadLetters([dead.id]), 0);
  assert.equal(await other.purgeDeadLetters('all'), 0);
  assert.equal(await other.purge(), 0);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
});

test('postgresql dead letters - purge leaves a message in a handler alone, takes one waiting out its backoff, and leaves an expired last lease to be dead-lettered', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b, table, queue } = await open(t, { retryBackoff: '30s', maxDeliveryCount: '2' });
  await b.send(Buffer.from('"backing off"'), {});
  await receiveFor(b, 500, async () => false);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 }, 'waiting out its backoff counts as ready');
  // As a receiver killed during the last allowed delivery leaves a row: the sweep dead-letters it, purge does not take it.
  await sql(`INSERT INTO public."${table}" (queue, data, delivery_count, lease_token, lease_until)
    VALUES ($1, $2, 2, gen_random_uuid(), now() - interval '1 second')`, [queue, Buffer.from('"orphan"')]);
  await b.send(Buffer.from('"held"'), {});
  await b.send(Buffer.from('"waiting"'), {});
  const holder = holdOne(b);
  try {
    await until(() => holder.seen.length === 1, 'a message in the handler');
    assert.deepEqual(holder.seen, ['"held"']);
    assert.equal(await b.purge(), 2, 'the backed-off and the waiting message');
    await until(async () => (await b.depth()).deadLettered === 1, 'the expired last lease dead-lettered');
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 1, deadLettered: 1 });
  } finally {
    await holder.stop();
  }
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 }, 'the held message was completed by its handler');
  const [dead] = await b.deadLetters(1);
  assert.equal(dead?.data.toString(), '"orphan"');
  assert.match(dead?.reason ?? '', /^MaxDeliveryCountExceeded: lease expired on the last of 2 deliveries/);
  assert.equal(await b.purge(), 0, 'purging an empty queue is harmless');
});

test('postgresql dead letters - a thrown error is the reason, and a long one is cut', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { maxDeliveryCount: '1' });
  await b.send(Buffer.from('"short"'), {});
  await b.send(Buffer.from('"long"'), {});
  let failures = 0;
  const ac = new AbortController();
  await b.receive(async (m) => {
    if (++failures === 2) ac.abort();
    throw new Error(m.data.toString() === '"short"' ? 'connect ECONNREFUSED 127.0.0.1:3000' : `x${'y'.repeat(5000)}`);
  }, { concurrency: 1, signal: ac.signal });
  await until(async () => (await b.depth()).deadLettered === 2, 'dead-lettered');
  const [short, long] = await b.deadLetters(10);
  assert.equal(short?.reason, 'MaxDeliveryCountExceeded: failed on delivery 1 of 1: the handler threw: connect ECONNREFUSED 127.0.0.1:3000');
  assert.match(long?.reason ?? '', /^MaxDeliveryCountExceeded: failed on delivery 1 of 1: the handler threw: xy+$/);
  assert.ok((long?.reason.length ?? 0) < 1100, `cut to about a thousand characters, got ${long?.reason.length}`);
});
