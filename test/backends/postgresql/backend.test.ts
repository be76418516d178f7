import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { BrokerError } from '../../../src/errors.js';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { needBroker } from '../../support/brokers.js';
import { component, ctx, killConnectionsWithin, open, PG_URL } from './support.js';

/** The application names of the server's sessions, to say what a kill found when it found nothing. */
async function sessionNames(): Promise<string> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const r = await c.query<{ name: string; n: number }>("SELECT application_name AS name, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1");
    return r.rows.map((x) => `${x.name || '(none)'} × ${x.n}`).join(', ');
  } finally {
    await c.end();
  }
}

/** Receives until `until` says stop, then aborts and waits for the drain. */
async function receiveUntil(
  b: PostgresBackend,
  handler: (m: QueueMessage) => Promise<boolean>,
  until: () => boolean,
  concurrency = 1,
): Promise<void> {
  const ac = new AbortController();
  const done = b.receive(
    async (m) => {
      const ok = await handler(m);
      if (until()) ac.abort();
      return ok;
    },
    { concurrency, signal: ac.signal },
  );
  await done;
}

test('postgresql backend - messages arrive in send order with their bytes and metadata, then the queue is empty', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t);
  for (let i = 0; i < 5; i++) await b.send(Buffer.from(JSON.stringify({ n: i })), { 'content-type': 'application/json', n: String(i) });
  assert.deepEqual(await b.depth(), { ready: 5, inFlight: 0, deadLettered: 0 });
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 5);
  assert.deepEqual(got.map((m) => m.data.toString()), [0, 1, 2, 3, 4].map((n) => JSON.stringify({ n })));
  assert.deepEqual(got.map((m) => m.metadata.n), ['0', '1', '2', '3', '4']);
  assert.ok(got.every((m) => m.deliveryCount === 1));
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('postgresql backend - a failed message is redelivered with a higher count, then dead-lettered after maxDeliveryCount', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { maxDeliveryCount: '3' });
  await b.send(Buffer.from('"poison"'), {});
  const counts: number[] = [];
  await receiveUntil(b, async (m) => (counts.push(m.deliveryCount), false), () => counts.length === 3);
  assert.deepEqual(counts, [1, 2, 3]);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  const dead = await b.deadLetters(10);
  assert.equal(dead.length, 1);
  assert.equal(dead[0]?.data.toString(), '"poison"');
  assert.equal(dead[0]?.deliveryCount, 3);
  assert.match(dead[0]?.reason ?? '', /^MaxDeliveryCountExceeded: failed on delivery 3 of 3: the handler reported failure$/);
});

test('postgresql backend - the lease is renewed while a handler works longer than the visibility timeout', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { visibilityTimeoutInSec: '1' });
  await b.send(Buffer.from('"slow"'), {});
  const seen: number[] = [];
  const ac = new AbortController();
  let other: Promise<void> | undefined;
  await receiveUntil(
    b,
    async (m) => {
      seen.push(m.deliveryCount);
      // a second receiver would take the message if its lease lapsed
      other = b.receive(async (m2) => (seen.push(m2.deliveryCount), true), { concurrency: 1, signal: ac.signal });
      await new Promise((r) => setTimeout(r, 2500));
      return true;
    },
    () => true,
  );
  ac.abort();
  await other;
  assert.deepEqual(seen, [1], 'delivered once although the handler outlived three visibility timeouts');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('postgresql backend - a receiver whose lease expired cannot complete the message another receiver holds', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b, table } = await open(t);
  await b.send(Buffer.from('"contested"'), {});
  const counts: number[] = [];
  const acA = new AbortController();
  let bHasIt!: () => void;
  const bHasItP = new Promise<void>((r) => (bHasIt = r));
  // A takes the message, then its lease runs out (forced here) and B takes it over.
  const receiveA = b.receive(
    async (m) => {
      counts.push(m.deliveryCount);
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`UPDATE public."${table}" SET lease_until = now() - interval '1 second'`);
      await c.end();
      await bHasItP;
      acA.abort();
      return true; // A's completion carries a stale lease token
    },
    { concurrency: 1, signal: acA.signal },
  );
  const acB = new AbortController();
  const receiveB = b.receive(
    async (m) => {
      counts.push(m.deliveryCount);
      if (m.deliveryCount === 2) {
        bHasIt();
        await receiveA; // A's outcome was applied before B answers
        return false;
      }
      acB.abort();
      return true;
    },
    { concurrency: 1, signal: acB.signal },
  );
  await receiveB;
  assert.deepEqual(counts, [1, 2, 3], "A's stale completion did not remove the message B still held");
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('postgresql backend - aborting drains: the handler in progress finishes and its message is acked', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t);
  await b.send(Buffer.from('1'), {});
  await b.send(Buffer.from('2'), {});
  const ac = new AbortController();
  const handled: string[] = [];
  await b.receive(
    async (m) => {
      ac.abort();
      await new Promise((r) => setTimeout(r, 200));
      handled.push(m.data.toString());
      return true;
    },
    { concurrency: 1, signal: ac.signal },
  );
  assert.deepEqual(handled, ['1']);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
});

