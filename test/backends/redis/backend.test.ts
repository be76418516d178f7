import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort } from '../closed-port.js';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { redisBackend, redisStreamsTrigger } from '../../../src/backends/redis/index.js';
import { hasDeadLetters, isPurgeable, type Backend, type DeadLetterReader, type Purgeable, type QueueMessage } from '../../../src/backends/types.js';
import { purgeReady } from '../../../src/backends/redis/stream.js';
import { REDIS_ADDR, component, ctx, deleteKeys, dropQscaleConnections, eventually, trigger, withRedis } from './helpers.js';

/** A unique stream name whose stream and dead-letter stream are deleted when the test ends, passed or not. */
function streamFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteKeys(q, `${q}:dlq`).catch(() => undefined));
  return q;
}

function backend(queue: string, extra: Record<string, string> = {}, name?: string): Backend {
  const md = { redisHost: REDIS_ADDR, queueName: queue, reconnectWaitInSeconds: '0.2', ...extra };
  return redisBackend.create(component(md, name ? { name } : {}), ctx);
}

test('redis init - wrong password for an ACL user: clear error naming component and broker, password never shown', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const user = uniqueName('qscale-user');
  await withRedis((r) => r.call('ACL', 'SETUSER', user, 'on', '>right-pw-123', '~*', '+@all'));
  try {
    const b = redisBackend.create(component({ redisHost: REDIS_ADDR, queueName: 'q', redisUsername: user, redisPassword: 'Wr0ngPassw0rd' }, { initTimeout: '3s' }), ctx);
    await assert.rejects(b.init(), (err: Error) => {
      assert.match(err.message, /component message-queue \(bindings\.qscale\.redis\): cannot connect to Redis at redis:\/\/qscale-user-[^:]+:\*\*\*@127\.0\.0\.1:6379\/0: login refused/);
      assert.doesNotMatch(err.message, /Wr0ngPassw0rd/);
      return true;
    });
    await b.close();
  } finally {
    await withRedis((r) => r.call('ACL', 'DELUSER', user));
  }
});

test('redis init - nothing listening on the port: connection refused', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const port = await closedPort();
  const b = redisBackend.create(component({ redisHost: `127.0.0.1:${port}`, queueName: 'q', redisPassword: 'Secr3tPw' }, { initTimeout: '2s' }), ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, new RegExp(`component message-queue \\(bindings\\.qscale\\.redis\\): cannot connect to Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: connection refused`));
    assert.doesNotMatch(err.message, /Secr3tPw/);
    return true;
  });
  await b.close();
});

test('redis receive - a consumer that dies holding a message: another takes it after the visibility timeout, count 2', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-crash');
  const dying = backend(q, { visibilityTimeoutInSeconds: '1' });
  await dying.init();
  await dying.send(Buffer.from('job'), {});
  const ac1 = new AbortController();
  let held!: () => void;
  const taken = new Promise<void>((r) => (held = r));
  let unhang!: (ok: boolean) => void;
  const dead = dying.receive(async () => {
    held();
    return new Promise<boolean>((r) => (unhang = r)); // does not answer: the process "hangs"
  }, { concurrency: 1, signal: ac1.signal });
  await taken;
  // The "crash": connections gone without an outcome, no more renewals.
  (dying as unknown as { closed: boolean }).closed = true;
  for (const r of (dying as unknown as { readers: Set<{ disconnect(): void }> }).readers) r.disconnect();
  (dying as unknown as { client: { disconnect(): void } }).client.disconnect();
  const survivor = backend(q, { visibilityTimeoutInSeconds: '1' });
  await survivor.init();
  const ac2 = new AbortController();
  let count = 0;
  await survivor.receive(async (m) => {
    count = m.deliveryCount;
    ac2.abort();
    return true;
  }, { concurrency: 1, signal: ac2.signal });
  assert.equal(count, 2);
  assert.deepEqual(await survivor.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  unhang(false);
  ac1.abort();
  await dead;
  await survivor.close();
  await deleteKeys(q, `${q}:dlq`);
});

