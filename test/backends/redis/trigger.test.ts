/**
 * KEDA's redis-streams trigger, its failures: a stream that does not exist, a Redis that is not there or never
 * answers, and close() releasing every connection (the process that used the trigger exits by itself). The
 * metric itself is tested next to the backend (backend.test.ts), against the same stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TRIGGER_READ_TIMEOUT_MS } from '../../../src/backends/trigger-support.js';
import { BrokerError } from '../../../src/errors.js';
import { redisStreamsTrigger } from '../../../src/backends/redis/index.js';
import { createRedisStreamsScaler } from '../../../src/backends/redis/trigger.js';
import { closedPort, requireBroker, runAlone, silentServer, uniqueName } from '../../support/brokers.js';
import { REDIS_ADDR, deleteKeys, trigger, withRedis } from './helpers.js';

test('redis-streams trigger reads a stream that does not exist as 0 for length and lag, as KEDA, and says so once; its pending entries are an error', { timeout: 30_000 }, async (t) => {
  if (!(await requireBroker(t, 'redis'))) return;
  const q = uniqueName('rs-missing');
  const notices: string[] = [];
  const notify = (l: string): void => {
    notices.push(l);
  };
  const length = createRedisStreamsScaler(trigger({ address: REDIS_ADDR, stream: q }), { notify });
  const lag = createRedisStreamsScaler(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale', lagCount: '5' }), { notify });
  const pending = createRedisStreamsScaler(trigger({ address: REDIS_ADDR, stream: q, consumerGroup: 'qscale' }), { notify });
  t.after(async () => {
    await length.close();
    await lag.close();
    await pending.close();
    await deleteKeys(q);
  });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await length.metricAndActivity(), { value: 0, active: false });
    assert.deepEqual(await lag.metricAndActivity(), { value: 0, active: false });
  }
  assert.equal(notices.length, 2, notices.join('\n'));
  assert.equal(
    notices[0],
    `trigger 0 (redis-streams) of ScaledObject consumer-scaler: stream '${q}' does not exist at redis://127.0.0.1:6379/0; it reads as 0, as KEDA reads it (the binding creates it when it starts: check the stream name if it never appears)`,
  );
  const err = await pending.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.match(err.message, new RegExp(`^trigger 0 \\(redis-streams\\) of ScaledObject consumer-scaler: cannot read stream '${q}' at redis://127\\.0\\.0\\.1:6379/0: NOGROUP`));
  // Once the stream and group exist, an empty one reads 0 in every mode, without a further notice.
  await withRedis((r) => r.call('XGROUP', 'CREATE', q, 'qscale', '0', 'MKSTREAM'));
  for (const s of [length, lag, pending]) assert.deepEqual(await s.metricAndActivity(), { value: 0, active: false });
  assert.equal(notices.length, 2);
});

test('redis-streams trigger - nothing listening rejects naming the address, the password never', { timeout: 30_000 }, async (t) => {
  const port = await closedPort();
  const s = redisStreamsTrigger.create(trigger({ address: `127.0.0.1:${port}`, stream: 'x', password: 'Secr3tPw' }));
  t.after(() => s.close());
  const err = await s.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.equal(err.message, `trigger 0 (redis-streams) of ScaledObject consumer-scaler: cannot read stream 'x' at redis://:***@127.0.0.1:${port}/0: connection refused (is Redis running on that host and port?)`);
});

test('redis-streams trigger - a server that accepts and never answers is a bounded error, not a hang', { timeout: 30_000 }, async (t) => {
  const silent = await silentServer();
  t.after(() => silent.close());
  const s = redisStreamsTrigger.create(trigger({ address: `127.0.0.1:${silent.port}`, stream: 'x' }));
  t.after(() => s.close());
  await assert.rejects(s.metricAndActivity(), new RegExp(`cannot read stream 'x' at redis://127\\.0\\.0\\.1:${silent.port}/0: (no answer within ${TRIGGER_READ_TIMEOUT_MS} ms|connection timed out)`));
});

test('redis-streams trigger - close() releases every connection: a process that polled, watched and closed exits by itself', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'redis'))) return;
  const q = uniqueName('rs-close');
  await withRedis((r) => r.call('XGROUP', 'CREATE', q, 'qscale', '0', 'MKSTREAM'));
  t.after(() => deleteKeys(q));
  const run = await runAlone(
    `
const trig = (md) => ({ index: 0, type: 'redis-streams', metricType: 'AverageValue', metadata: md, subject: 'trigger 0 (redis-streams) of ScaledObject s', where: () => ({}) });
const a = redis.redisStreamsTrigger.create(trig({ address: ${JSON.stringify(REDIS_ADDR)}, stream: ${JSON.stringify(q)} }));
const stop = a.watchArrivals(() => undefined);
console.log('values', (await Promise.all([a.metricAndActivity(), a.metricAndActivity()])).map((m) => m.value).join(','));
stop();
await a.close();
// close() while the connection is still opening, and a watch stopped before its connection is up.
const b = redis.redisStreamsTrigger.create(trig({ address: ${JSON.stringify(REDIS_ADDR)}, stream: ${JSON.stringify(q)} }));
const stopB = b.watchArrivals(() => undefined);
const pending = b.metricAndActivity().then(() => 'read', (e) => e.message);
stopB();
await b.close();
console.log('after close:', await pending);
`,
    { from: import.meta.url, imports: { redis: '../../../src/backends/redis/index.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /values 0,0/);
  assert.match(run.stdout, /after close: (read|.*the trigger was closed)/);
});

test('redis-streams trigger measures as KEDA: lag with a group and lagCount, pending with a group, the length without, lagCount alone ignored', { timeout: 30_000 }, async (t) => {
  if (!(await requireBroker(t, 'redis'))) return;
  const q = uniqueName('rs-modes');
  t.after(() => deleteKeys(q));
  await withRedis(async (r) => {
    await r.call('XGROUP', 'CREATE', q, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < 5; i++) await r.xadd(q, '*', 'n', String(i));
    await r.call('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', '2', 'STREAMS', q, '>'); // 2 delivered, not acked
  });
  const modes: Array<[Record<string, string>, number]> = [
    [{ consumerGroup: 'g', lagCount: '1' }, 3],
    [{ consumerGroup: 'g' }, 2],
    [{}, 5],
    [{ lagCount: '1' }, 5],
    [{ consumerGroup: 'not-yet', lagCount: '1' }, 5], // a group not created yet: its lag is the whole stream, as KEDA reads it
  ];
  for (const [md, want] of modes) {
    const s = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: q, activationLagCount: '2', ...md }));
    t.after(() => s.close());
    assert.deepEqual(await s.metricAndActivity(), { value: want, active: want > 2 }, JSON.stringify(md));
  }
});