test('postgresql backend - connections killed by the server mid-stream lose no message', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { visibilityTimeoutInSec: '2' });
  const appName = 'qscale:message-queue';
  const total = 60;
  for (let i = 0; i < total / 2; i++) await b.send(Buffer.from(String(i)), {});
  const got = new Set<string>();
  let killed = 0;
  await receiveUntil(
    b,
    async (m) => {
      got.add(m.data.toString());
      if (got.size === 10 || got.size === 25) {
        const first = got.size === 10 ? total / 2 : (total * 3) / 4;
        killed += await killConnectionsWithin(appName, 5000);
        // sends right after the kill go through a fresh connection
        for (let i = 0; i < total / 4; i++) await b.send(Buffer.from(String(first + i)), {});
      }
      return true;
    },
    () => got.size === total,
    3,
  );
  assert.ok(killed >= 1, `the test killed live connections (sessions now: ${await sessionNames()})`);
  assert.equal(got.size, total);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('postgresql backend - an unknown user fails init naming the component and the server, never the password', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const b = new PostgresBackend(
    component({ connectionString: 'postgres://nobody_here:Sup3rSecret@127.0.0.1:5432/postgres', queueName: 'q' }),
    ctx(),
  );
  t.after(() => b.close());
  const err = await b.init().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, /^component message-queue \(bindings\.qscale\.postgresql\): cannot use PostgreSQL at nobody_here@127\.0\.0\.1:5432\/postgres: .*nobody_here/);
  assert.doesNotMatch(err.message, /Sup3rSecret/);
});

test('postgresql backend - an unreachable server fails init within initTimeout with a clear error', { timeout: 120_000 }, async (t) => {
  const b = new PostgresBackend(
    component({ connectionString: 'host=10.255.255.1 port=5432 user=postgres password=pw dbname=postgres', queueName: 'q' }, '  initTimeout: 1s\n'),
    ctx(),
  );
  t.after(() => b.close());
  const err = await b.init().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, /component message-queue \(bindings\.qscale\.postgresql\): cannot use PostgreSQL at postgres@10\.255\.255\.1:5432\/postgres: /);
  assert.doesNotMatch(err.message, /password=pw/);
});

test('postgresql backend - with the default pollInterval, a message whose last allowed lease expired is dead-lettered and leaves the count', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  // Default metadata only (pollInterval 1s): the sweep of expired last-chance leases must run on its own.
  const { b, table } = await open(t, { maxDeliveryCount: '2' });
  await b.send(Buffer.from('"orphan"'), {});
  // As a receiver killed during the last allowed delivery leaves it: delivered twice, lease run out.
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`UPDATE public."${table}" SET delivery_count = 2, lease_token = gen_random_uuid(), lease_until = now() - interval '1 second'`);
  } finally {
    await c.end();
  }
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  const delivered: number[] = [];
  const ac = new AbortController();
  const receiving = b.receive(async (m) => (delivered.push(m.deliveryCount), true), { concurrency: 1, signal: ac.signal });
  try {
    const end = Date.now() + 30_000;
    while ((await b.depth()).deadLettered === 0) {
      if (Date.now() > end) assert.fail('the expired last-chance message was never dead-lettered');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    ac.abort();
    await receiving;
  }
  assert.deepEqual(delivered, [], 'not handed to the app a third time');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  const [dead] = await b.deadLetters(1);
  assert.match(dead?.reason ?? '', /lease expired on the last of 2 deliveries/);
  const counted = new pg.Client({ connectionString: PG_URL });
  await counted.connect();
  try {
    const r = await counted.query<{ n: number }>(`SELECT count(*)::int AS n FROM public."${table}"`);
    assert.equal(r.rows[0]?.n, 0, "the trigger's query (a count of the queue table) no longer counts it");
  } finally {
    await counted.end();
  }
});