test('redis receive - leases only concurrency entries; the rest stay ready', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-lease');
  const b = backend(q);
  await b.init();
  for (let i = 0; i < 10; i++) await b.send(Buffer.from(String(i)), {});
  const ac = new AbortController();
  let started = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => {
    started++;
    await gate;
    return true;
  }, { concurrency: 3, signal: ac.signal });
  await eventually(async () => started, (n) => n === 3);
  assert.deepEqual(await b.depth(), { ready: 7, inFlight: 3, deadLettered: 0 });
  ac.abort();
  release();
  await run;
  assert.deepEqual(await b.depth(), { ready: 7, inFlight: 0, deadLettered: 0 });
  await b.close();
  await deleteKeys(q, `${q}:dlq`);
});

test('redis-streams trigger - streamLength, lag and pending read what the backend holds', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-trig');
  // Without read-ahead: entries read ahead are ready in depth() but pending for Redis's lag and XPENDING (docs/backends.md).
  const b = backend(q, { readAheadCount: '0' });
  await b.init();
  for (let i = 0; i < 9; i++) await b.send(Buffer.from(String(i)), {});
  const ac = new AbortController();
  let started = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => {
    started++;
    await gate;
    return true;
  }, { concurrency: 2, signal: ac.signal });
  await eventually(async () => started, (n) => n === 2);
  const length = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q }));
  const lag = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale', lagCount: '5' }));
  const pending = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale', activationLagCount: '2' }));
  const depth = await b.depth();
  assert.deepEqual(depth, { ready: 7, inFlight: 2, deadLettered: 0 });
  assert.deepEqual(await length.metricAndActivity(), { value: depth.ready + depth.inFlight, active: true });
  assert.deepEqual(await lag.metricAndActivity(), { value: depth.ready, active: true });
  assert.deepEqual(await pending.metricAndActivity(), { value: depth.inFlight, active: false });
  assert.equal(length.metricName, `s0-redis-streams-${q}`);
  ac.abort();
  release();
  await run;
  assert.deepEqual(await length.metricAndActivity(), { value: 7, active: true });
  for (const s of [length, lag, pending]) await s.close();
  await b.close();
  await deleteKeys(q, `${q}:dlq`);
});

test('redis-streams trigger - unreachable Redis: the error names the trigger and the address, not the password', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const s = redisStreamsTrigger.create(trigger({ address: '127.0.0.1:6999', stream: 'x', password: 'Secr3tPw' }));
  await assert.rejects(s.metricAndActivity(), (err: Error) => {
    assert.match(err.message, /trigger 0 \(redis-streams\) of ScaledObject consumer-scaler: cannot read stream 'x' at redis:\/\/:\*\*\*@127\.0\.0\.1:6999\/0: .*connection refused/);
    assert.doesNotMatch(err.message, /Secr3tPw/);
    return true;
  });
  await s.close();
});

test('redis init - an unreachable address fails within initTimeout instead of hanging', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  // 10.255.255.1 is unrouted: depending on the network the connect times out or fails at once.
  const b = redisBackend.create(component({ redisHost: '10.255.255.1:6379', queueName: 'q', redisPassword: 'Secr3tPw' }, { initTimeout: '1s' }), ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, /component message-queue \(bindings\.qscale\.redis\): cannot connect to Redis at redis:\/\/:\*\*\*@10\.255\.255\.1:6379\/0: /);
    assert.doesNotMatch(err.message, /Secr3tPw/);
    return true;
  });
  await b.close();
});

