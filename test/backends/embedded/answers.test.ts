/**
 * Answers of one event-loop turn are written together (with the next lease): each still gets its own outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type SettledOutcome } from '../../../src/backends/embedded/index.js';
import { QueueStore } from '../../../src/backends/embedded/store.js';
import { uniqueName } from '../../support/brokers.js';
import { open, tmp, until } from './support.js';

test('embedded - handlers answering in one turn, some true and some false: each answer is applied as given', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('answers');
  const outcomes: SettledOutcome[] = [];
  const b = open(dataDir, queue, { maxDeliveryCount: '2', maxConcurrentHandlers: '6' }, outcomes);
  t.after(() => b.close());
  for (let n = 0; n < 6; n++) await b.send(Buffer.from(String(n)), {});
  const seen: Array<{ n: number; count: number }> = [];
  let open6!: () => void;
  const gate = new Promise<void>((r) => (open6 = r));
  const ac = new AbortController();
  const receiving = b.receive(async (m) => {
    const n = Number(m.data.toString());
    seen.push({ n, count: m.deliveryCount });
    // The first six deliveries answer together, in one turn once all are in hand.
    if (seen.length === 6) setImmediate(open6);
    await gate;
    return n % 2 === 0;
  }, { concurrency: 6, signal: ac.signal });
  try {
    await until(() => outcomes.filter((o) => o === 'dead-lettered').length === 3, 'the odd messages dead-lettered');
  } finally {
    open6();
    ac.abort();
    await receiving;
  }
  assert.deepEqual([...outcomes].sort(), ['completed', 'completed', 'completed', 'dead-lettered', 'dead-lettered', 'dead-lettered',
    'released', 'released', 'released']);
  assert.deepEqual(seen.filter((s) => s.count === 2).map((s) => s.n).sort(), [1, 3, 5], 'only the failed ones came again');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 3 });
  assert.deepEqual((await b.deadLetters(10)).map((d) => d.data.toString()).sort(), ['1', '3', '5']);
});

test('embedded - answers written together: one whose lease was lost changes nothing, the others still apply', { timeout: 60_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('answers-lost');
  const store = QueueStore.acquire(dataDir);
  t.after(() => store.unref());
  for (const s of ['a', 'b', 'c', 'd']) await store.enqueue(queue, Buffer.from(s), {});
  const [a, b, c] = store.lease(queue, 3, 60_000, 5).leased;
  assert.ok(a && b && c);
  const release = { backoffMs: () => 0, maxDeliveryCount: 5, reason: 'failed' };
  // The answers carried by the next lease: b's token is stale (another receiver would hold it by now).
  const r = store.lease(queue, 2, 60_000, 5, [
    { seq: a.seq, token: a.token }, { seq: b.seq, token: `${b.token}-old` }, { seq: c.seq, token: c.token, release },
  ]);
  assert.deepEqual(r.outcomes, ['completed', 'lease-lost', 'released']);
  assert.deepEqual(r.leased.map((m) => [m.data.toString(), m.deliveryCount]), [['c', 2], ['d', 1]], 'c is back at once, in order');
  assert.deepEqual(store.settle([{ seq: b.seq, token: b.token }]), ['completed']);
  assert.deepEqual(store.depth(queue), { ready: 0, inFlight: 2, deadLettered: 0 });
});

test('embedded - a receiver stopped while handlers still work applies their answers before receive returns', { timeout: 60_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('answers-stop');
  const outcomes: SettledOutcome[] = [];
  const b = open(dataDir, queue, { maxConcurrentHandlers: '4' }, outcomes);
  t.after(() => b.close());
  for (let n = 0; n < 4; n++) await b.send(Buffer.from(String(n)), {});
  const ac = new AbortController();
  let started = 0;
  const receiving = b.receive(async (m) => {
    started++;
    await new Promise((r) => setTimeout(r, 50));
    return Number(m.data.toString()) < 2;
  }, { concurrency: 4, signal: ac.signal });
  await until(() => started === 4, 'four handlers working');
  ac.abort();
  await receiving;
  assert.deepEqual([...outcomes].sort(), ['completed', 'completed', 'released', 'released']);
  assert.deepEqual(await b.depth(), { ready: 2, inFlight: 0, deadLettered: 0 });
});
