/**
 * The embedded queue's own features, beyond the conformance suite: lease renewal, retry backoff, dead-letter requeue,
 * queues sharing a file, arrival watching and the scaler, and its metadata errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  createEmbeddedScaler, parseEmbeddedComponent, readDeadLetters, watchArrivals, type SettledOutcome,
} from '../../../src/backends/embedded/index.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { componentFromYaml } from '../../conformance/component.js';
import { uniqueName } from '../../support/brokers.js';
import { open, receiveFor, tmp, until } from './support.js';

test('embedded - a handler working longer than the visibility timeout keeps its message: the lease is renewed', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('renew');
  const outcomes: SettledOutcome[] = [];
  const slow = open(dataDir, queue, { visibilityTimeoutInSec: '0.3', lockRenewalInSec: '0.1' }, outcomes);
  const other = open(dataDir, queue, { visibilityTimeoutInSec: '0.3' });
  t.after(async () => (await slow.close(), await other.close()));
  await slow.send(Buffer.from('"long job"'), {});
  const ac = new AbortController();
  let started = false;
  const working = slow.receive(async () => {
    started = true;
    await new Promise((r) => setTimeout(r, 1200));
    return true;
  }, { concurrency: 1, signal: ac.signal });
  await until(() => started, 'handler started');
  const stolen = await receiveFor(other, 1000);
  ac.abort();
  await working;
  assert.deepEqual(stolen, [], 'no other receiver got the message while its handler worked');
  assert.deepEqual(outcomes, ['completed']);
  assert.deepEqual(await slow.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded - with renewal off, an overrunning handler loses its lease: the message goes to another receiver, the late ack does nothing', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('norenew');
  const outcomes: SettledOutcome[] = [];
  const slow = open(dataDir, queue, { visibilityTimeoutInSec: '0.2', lockRenewalInSec: '0' }, outcomes);
  const other = open(dataDir, queue, { visibilityTimeoutInSec: '5' });
  t.after(async () => (await slow.close(), await other.close()));
  await slow.send(Buffer.from('"job"'), {});
  const ac = new AbortController();
  let started = false;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const working = slow.receive(async () => ((started = true), await held, true), { concurrency: 1, signal: ac.signal });
  await until(() => started, 'handler started');
  const takenOver: QueueMessage[] = [];
  const ac2 = new AbortController();
  const second = other.receive(async (m) => (takenOver.push(m), ac2.abort(), true), { concurrency: 1, signal: ac2.signal });
  await second;
  release();
  ac.abort();
  await working;
  assert.equal(takenOver[0]?.deliveryCount, 2);
  assert.deepEqual(outcomes, ['lease-lost']);
  assert.deepEqual(await slow.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded - a failed message waits out its retry backoff before it is delivered again', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('backoff');
  const b = open(dataDir, queue, { retryBackoff: '30s' });
  t.after(() => b.close());
  await b.send(Buffer.from('"flaky"'), {});
  const first = await receiveFor(b, 300, async () => false);
  assert.equal(first.length, 1);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 }, 'still waiting, counted as ready');
  assert.equal((await receiveFor(b, 300)).length, 0, 'not redelivered during the backoff');
});

test('embedded - dead letters can be read and requeued: they come back with a fresh delivery count', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('requeue');
  const b = open(dataDir, queue, { maxDeliveryCount: '2' });
  t.after(() => b.close());
  await b.send(Buffer.from('"poison"'), { why: 'test' });
  await b.send(Buffer.from('"poison 2"'), {});
  await receiveFor(b, 400, async () => false);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 2 });
  const dead = readDeadLetters(dataDir, queue, 10);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"poison"', '"poison 2"']);
  assert.equal(dead[0]?.metadata.why, 'test');
  assert.equal(dead[0]?.deliveryCount, 2);
  assert.match(dead[0]?.reason ?? '', /MaxDeliveryCountExceeded: failed on delivery 2 of 2: the handler reported failure/);
  assert.deepEqual(await b.deadLetters(10), dead, 'the backend lists what the data folder holds');
  assert.equal(await b.requeueDeadLetters([dead[0]?.id ?? '']), 1);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 1 });
  assert.equal(await b.requeueDeadLetters('all'), 1);
  const again = await receiveFor(b, 300);
  assert.deepEqual(again.map((m) => [m.data.toString(), m.deliveryCount]), [['"poison"', 1], ['"poison 2"', 1]]);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded - queues share one file without seeing each other\'s messages', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const a = open(dataDir, uniqueName('qa'));
  const b = open(dataDir, uniqueName('qb'));
  t.after(async () => (await a.close(), await b.close()));
  await a.send(Buffer.from('"for a"'), {});
  await b.send(Buffer.from('"for b"'), {});
  await b.send(Buffer.from('"for b too"'), {});
  assert.deepEqual(await a.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
  assert.deepEqual((await receiveFor(a, 200)).map((m) => m.data.toString()), ['"for a"']);
  assert.deepEqual((await receiveFor(b, 200)).map((m) => m.data.toString()), ['"for b"', '"for b too"']);
  assert.deepEqual(fs.readdirSync(dataDir).filter((f) => f.endsWith('.db')), ['queue.db']);
});

test('embedded - sends made at the same time are stored in call order', { timeout: 120_000 }, async (t) => {
  const b = open(tmp(), uniqueName('burst'));
  t.after(() => b.close());
  await Promise.all(Array.from({ length: 100 }, (_, i) => b.send(Buffer.from(String(i)), {})));
  const got = await receiveFor(b, 500);
  assert.deepEqual(got.map((m) => Number(m.data.toString())), Array.from({ length: 100 }, (_, i) => i));
});

test('embedded - sending to a closed backend is refused with the component name', { timeout: 120_000 }, async () => {
  const b = open(tmp(), 'closed-q');
  await b.close();
  await assert.rejects(b.send(Buffer.from('1'), {}), /component closed-q: the embedded queue backend is closed/);
  await assert.rejects(b.receive(async () => true, { concurrency: 1, signal: new AbortController().signal }), /backend is closed/);
});

test('embedded - watchArrivals calls back when a message lands on an empty queue, not for each message after', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('arrive');
  const b = open(dataDir, queue);
  t.after(() => b.close());
  let arrivals = 0;
  const stop = watchArrivals(dataDir, queue, () => arrivals++);
  t.after(stop);
  await b.send(Buffer.from('1'), {});
  await until(() => arrivals === 1, 'first arrival');
  await b.send(Buffer.from('2'), {});
  await b.send(Buffer.from('3'), {});
  await receiveFor(b, 200);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(arrivals, 1, 'no call while the queue was not empty');
  await b.send(Buffer.from('4'), {});
  await until(() => arrivals === 2, 'arrival after the queue emptied');
  stop();
  stop();
});

test('embedded - the scaler counts ready and in-flight messages against its activation threshold', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('scale');
  const b = open(dataDir, queue, { maxConcurrentHandlers: '2' });
  const s = createEmbeddedScaler(dataDir, { queueName: queue, target: 5, activationTarget: 3 }, 'azure-servicebus', 0);
  t.after(async () => (await b.close(), await s.close()));
  assert.equal(s.metricName, `s0-azure-servicebus-${queue}`);
  assert.equal(s.metricType, 'AverageValue');
  for (let i = 0; i < 3; i++) await b.send(Buffer.from(String(i)), {});
  assert.deepEqual(await s.metricAndActivity(), { value: 3, active: false }, '3 is not above activation 3');
  await b.send(Buffer.from('3'), {});
  const ac = new AbortController();
  let inHandler = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const receiving = b.receive(async () => (inHandler++, await held, true), { concurrency: 2, signal: ac.signal });
  await until(() => inHandler === 2, 'two in handlers');
  assert.deepEqual(await s.metricAndActivity(), { value: 4, active: true }, 'in-flight work still counts');
  ac.abort();
  release();
  await receiving;
  assert.deepEqual(await s.metricAndActivity(), { value: 2, active: false });
  let arrivals = 0;
  const unwatch = s.watchArrivals?.(() => arrivals++);
  await receiveFor(b, 200);
  await b.send(Buffer.from('x'), {});
  await until(() => arrivals === 1, 'arrival seen by the scaler');
  unwatch?.();
  await s.close();
});

const metadataErrors: Array<{ name: string; metadata: Record<string, string>; error: RegExp }> = [
  { name: 'no queueName', metadata: {}, error: /missing required metadata 'queueName'/ },
  { name: 'lock renewal not below the visibility timeout', metadata: { queueName: 'q', visibilityTimeoutInSec: '10', lockRenewalInSec: '10' },
    error: /lockRenewalInSec \(10\) must be below the visibility timeout \(10 s\)/ },
  { name: 'maxDeliveryCount 0', metadata: { queueName: 'q', maxDeliveryCount: '0' }, error: /metadata 'maxDeliveryCount' must be >= 1, got '0'/ },
  { name: 'retryBackoff not a duration', metadata: { queueName: 'q', retryBackoff: 'soon' }, error: /metadata 'retryBackoff' must be a duration such as 5s/ },
];

for (const c of metadataErrors) {
  test(`embedded metadata - ${c.name}: error names the component and file:line`, { timeout: 120_000 }, () => {
    const comp = componentFromYaml('message-queue', 'bindings.qscale.embedded', c.metadata);
    assert.throws(() => parseEmbeddedComponent(comp), (err: Error) => {
      assert.match(err.message, /^conformance\/message-queue\.yaml:\d+: component message-queue \(bindings\.qscale\.embedded\): /);
      assert.match(err.message, c.error);
      return true;
    });
  });
}

test('embedded metadata - Service Bus spelling lockDurationInSec sets the visibility timeout; renewal defaults to a third', { timeout: 120_000 }, () => {
  const comp = componentFromYaml('mq', 'bindings.qscale.embedded', { queueName: 'q', lockDurationInSec: '30' });
  const s = parseEmbeddedComponent(comp);
  assert.equal(s.visibilityMs, 30_000);
  assert.equal(s.renewEveryMs, 10_000);
  assert.equal(s.maxDeliveryCount, 10);
  assert.equal(s.maxConcurrentHandlers, 1);
});