test('redis receive - a dropped connection (CLIENT KILL) mid-stream loses nothing', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-kill');
  const producer = backend(q, {}, q);
  const consumer = backend(q, {}, q);
  await producer.init();
  await consumer.init();
  const total = 40;
  const seen = new Set<string>();
  const ac = new AbortController();
  const run = consumer.receive(async (m) => {
    await new Promise((r) => setTimeout(r, 5));
    seen.add(m.data.toString());
    return true;
  }, { concurrency: 4, signal: ac.signal });
  for (let i = 0; i < total / 2; i++) await producer.send(Buffer.from(String(i)), {});
  assert.equal(await dropQscaleConnections(q), 3); // producer, consumer, consumer's reader
  for (let i = total / 2; i < total; i++) await producer.send(Buffer.from(String(i)), {});
  await eventually(async () => seen.size, (n) => n === total, 300, 200);
  ac.abort();
  await run;
  assert.equal(seen.size, total);
  assert.deepEqual(await consumer.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  await producer.close();
  await consumer.close();
  await deleteKeys(q, `${q}:dlq`);
});

test('redis receive - a handler working past the visibility timeout keeps its message: no other consumer gets it', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-renew');
  const slow = backend(q, { visibilityTimeoutInSeconds: '1' });
  const other = backend(q, { visibilityTimeoutInSeconds: '1' });
  await slow.init();
  await other.init();
  await slow.send(Buffer.from('long job'), {});
  const acSlow = new AbortController();
  const acOther = new AbortController();
  const deliveries: string[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const runSlow = slow.receive(async (m) => {
    deliveries.push(`slow#${m.deliveryCount}`);
    await new Promise((r) => setTimeout(r, 3500)); // three and a half visibility timeouts
    finish();
    return true;
  }, { concurrency: 1, signal: acSlow.signal });
  await eventually(async () => deliveries.length, (n) => n === 1);
  const runOther = other.receive(async (m) => {
    deliveries.push(`other#${m.deliveryCount}`);
    return true;
  }, { concurrency: 1, signal: acOther.signal });
  await finished;
  acSlow.abort();
  acOther.abort();
  await Promise.all([runSlow, runOther]);
  assert.deepEqual(deliveries, ['slow#1']);
  assert.deepEqual(await other.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  await slow.close();
  await other.close();
  await deleteKeys(q, `${q}:dlq`);
});

test('redis-streams trigger - watchArrivals calls back when an entry lands, so activation need not wait a poll', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-watch');
  const b = backend(q);
  await b.init();
  const s = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q }));
  assert.ok(s.watchArrivals);
  let arrivals = 0;
  const stop = s.watchArrivals(() => arrivals++);
  await new Promise((r) => setTimeout(r, 1000)); // let the watcher connect before the entry lands
  await b.send(Buffer.from('wake up'), {});
  assert.equal(await eventually(async () => arrivals, (n) => n >= 1), 1);
  stop();
  await s.close();
  await b.close();
  await deleteKeys(q, `${q}:dlq`);
});

/** A backend with dead letters and purge, opened and closed with the test. */
async function openFull(t: TestContext, queue: string, extra: Record<string, string> = {}): Promise<Backend & DeadLetterReader & Purgeable> {
  const b = backend(queue, extra);
  t.after(() => b.close());
  await b.init();
  assert.ok(hasDeadLetters(b) && isPurgeable(b));
  return b;
}

/** Receives until `stop` holds after a handler call; every message is processed (acked). */
async function receiveUntil(b: Backend, stop: (got: QueueMessage[]) => boolean): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), 30_000);
  await b.receive(async (m) => {
    got.push(m);
    if (stop(got)) ac.abort();
    return true;
  }, { concurrency: 1, signal: ac.signal });
  clearTimeout(giveUp);
  return got;
}

