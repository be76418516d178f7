import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort } from '../closed-port.js';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { redisBackend, redisStreamsTrigger } from '../../../src/backends/redis/index.js';
import type { Backend } from '../../../src/backends/types.js';
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
  const b = backend(q);
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
