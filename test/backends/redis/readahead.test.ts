/**
 * Read-ahead of bindings.qscale.redis (readAheadCount): a receiver holds entries beyond its free handler slots. Stopping
 * hands them back at once, with the delivery count they had before the read, so another consumer takes them and
 * maxDeliveryCount still counts real deliveries; a consumer killed with a buffer loses nothing either.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { redisBackend } from '../../../src/backends/redis/index.js';
import { hasDeadLetters, type Backend } from '../../../src/backends/types.js';
import { HANDED_BACK } from '../../../src/backends/redis/stream.js';
import { REDIS_ADDR, component, ctx, deleteKeys, eventually, withRedis } from './helpers.js';

function streamFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteKeys(q, `${q}:dlq`).catch(() => undefined));
  return q;
}

async function open(t: TestContext, queue: string, extra: Record<string, string>): Promise<Backend> {
  const b = redisBackend.create(component({ redisHost: REDIS_ADDR, queueName: queue, reconnectWaitInSeconds: '0.2', ...extra }), ctx);
  t.after(() => b.close());
  await b.init();
  return b;
}

async function sendAll(b: Backend, n: number, body = (i: number): string => String(i)): Promise<void> {
  for (let i = 0; i < n; i++) await b.send(Buffer.from(body(i)), {});
}

/** The group's pending entries: owner, idle time and delivery count (XPENDING, extended form). */
async function pending(q: string): Promise<Array<{ id: string; owner: string; idleMs: number; count: number }>> {
  return withRedis(async (r) => {
    const rows = (await r.call('XPENDING', q, 'qscale', '-', '+', '1000')) as Array<[string, string, number, number]>;
    return rows.map(([id, owner, idle, count]) => ({ id, owner, idleMs: Number(idle), count: Number(count) }));
  });
}

const streamLength = (q: string): Promise<number> => withRedis((r) => r.xlen(q));

/** Every delivery: body → the delivery counts it came with. */
function recorder(): { seen: Map<string, number[]>; record: (body: string, count: number) => void; total: () => number } {
  const seen = new Map<string, number[]>();
  return {
    seen,
    record: (body, count) => seen.set(body, [...(seen.get(body) ?? []), count]),
    total: () => [...seen.values()].reduce((n, c) => n + c.length, 0),
  };
}

/**
 * A receiver whose handlers record each delivery and then wait for release(); stop() aborts it and waits. Its first
 * delivery answers at once: a receiver reads ahead only for handlers it has seen answer quickly.
 */
function gated(b: Backend, rec: ReturnType<typeof recorder>, concurrency: number): { release: () => void; stop: () => Promise<void> } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const ac = new AbortController();
  let first = true;
  const run = b.receive(async (m) => {
    rec.record(m.data.toString(), m.deliveryCount);
    if (first) {
      first = false;
      return true;
    }
    await gate;
    return true;
  }, { concurrency, signal: ac.signal });
  return { release, stop: async () => {
    ac.abort();
    release();
    await run;
  } };
}

