/**
 * One lease takes all its messages in one statement: what it hands out must be what a row-by-row lease would have
 * handed out, in send order, never a message someone else holds, and a message whose last lease ran out set aside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueStore } from '../../../src/backends/embedded/store.js';
import { uniqueName } from '../../support/brokers.js';
import { tmp } from './support.js';

const release = { backoffMs: () => 0, maxDeliveryCount: 5, reason: 'failed' };

test('embedded - a lease passes over a message another receiver holds between the ready ones', { timeout: 60_000 }, async (t) => {
  const store = QueueStore.acquire(tmp());
  t.after(() => store.unref());
  const queue = uniqueName('lease-held');
  for (const s of ['a', 'b', 'c', 'd']) await store.enqueue(queue, Buffer.from(s), {});
  const [a, b] = store.lease(queue, 2, 60_000, 5).leased;
  assert.ok(a && b);
  // a is given back at once; b stays with its receiver, between a and the messages not yet leased.
  const r = store.lease(queue, 3, 60_000, 5, [{ seq: a.seq, token: a.token, release }]);
  assert.deepEqual(r.outcomes, ['released']);
  assert.deepEqual(r.leased.map((m) => [m.data.toString(), m.deliveryCount]), [['a', 2], ['c', 1], ['d', 1]]);
  assert.ok(r.leased.every((m) => m.token === r.leased[0]!.token), 'one lease, one token');
  assert.deepEqual(store.settle([{ seq: b.seq, token: b.token }]), ['completed'], 'b is still its first receiver\'s');
  assert.deepEqual(store.settle(r.leased.map((m) => ({ seq: m.seq, token: m.token }))), ['completed', 'completed', 'completed']);
  assert.deepEqual(store.depth(queue), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded - a message whose last allowed lease ran out is set aside and the lease still fills up in order', { timeout: 60_000 }, async (t) => {
  const store = QueueStore.acquire(tmp());
  t.after(() => store.unref());
  const queue = uniqueName('lease-exhausted');
  for (const s of ['a', 'b', 'c', 'd']) await store.enqueue(queue, Buffer.from(s), { k: 'v' });
  // a is leased for no time at all: its lease has run out, on its one allowed delivery.
  assert.deepEqual(store.lease(queue, 1, 0, 1).leased.map((m) => m.data.toString()), ['a']);
  const r = store.lease(queue, 3, 60_000, 1);
  assert.deepEqual(r.leased.map((m) => [m.data.toString(), m.deliveryCount, m.metadata]), [['b', 1, { k: 'v' }], ['c', 1, { k: 'v' }], ['d', 1, { k: 'v' }]]);
  assert.deepEqual(store.deadLetters(queue, 10).map((d) => [d.data.toString(), d.deliveryCount]), [['a', 1]]);
  assert.deepEqual(store.depth(queue), { ready: 0, inFlight: 3, deadLettered: 1 });
});
