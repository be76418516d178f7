/**
 * The embedded queue's dead letters and purge beyond the conformance file: a queue file written by the previous
 * qscale keeps working, requeue order and scope, purge around leases, and the reason's bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QUEUE_FILE, type SettledOutcome } from '../../../src/backends/embedded/index.js';
import { failed } from '../../../src/backends/types.js';
import { uniqueName } from '../../support/brokers.js';
import { holdOne, open, receiveFor, tmp, until } from './support.js';

/** The queue file as qscale wrote it before dead letters could be shown, requeued and purged by id. */
const PREVIOUS_SCHEMA = `
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, metadata TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, lease_token TEXT, delivery_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_fifo ON messages(queue, seq, visible_at);
CREATE INDEX messages_leased ON messages(queue, visible_at) WHERE lease_token IS NOT NULL;
CREATE TABLE dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, metadata TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL, delivery_count INTEGER NOT NULL, reason TEXT NOT NULL, dead_at INTEGER NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters(queue, seq);
`;

test('embedded dead letters - a queue file written by the previous qscale keeps its messages and dead letters, with their times', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('old-file');
  const old = new Database(path.join(dataDir, QUEUE_FILE));
  old.pragma('journal_mode = WAL');
  old.exec(PREVIOUS_SCHEMA);
  const sentAt = Date.UTC(2026, 0, 2, 3, 4, 5);
  old.prepare(`INSERT INTO messages (queue, id, data, metadata, enqueued_at, visible_at) VALUES (?, 'waiting-1', ?, '{"kind":"old"}', ?, ?)`)
    .run(queue, Buffer.from('"waiting"'), sentAt + 1000, sentAt + 2000);
  old.prepare(`INSERT INTO dead_letters (queue, id, data, metadata, enqueued_at, delivery_count, reason, dead_at)
    VALUES (?, 'dead-1', ?, '{"kind":"poison"}', ?, 3, 'MaxDeliveryCountExceeded: failed on delivery 3 of 3', ?)`)
    .run(queue, Buffer.from('"poison"'), sentAt, sentAt + 5000);
  old.close();

  const b = open(dataDir, queue);
  t.after(() => b.close());
  await b.init();
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 1 });
  const [dead, ...more] = await b.deadLetters(10);
  assert.deepEqual(more, []);
  assert.deepEqual({ ...dead, data: dead?.data.toString() }, {
    id: 'dead-1', data: '"poison"', metadata: { kind: 'poison' }, deliveryCount: 3,
    reason: 'MaxDeliveryCountExceeded: failed on delivery 3 of 3', enqueuedAt: sentAt, deadLetteredAt: sentAt + 5000,
  });
  assert.equal((await b.deadLetter('dead-1'))?.reason, dead?.reason);

  const [waiting] = await receiveFor(b, 300);
  assert.deepEqual([waiting?.id, waiting?.data.toString(), waiting?.metadata.kind, waiting?.enqueuedAt], ['waiting-1', '"waiting"', 'old', sentAt + 1000]);
  assert.equal(await b.requeueDeadLetters(['dead-1']), 1);
  const [again] = await receiveFor(b, 300);
  assert.deepEqual([again?.id, again?.data.toString(), again?.metadata.kind, again?.deliveryCount], ['dead-1', '"poison"', 'poison', 1]);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  await b.close();

  const file = new Database(path.join(dataDir, QUEUE_FILE), { readonly: true });
  try {
    const indexes = (file.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dead_letters'`).pluck().all() as string[]).sort();
    assert.deepEqual(indexes, ['dead_letters_id', 'dead_letters_queue'], 'the lookup by id was added in place');
  } finally {
    file.close();
  }
});

test('embedded dead letters - a requeue goes behind the waiting messages, oldest dead letter first, enqueued anew under its id', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('requeue-order');
  const b = open(dataDir, queue, { maxDeliveryCount: '1' });
  t.after(() => b.close());
  await b.send(Buffer.from('"a"'), {});
  await b.send(Buffer.from('"b"'), {});
  await receiveFor(b, 300, async () => failed('app answered 500: no'));
  const dead = await b.deadLetters(10);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"a"', '"b"']);
  assert.deepEqual(dead.map((d) => d.reason), Array(2).fill('MaxDeliveryCountExceeded: failed on delivery 1 of 1: app answered 500: no'));
  assert.deepEqual((await b.deadLetters(1)).map((d) => d.data.toString()), ['"a"'], 'limit keeps the oldest');
  await b.send(Buffer.from('"c"'), {});
  const requeuedFrom = Date.now();
  assert.equal(await b.requeueDeadLetters([dead[1]?.id ?? '', dead[0]?.id ?? '', dead[0]?.id ?? '']), 2, 'each named one once');
  const got = await receiveFor(b, 300);
  assert.deepEqual(got.map((m) => [m.data.toString(), m.deliveryCount]), [['"c"', 1], ['"a"', 1], ['"b"', 1]]);
  assert.deepEqual(got.slice(1).map((m) => m.id), dead.map((d) => d.id), 'a requeued message keeps its id');
  assert.ok(got.slice(1).every((m) => (m.enqueuedAt ?? 0) >= requeuedFrom), 'enqueued at the requeue, a fresh message');
  assert.ok(got.every((m) => typeof m.enqueuedAt === 'number'));
});

