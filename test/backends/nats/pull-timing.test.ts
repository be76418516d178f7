import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DueTimes, EXPIRY_MARGIN_MS, pullExpiry, retryWait } from '../../../src/backends/nats/pull-timing.js';

const M = EXPIRY_MARGIN_MS;

test('nats pull timing - a pull expires off every retry this process knows is due', { timeout: 10_000 }, () => {
  assert.equal(pullExpiry(0, 1000, []), 1000, 'nothing due: the usual expiry');
  assert.equal(pullExpiry(0, 1000, [5000]), 1000);
  // retryBackoff 1s, pulled right after the nak: the expiry the server loses a redelivery at.
  assert.equal(pullExpiry(2, 1000, [1000]), 1000 + 2 * M);
  const crowded = [1000, 1000 + 2 * M, 1000 + 4 * M - 10];
  const e = pullExpiry(0, 1000, crowded);
  assert.ok(crowded.every((at) => Math.abs(e - at) >= M), `expiry ${e} clear of ${crowded.join(', ')}`);
});

test('nats pull timing - a retry wait moves off a waiting pull\'s expiry, earlier first, never below zero', { timeout: 10_000 }, () => {
  assert.equal(retryWait(0, 2000, []), 2000);
  assert.equal(retryWait(0, 2000, [5000]), 2000);
  assert.equal(retryWait(0, 2000, [2000]), 2000 - 2 * M, 'earlier: never longer than retryBackoff says unless it must');
  assert.equal(retryWait(0, 2000, [2000, 2000 - 2 * M]), 2000 - 4 * M);
  assert.equal(retryWait(0, 0, [0]), 2 * M, 'an immediate retry cannot be earlier: a moment later');
});

test('nats pull timing - due times are forgotten once past', { timeout: 10_000 }, () => {
  const due = new DueTimes();
  due.add(1000);
  due.add(3000);
  assert.deepEqual(due.ahead(0), [1000, 3000]);
  assert.deepEqual(due.ahead(1000 + M + 1), [3000]);
});