test('redis read-ahead - a stop with a full buffer hands it back at once: claimable, delivery count unchanged, each message processed once', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-stop');
  // A visibility timeout far longer than the test: whatever comes to the second consumer came by the hand-back.
  const a = await open(t, q, { readAheadCount: '8', visibilityTimeoutInSeconds: '600' });
  await sendAll(a, 21);
  const rec = recorder();
  const first = gated(a, rec, 1);
  // The first answered at once; then one at work, eight read ahead: nine pending under this consumer.
  const held = await eventually(() => pending(q), (p) => p.length === 9);
  assert.equal(held.length, 9);
  assert.equal(rec.total(), 2);
  // Read ahead is still waiting work: ready, as on every backend; only the one at work is in flight.
  assert.deepEqual((await a.depth()), { ready: 19, inFlight: 1, deadLettered: 0 });
  await first.stop();
  // The one handled is acked; the eight buffered ones are handed back, never having reached a handler.
  const back = await pending(q);
  assert.equal(back.length, 8);
  for (const p of back) {
    assert.equal(p.owner, HANDED_BACK, `entry ${p.id} is held by ${p.owner}`);
    assert.equal(p.count, 0, `entry ${p.id}: its delivery count was raised by a read that delivered nothing`);
    assert.ok(p.idleMs >= 600_000, `entry ${p.id} is not claimable yet (idle ${p.idleMs} ms)`);
  }
  assert.equal(await streamLength(q), 19);
  assert.deepEqual((await a.depth()), { ready: 19, inFlight: 0, deadLettered: 0 });
  // Another consumer takes the rest: every message exactly once overall, each on its first delivery.
  const b = await open(t, q, { readAheadCount: '8', visibilityTimeoutInSeconds: '600' });
  const ac2 = new AbortController();
  const run2 = b.receive(async (m) => (rec.record(m.data.toString(), m.deliveryCount), true), { concurrency: 1, signal: ac2.signal });
  await eventually(async () => (await streamLength(q)) + (await pending(q)).length, (n) => n === 0, 200, 100);
  ac2.abort();
  await run2;
  assert.equal(rec.seen.size, 21);
  assert.deepEqual([...rec.seen.entries()].filter(([, c]) => c.join() !== '1'), [], 'a message delivered twice or with a raised count');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('redis read-ahead - a poison message handed back is still dead-lettered after exactly maxDeliveryCount deliveries', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-poison');
  const extra = { readAheadCount: '4', maxDeliveryCount: '2', visibilityTimeoutInSeconds: '600', retryBackoff: '0s', retryBackoffMax: '0s' };
  const a = await open(t, q, extra);
  await sendAll(a, 4, (i) => ['warm', 'first', 'poison', 'last'][i] as string);
  const rec = recorder();
  const first = gated(a, rec, 1);
  // 'poison' and 'last' wait in the buffer behind 'first'; the stop hands them back.
  await eventually(() => pending(q), (p) => p.length === 3);
  await first.stop();
  const b = await open(t, q, extra);
  assert.ok(hasDeadLetters(b));
  const ac2 = new AbortController();
  const run2 = b.receive(async (m) => {
    const body = m.data.toString();
    rec.record(body, m.deliveryCount);
    return body !== 'poison';
  }, { concurrency: 1, signal: ac2.signal });
  await eventually(() => b.depth(), (d) => d.deadLettered === 1 && d.ready + d.inFlight === 0, 200, 100);
  ac2.abort();
  await run2;
  assert.deepEqual(Object.fromEntries(rec.seen), { warm: [1], first: [1], poison: [1, 2], last: [1] });
  const [dead] = await b.deadLetters(10);
  assert.equal(dead?.data.toString(), 'poison');
  assert.equal(dead?.deliveryCount, 2);
});

test('redis read-ahead - two consumers draining, one stopped mid-drain: the other takes its buffer at once, every message once', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-two');
  const extra = { readAheadCount: '16', visibilityTimeoutInSeconds: '600' };
  const a = await open(t, q, extra);
  const b = await open(t, q, extra);
  const total = 300;
  await sendAll(a, total);
  const rec = recorder();
  const slow = (): Promise<void> => new Promise((r) => setTimeout(r, 2));
  const acA = new AbortController();
  const acB = new AbortController();
  let byA = 0;
  const runA = a.receive(async (m) => {
    rec.record(m.data.toString(), m.deliveryCount);
    byA++;
    await slow();
    return true;
  }, { concurrency: 4, signal: acA.signal });
  const runB = b.receive(async (m) => {
    rec.record(m.data.toString(), m.deliveryCount);
    await slow();
    return true;
  }, { concurrency: 4, signal: acB.signal });
  await eventually(async () => byA, (n) => n >= 20, 500, 10);
  acA.abort();
  await runA;
  assert.ok(rec.total() < total, 'A stopped before the queue was drained');
  // A's buffer went back: nothing is held by A any more, and B drains everything long before a visibility timeout.
  const consumerOfA = (a as unknown as { consumer: string }).consumer;
  assert.deepEqual((await pending(q)).filter((p) => p.owner === consumerOfA), []);
  await eventually(async () => (await streamLength(q)) + (await pending(q)).length, (n) => n === 0, 300, 100);
  acB.abort();
  await runB;
  assert.equal(rec.seen.size, total);
  assert.deepEqual([...rec.seen.entries()].filter(([, c]) => c.join() !== '1'), [], 'a message delivered twice or with a raised count');
});

