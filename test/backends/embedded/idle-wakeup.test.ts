/**
 * A lease that finds the queue empty says which version of the file it saw (read in its own transaction, so a busy
 * receiver reads no version per lease): a message another process commits after that lease wakes the waiting receiver
 * at once, whenever the file watcher would have told it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QUEUE_FILE, QueueStore } from '../../../src/backends/embedded/store.js';
import { SQL } from '../../../src/backends/embedded/sql.js';
import { uniqueName } from '../../support/brokers.js';
import { tmp } from './support.js';

test('embedded - a message another process commits right after an empty lease wakes the receiver at once', { timeout: 60_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('idle-wakeup');
  const store = QueueStore.acquire(dataDir);
  t.after(() => store.unref());
  const empty = store.lease(queue, 4, 60_000, 5);
  assert.equal(empty.leased.length, 0);
  assert.equal(typeof empty.version, 'number', 'an empty lease gives the version to wait from');

  // Another process: its own connection to the file, committing between the lease and the wait.
  const other = new Database(path.join(dataDir, QUEUE_FILE));
  t.after(() => other.close());
  other.prepare(SQL.insert).run(queue, 'from-another-process', Buffer.from('hello'), '{}', Date.now(), Date.now());

  let woken = 0;
  const unsubscribe = store.onChange(() => woken++, empty.version);
  t.after(unsubscribe);
  // The commit happened before the watcher started, so no file event can tell of it: only the version can.
  await new Promise((r) => setImmediate(r));
  assert.equal(woken, 1, 'woken by the commit made after its lease');
  const next = store.lease(queue, 4, 60_000, 5);
  assert.deepEqual(next.leased.map((m) => m.data.toString()), ['hello']);
  assert.equal(next.version, undefined, 'a lease that got messages reads no version');
});

test('embedded - after an empty lease with no commit since, the receiver is not woken for nothing', { timeout: 60_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('idle-quiet');
  const store = QueueStore.acquire(dataDir);
  t.after(() => store.unref());
  const empty = store.lease(queue, 4, 60_000, 5);
  let woken = 0;
  const unsubscribe = store.onChange(() => woken++, empty.version);
  t.after(unsubscribe);
  await new Promise((r) => setImmediate(r));
  assert.equal(woken, 0);
});
