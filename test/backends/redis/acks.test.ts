/**
 * The Redis binding sends the acks of one event-loop turn together (with its next read when it waits for a slot):
 * whatever the batching, every message answered 2xx is acked exactly once, and a stop leaves no ack behind.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { redisBackend } from '../../../src/backends/redis/index.js';
import type { Backend } from '../../../src/backends/types.js';
import { REDIS_ADDR, component, ctx, deleteKeys, eventually, withRedis } from './helpers.js';

function streamFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteKeys(q, `${q}:dlq`).catch(() => undefined));
  return q;
}

function backend(queue: string, extra: Record<string, string> = {}): Backend {
  return redisBackend.create(component({ redisHost: REDIS_ADDR, queueName: queue, reconnectWaitInSeconds: '0.2', ...extra }), ctx);
}

async function sendAll(b: Backend, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await b.send(Buffer.from(String(i)), {});
}

const streamLength = (q: string): Promise<number> => withRedis((r) => r.xlen(q));

/**
 * Receives until the queue is empty, nothing pending (every handler answers true after `meanwhile`), then stops:
 * each message's body with the delivery counts it came with, in order.
 */
async function receiveAll(b: Backend, q: string, concurrency: number, meanwhile: (body: string, deliveryCount: number) => Promise<void>): Promise<Map<string, number[]>> {
  const deliveries = new Map<string, number[]>();
  const ac = new AbortController();
  const run = b.receive(async (m) => {
    const k = m.data.toString();
    deliveries.set(k, [...(deliveries.get(k) ?? []), m.deliveryCount]);
    await meanwhile(k, m.deliveryCount);
    return true;
  }, { concurrency, signal: ac.signal });
  await eventually(async () => (await b.depth()).inFlight + (await streamLength(q)), (n) => n === 0, 600, 100);
  ac.abort();
  await run;
  return deliveries;
}

const twice = (deliveries: Map<string, number[]>): number[][] => [...deliveries.values()].filter((counts) => counts.length !== 1);

for (const concurrency of [1, 16]) {
  test(`redis acks - at concurrency ${concurrency} every message is handled once and acked: the stream empties, nothing pending`, { timeout: 120_000 }, async (t) => {
    if (!(await needBroker(t, 'redis'))) return;
    const q = streamFor(t, `rds-acks-${concurrency}`);
    const b = backend(q);
    await b.init();
    t.after(() => b.close());
    const total = 300;
    await sendAll(b, total);
    const seen = await receiveAll(b, q, concurrency, async (k) => {
      // Some answer at once, some a little later: acks of a turn and acks between turns both occur.
      if (Number(k) % 3 === 0) await new Promise((r) => setImmediate(r));
    });
    assert.equal(seen.size, total);
    assert.deepEqual(twice(seen), [], 'a message was delivered twice');
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  });
}

test('redis acks - 16 handlers answering in the same turn are all acked, and the next 16 are read', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-acks-turn');
  const b = backend(q);
  await b.init();
  t.after(() => b.close());
  await sendAll(b, 32);
  const ac = new AbortController();
  let started = 0;
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => {
    started++;
    await gate;
    return true;
  }, { concurrency: 16, signal: ac.signal });
  await eventually(async () => started, (n) => n === 16);
  assert.deepEqual(await b.depth(), { ready: 16, inFlight: 16, deadLettered: 0 });
  const first = release;
  gate = new Promise<void>((r) => (release = r));
  first();
  await eventually(async () => started, (n) => n === 32);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 16, deadLettered: 0 });
  assert.equal(await streamLength(q), 16);
  ac.abort();
  release();
  await run;
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  assert.equal(await streamLength(q), 0);
});

test('redis acks - a stop right as every handler answers still records every answer before receive returns', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-acks-stop');
  const b = backend(q);
  await b.init();
  t.after(() => b.close());
  await sendAll(b, 10);
  const ac = new AbortController();
  let started = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => {
    started++;
    await gate;
    // The stop comes in the very turn the answers do, once their acks wait for the loop's next read: the loop stops
    // instead of reading, and the acks must still go out.
    setImmediate(() => ac.abort());
    return true;
  }, { concurrency: 4, signal: ac.signal });
  await eventually(async () => started, (n) => n === 4);
  release();
  await run;
  assert.equal(started, 4);
  assert.deepEqual(await b.depth(), { ready: 6, inFlight: 0, deadLettered: 0 });
  assert.equal(await streamLength(q), 6);
});

test('redis acks - after SCRIPT FLUSH on the server the consumer loads its script again: every message still acked once', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-acks-flush');
  const b = backend(q);
  await b.init();
  t.after(() => b.close());
  const total = 60;
  await sendAll(b, total);
  const seen = await receiveAll(b, q, 4, async (k) => {
    // Redis forgets every script (as a restart or a failover would) while acks and reads go on.
    if (k === '10' || k === '40') await withRedis((r) => r.call('SCRIPT', 'FLUSH'));
  });
  assert.equal(seen.size, total);
  assert.deepEqual(twice(seen), [], 'a message was delivered twice');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

for (const concurrency of [1, 16]) {
  test(`redis acks - at concurrency ${concurrency} an ack Redis refuses leaves its message pending: it comes again (count 2) and is acked then`, { timeout: 120_000 }, async (t) => {
    if (!(await needBroker(t, 'redis'))) return;
    const q = streamFor(t, `rds-acks-refused-${concurrency}`);
    const user = uniqueName('qscale-acker');
    await withRedis((r) => r.call('ACL', 'SETUSER', user, 'on', '>acker-pw-123', '~*', '&*', '+@all'));
    t.after(() => withRedis((r) => r.call('ACL', 'DELUSER', user)).catch(() => undefined));
    const b = redisBackend.create(component({
      redisHost: REDIS_ADDR, queueName: q, redisUsername: user, redisPassword: 'acker-pw-123', visibilityTimeoutInSeconds: '1', reconnectWaitInSeconds: '0.2',
    }), ctx);
    await b.init();
    t.after(() => b.close());
    const total = 40;
    await sendAll(b, total);
    let lifted: Promise<unknown> | undefined;
    const deliveries = await receiveAll(b, q, concurrency, async (k, deliveryCount) => {
      // From message 5's first answer on, XACK is refused (NOPERM) while every other command works; the first
      // message to come again lifts that, and every message that came again answers only once it is lifted (at
      // concurrency 16 they come together, and an answer before the lift would be refused once more).
      if (k === '5' && deliveryCount === 1) {
        await withRedis((r) => r.call('ACL', 'SETUSER', user, '-xack'));
      } else if (deliveryCount > 1) {
        lifted ??= withRedis((r) => r.call('ACL', 'SETUSER', user, '+xack'));
        await lifted;
      }
    });
    assert.equal(deliveries.size, total);
    assert.deepEqual(deliveries.get('5'), [1, 2], 'message 5: delivered again after its ack was refused');
    assert.deepEqual([...deliveries.values()].filter((counts) => counts.join() !== '1' && counts.join() !== '1,2'), []);
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  });
}