test('embedded dead letters - ids name dead letters of their own queue only: another queue in the same file is untouched', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const mine = open(dataDir, uniqueName('dl-mine'), { maxDeliveryCount: '1' });
  const other = open(dataDir, uniqueName('dl-other'), { maxDeliveryCount: '1' });
  t.after(async () => (await mine.close(), await other.close()));
  await mine.send(Buffer.from('"mine"'), {});
  await receiveFor(mine, 300, async () => false);
  const [dead] = await mine.deadLetters(10);
  assert.ok(dead);
  assert.equal(await other.deadLetter(dead.id), undefined);
  assert.equal(await other.requeueDeadLetters([dead.id]), 0);
  assert.equal(await other.purgeDeadLetters([dead.id]), 0);
  assert.equal(await other.purgeDeadLetters('all'), 0);
  assert.equal(await other.requeueDeadLetters('all'), 0);
  assert.equal(await mine.requeueDeadLetters([]), 0, 'an empty list moves nothing');
  assert.equal(await mine.purgeDeadLetters([]), 0, 'and deletes nothing');
  assert.deepEqual(await mine.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  assert.equal(await mine.purgeDeadLetters([dead.id]), 1);
  assert.deepEqual(await mine.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded dead letters - purge leaves a message in a handler alone and takes one waiting out its backoff', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('purge-leased');
  const outcomes: SettledOutcome[] = [];
  const b = open(dataDir, queue, { retryBackoff: '30s' }, outcomes);
  t.after(() => b.close());
  await b.send(Buffer.from('"backing off"'), {});
  await receiveFor(b, 300, async () => false);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 }, 'waiting out its backoff counts as ready');
  await b.send(Buffer.from('"held"'), {});
  await b.send(Buffer.from('"waiting"'), {});
  const holder = holdOne(b);
  try {
    await until(() => holder.seen.length === 1, 'a message in the handler');
    assert.deepEqual(holder.seen, ['"held"']);
    assert.equal(await b.purge(), 2, 'the backed-off and the waiting message');
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 1, deadLettered: 0 });
  } finally {
    await holder.stop();
  }
  assert.deepEqual(outcomes, ['released', 'completed'], 'the held message was completed by its handler');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded dead letters - purge sets aside a message whose last allowed lease ran out, with the lease\'s reason', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('purge-expired');
  const outcomes: SettledOutcome[] = [];
  const b = open(dataDir, queue, { maxDeliveryCount: '1', visibilityTimeoutInSec: '0.2', lockRenewalInSec: '0' }, outcomes);
  t.after(() => b.close());
  await b.send(Buffer.from('"overrun"'), {});
  const holder = holdOne(b);
  try {
    await until(() => holder.seen.length === 1, 'handler started');
    await until(async () => (await b.depth()).inFlight === 0, 'the lease ran out');
    assert.equal(await b.purge(), 0, 'not purged: it is a dead letter');
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  } finally {
    await holder.stop();
  }
  const [dead] = await b.deadLetters(1);
  assert.match(dead?.reason ?? '', /^MaxDeliveryCountExceeded: delivered 1 times and the last lease expired/);
  assert.deepEqual(outcomes, ['lease-lost'], 'the late answer changes nothing');
});

test('embedded dead letters - a thrown error is the reason, and a long one is cut', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('long-reason');
  const b = open(dataDir, queue, { maxDeliveryCount: '1' });
  t.after(() => b.close());
  await b.send(Buffer.from('"short"'), {});
  await b.send(Buffer.from('"long"'), {});
  await receiveFor(b, 300, async (m) => {
    throw new Error(m.data.toString() === '"short"' ? 'connect ECONNREFUSED 127.0.0.1:3000' : `x${'y'.repeat(5000)}`);
  });
  const [short, long] = await b.deadLetters(10);
  assert.equal(short?.reason, 'MaxDeliveryCountExceeded: failed on delivery 1 of 1: the handler threw: connect ECONNREFUSED 127.0.0.1:3000');
  assert.match(long?.reason ?? '', /^MaxDeliveryCountExceeded: failed on delivery 1 of 1: the handler threw: xy+$/);
  assert.ok((long?.reason.length ?? 0) < 1100, `cut to about a thousand characters, got ${long?.reason.length}`);
});