test('redis read-ahead - an entry buffered behind a slow handler is handed back before its visibility timeout: never delivered twice', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-slow');
  const extra = { readAheadCount: '4', visibilityTimeoutInSeconds: '1' };
  const a = await open(t, q, extra);
  await sendAll(a, 6);
  const rec = recorder();
  const first = gated(a, rec, 1);
  await eventually(() => pending(q), (p) => p.length === 5);
  // A's handler keeps working (renewed); the four behind it go to a consumer that has room.
  const b = await open(t, q, extra);
  const acB = new AbortController();
  const runB = b.receive(async (m) => (rec.record(m.data.toString(), m.deliveryCount), true), { concurrency: 1, signal: acB.signal });
  await eventually(async () => rec.total(), (n) => n === 6, 300, 100);
  first.release();
  await eventually(async () => (await streamLength(q)) + (await pending(q)).length, (n) => n === 0, 300, 100);
  acB.abort();
  await Promise.all([first.stop(), runB]);
  assert.equal(rec.seen.size, 6);
  assert.deepEqual([...rec.seen.entries()].filter(([, c]) => c.join() !== '1'), [], 'a message delivered twice or with a raised count');
});

test('redis read-ahead - a consumer killed with a full buffer: another gets every message after the visibility timeout', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-kill');
  const extra = { readAheadCount: '8', visibilityTimeoutInSeconds: '1' };
  const dying = redisBackend.create(component({ redisHost: REDIS_ADDR, queueName: q, reconnectWaitInSeconds: '0.2', ...extra }), ctx);
  await dying.init();
  await sendAll(dying, 13);
  let unhang: ((ok: boolean) => void) | undefined;
  const ac1 = new AbortController();
  // The first answers at once (read-ahead serves quick handlers), the second hangs.
  let answered = 0;
  const dead = dying.receive(() => (answered++ === 0 ? Promise.resolve(true) : new Promise<boolean>((r) => (unhang = r))), { concurrency: 1, signal: ac1.signal });
  await eventually(async () => unhang !== undefined && (await pending(q)).length === 9, (held) => held);
  // The "kill -9": connections gone without a word, no hand-back, no renewal (as in backend.test.ts).
  const inside = dying as unknown as { closed: boolean; readers: Set<{ disconnect(): void }>; client: { disconnect(): void } };
  inside.closed = true;
  for (const r of inside.readers) r.disconnect();
  inside.client.disconnect();
  const survivor = await open(t, q, extra);
  const rec = recorder();
  const ac2 = new AbortController();
  const run = survivor.receive(async (m) => (rec.record(m.data.toString(), m.deliveryCount), true), { concurrency: 2, signal: ac2.signal });
  await eventually(async () => (await streamLength(q)) + (await pending(q)).length, (n) => n === 0, 300, 100);
  ac2.abort();
  await run;
  unhang?.(false);
  ac1.abort();
  await dead;
  assert.equal(rec.seen.size, 12);
  // The nine the dead consumer held (one at work, eight read ahead) come again as a second delivery, like in flight ones.
  const again = [...rec.seen.values()].filter((c) => c.join() === '2').length;
  const once = [...rec.seen.values()].filter((c) => c.join() === '1').length;
  assert.deepEqual({ again, once }, { again: 9, once: 3 });
});

test('redis read-ahead - slow handlers get no read-ahead: a second replica shares a backlog from its start', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-ra-slowwork');
  // The default readAheadCount (16) and a long visibility timeout: nothing comes back by a timer during the test.
  const extra = { visibilityTimeoutInSeconds: '600' };
  const a = await open(t, q, extra);
  const b = await open(t, q, extra);
  await sendAll(a, 8);
  const by = { a: 0, b: 0 };
  const work = (who: 'a' | 'b') => async (): Promise<boolean> => {
    by[who]++;
    await new Promise((r) => setTimeout(r, 150));
    return true;
  };
  const acA = new AbortController();
  const acB = new AbortController();
  const runA = a.receive(work('a'), { concurrency: 1, signal: acA.signal });
  await eventually(async () => by.a, (n) => n >= 1, 200, 10);
  // A works on its first message; B, started now as KEDA's next replica would be, finds the rest still in the queue.
  const runB = b.receive(work('b'), { concurrency: 1, signal: acB.signal });
  await eventually(async () => (await streamLength(q)) + (await pending(q)).length, (n) => n === 0, 300, 50);
  acA.abort();
  acB.abort();
  await Promise.all([runA, runB]);
  assert.equal(by.a + by.b, 8);
  assert.ok(by.b >= 2, `the second replica processed ${by.b} of 8: the first held the backlog it could not start`);
});
