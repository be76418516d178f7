/**
 * The embedded queue's outage: another program holds the queue file's write lock (an open transaction in a second
 * connection, as a sqlite3 shell would). Each lease, and each renewal of the lease of a message still in the handler,
 * waits out the busy timeout and fails; the receive loop must say so once through onBrokerState (not once per retry
 * nor once more for the renewals, and without error lines of its own: the sidecar prints it), say once that it is
 * back when the lock goes, and receive what was sent after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { EmbeddedBackend, parseEmbeddedComponent, type SettledOutcome } from '../../../src/backends/embedded/index.js';
import { QUEUE_FILE } from '../../../src/backends/embedded/store.js';
import { componentFromYaml } from '../../conformance/component.js';
import { uniqueName } from '../../support/brokers.js';

const GIVE_UP_MS = 60_000;

async function until(check: () => boolean, what: string, extra: () => string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!check()) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}\n${extra()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('embedded - a queue file another program holds locked: onBrokerState hears of it once over 3 failed leases and renewals, then once that it is back; messages sent after are received', { timeout: 120_000 }, async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-embedded-lock-'));
  const queue = uniqueName('lock');
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  const c = componentFromYaml('orders', 'bindings.qscale.embedded', { queueName: queue, visibilityTimeoutInSec: '120', lockRenewalInSec: '1', maxConcurrentHandlers: '2' });
  const outcomes: SettledOutcome[] = [];
  const b = new EmbeddedBackend(c, parseEmbeddedComponent(c), { logger, dataDir }, { onSettled: (_m, o) => void outcomes.push(o) });
  await b.init();
  const states: unknown[] = [];
  const got: string[] = [];
  const ac = new AbortController();
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  const receiving = b.receive(async (m) => {
    got.push(m.data.toString());
    // One message stays in the handler through the outage: its lease is renewed meanwhile.
    if (m.data.toString() === '"held"') await held;
    return true;
  }, {
    concurrency: 2, signal: ac.signal, onBrokerState: (err) => void states.push(err),
  });
  const lock = new Database(path.join(dataDir, QUEUE_FILE));
  t.after(async () => {
    if (lock.inTransaction) lock.exec('ROLLBACK');
    lock.close();
    release();
    ac.abort();
    await receiving;
    await b.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const show = (): string =>
    `onBrokerState: ${states.map((s) => (s instanceof Error ? s.message : String(s))).join(' | ')}\nlog:\n${lines.map((l) => `${l.level} ${l.msg}`).join('\n')}`;

  await b.send(Buffer.from('"before"'), {});
  // Completed, not just handed over: a completion still waiting for the next lease would fail with it.
  await until(() => outcomes.includes('completed'), 'the message sent before the lock, completed', show);
  assert.equal(states.length, 0);

  const from = lines.length;
  await b.send(Buffer.from('"held"'), {});
  await until(() => got.includes('"held"'), 'the message held in the handler', show);
  lock.exec('BEGIN IMMEDIATE');
  await until(() => lines.slice(from).filter((l) => l.msg.startsWith('receiving failed: ')).length >= 3, '3 failed leases and renewals', show);
  assert.equal(states.length, 1, show());
  const [err] = states;
  assert.ok(err instanceof Error, show());
  assert.match(err.message, /^component orders \(bindings\.qscale\.embedded\): embedded queue \S*queue\.db cannot be used \(database is locked\)\. Check that no other program holds it locked and that it is readable and writable$/);
  assert.deepEqual(lines.slice(from).filter((l) => l.level > 20).map((l) => l.msg), [], 'nothing above debug from the backend itself');

  lock.exec('COMMIT');
  await until(() => states.length >= 2, 'onBrokerState(undefined) once the lock is gone', show);
  assert.equal(states[1], undefined, show());
  await b.send(Buffer.from('"after"'), {});
  await until(() => got.includes('"after"'), 'the message sent after the lock', show);
  release();
  await until(() => outcomes.filter((o) => o === 'completed').length === 3, 'the held message completed too', show);
  assert.equal(states.length, 2, show());
  assert.deepEqual(lines.slice(from).filter((l) => l.level > 30).map((l) => l.msg), [], show());
});