test('redis dead letters - one written before dead letters kept their times lists with the times its ids carry, and requeues', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-legacy');
  const b = await openFull(t, q);
  // The fields the previous version wrote: no enqueuedAt, no deadLetteredAt.
  const sourceId = '1700000000000-3';
  const id = await withRedis((r) => r.xadd(`${q}:dlq`, '*', 'data', '{"old":true}', 'meta', '{"kind":"legacy"}',
    'reason', 'failed 10 deliveries (maxDeliveryCount 10)', 'deliveryCount', '10', 'sourceId', sourceId));
  assert.ok(id);
  const [dead, ...more] = await b.deadLetters(10);
  assert.deepEqual(more, []);
  assert.deepEqual(dead, {
    id, data: Buffer.from('{"old":true}'), metadata: { kind: 'legacy' }, deliveryCount: 10,
    reason: 'failed 10 deliveries (maxDeliveryCount 10)', enqueuedAt: 1700000000000, deadLetteredAt: Number(id.split('-')[0]),
  });
  assert.deepEqual(await b.deadLetter(id), dead);
  for (const bad of ['abc', `${id}x`, '1-2-3', '']) assert.equal(await b.deadLetter(bad), undefined, bad);
  assert.equal(await b.purgeDeadLetters(['abc', '1-1']), 0, 'ids that name no dead letter delete nothing');
  assert.equal(await b.requeueDeadLetters(['abc', id, id]), 1, 'each dead letter moves once');
  assert.equal(await b.requeueDeadLetters([id]), 0, 'it is gone from the dead letters');
  const before = Date.now();
  const [m] = await receiveUntil(b, (got) => got.length === 1);
  assert.equal(m?.data.toString(), '{"old":true}');
  assert.deepEqual(m?.metadata, { kind: 'legacy' });
  assert.equal(m?.deliveryCount, 1);
  // A requeue is a new message: enqueued when requeued (Redis's clock is this machine's; a loose window, no speed).
  assert.ok(m?.enqueuedAt !== undefined && m.enqueuedAt >= before - 60_000 && m.enqueuedAt <= Date.now() + 1000, `enqueuedAt ${m?.enqueuedAt}`);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('redis dead letters - a consumer dying on the last delivery leaves the visibility timeout as the reason', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-lastlease');
  const b = await openFull(t, q, { maxDeliveryCount: '1', visibilityTimeoutInSeconds: '1' });
  await b.send(Buffer.from('"held"'), { kind: 'lost' });
  // Another consumer of the group takes it and never answers.
  await withRedis((r) => r.call('XREADGROUP', 'GROUP', 'qscale', 'gone', 'COUNT', '1', 'STREAMS', q, '>'));
  let calls = 0;
  const ac = new AbortController();
  const running = b.receive(async () => (calls++, true), { concurrency: 1, signal: ac.signal });
  try {
    assert.equal((await eventually(() => b.depth(), (d) => d.deadLettered === 1)).deadLettered, 1);
  } finally {
    ac.abort();
    await running;
  }
  assert.equal(calls, 0, 'the handler is not called past the maximum');
  const [dead] = await b.deadLetters(10);
  assert.equal(dead?.data.toString(), '"held"');
  assert.equal(dead?.metadata.kind, 'lost');
  assert.equal(dead?.deliveryCount, 1);
  assert.equal(dead?.reason, 'MaxDeliveryCountExceeded: failed on delivery 1 of 1: the visibility timeout (1 s) expired on the last delivery: its consumer stopped or hung');
});

test('redis purge - entries held by consumers stay, and the group\'s lag reads what is left', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-purge');
  // Without read-ahead: the purge deletes what the group was never handed; entries a receiver read ahead stay.
  const b = await openFull(t, q, { readAheadCount: '0' });
  for (let i = 0; i < 6; i++) await b.send(Buffer.from(String(i)), {});
  const ac = new AbortController();
  const held: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const running = b.receive(async (m) => {
    held.push(m.data.toString());
    await gate;
    return true;
  }, { concurrency: 2, signal: ac.signal });
  t.after(async () => {
    ac.abort();
    release();
    await running;
  });
  await eventually(async () => held.length, (n) => n === 2);
  assert.equal(await b.purge(), 4);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 2, deadLettered: 0 });
  // KEDA's lagCount reads XINFO GROUPS' lag: it must not count the deleted entries as waiting.
  const lag = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale', lagCount: '5' }));
  t.after(() => lag.close());
  assert.deepEqual(await lag.metricAndActivity(), { value: 0, active: false });
  ac.abort();
  release();
  await running;
  assert.deepEqual(held, ['0', '1'], 'the held entries were processed, the rest never delivered');
  for (let i = 6; i < 9; i++) await b.send(Buffer.from(String(i)), {});
  assert.deepEqual(await b.depth(), { ready: 3, inFlight: 0, deadLettered: 0 });
  assert.deepEqual(await lag.metricAndActivity(), { value: 3, active: true });
  const got = await receiveUntil(b, (g) => g.length === 3);
  assert.deepEqual(got.map((m) => m.data.toString()), ['6', '7', '8']);
  assert.deepEqual(await lag.metricAndActivity(), { value: 0, active: false });
  assert.equal(await b.purge(), 0, 'an empty queue purges nothing');
});

test('redis dead letters - requeue all, purge all and the queue purge take everything, past one step of each', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const q = streamFor(t, 'rds-all');
  const b = await openFull(t, q);
  const write = (bodies: string[]): Promise<unknown> => withRedis(async (r) => {
    const p = r.pipeline();
    for (const body of bodies) {
      p.xadd(`${q}:dlq`, '*', 'data', body, 'meta', '{}', 'reason', 'r', 'deliveryCount', '1', 'sourceId', '1-0', 'enqueuedAt', '1', 'deadLetteredAt', '2');
    }
    return p.exec();
  });
  const many = Array.from({ length: 1200 }, (_, i) => `"r${i}"`);
  await write(many);
  assert.equal(await b.requeueDeadLetters('all'), 1200);
  assert.deepEqual(await b.depth(), { ready: 1200, inFlight: 0, deadLettered: 0 });
  await write(['"p0"', '"p1"', '"p2"']);
  assert.equal(await b.purgeDeadLetters('all'), 3);
  assert.equal(await b.requeueDeadLetters('all'), 0);
  assert.equal(await b.purgeDeadLetters('all'), 0);
  assert.equal(await b.purge(), 1200);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

for (const layout of ['each in its own millisecond', 'sharing one millisecond'] as const) {
  test(`redis purge - entries sent while a purge runs stay, and the lag counts them exactly (ids ${layout})`, { timeout: 120_000 }, async (t) => {
    if (!(await needBroker(t, 'redis'))) return;
    const q = streamFor(t, 'rds-purge-late');
    const b = await openFull(t, q);
    // The first entry left waiting is <ms>-0 in one layout and <ms>-4 in the other: the group is set just before it.
    const ms = Date.now();
    const ids = Array.from({ length: 6 }, (_, i) => (layout === 'sharing one millisecond' ? `${ms}-${i + 1}` : `${ms + i}-0`));
    await withRedis(async (r) => {
      for (const [i, id] of ids.entries()) await r.xadd(q, id, 'data', String(i), 'meta', '{}');
    });
    // Two handed to a consumer (which keeps them in one layout, acks and deletes them in the other: Redis itself reads
    // no lag while an entry is pending before a deleted one right at the group's position); the purge's bound stops
    // at the fourth entry, as if the last two were sent after it started.
    const held = layout === 'each in its own millisecond' ? 2 : 0;
    await withRedis(async (r) => {
      await r.call('XREADGROUP', 'GROUP', 'qscale', 'holder', 'COUNT', '2', 'STREAMS', q, '>');
      if (!held) for (const id of ids.slice(0, 2)) await r.multi().xack(q, 'qscale', id).xdel(q, id).exec();
    });
    assert.equal(await withRedis((r) => purgeReady(r, q, 'qscale', ids[3] ?? '', 500, 0)), 2);
    assert.deepEqual(await b.depth(), { ready: 2, inFlight: held, deadLettered: 0 });
    const lag = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale', lagCount: '5' }));
    t.after(() => lag.close());
    assert.deepEqual(await lag.metricAndActivity(), { value: 2, active: true });
    const got = await withRedis(async (r) => JSON.stringify(await r.call('XREADGROUP', 'GROUP', 'qscale', 'holder', 'COUNT', '5', 'STREAMS', q, '>')));
    assert.deepEqual([...got.matchAll(/"(\d+-\d+)"/g)].map((m) => m[1]), ids.slice(4), 'the entries left are delivered in order');
    assert.deepEqual(await lag.metricAndActivity(), { value: 0, active: false });
  });
}
