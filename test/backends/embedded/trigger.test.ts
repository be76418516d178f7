/**
 * The embedded queue as a trigger, its failures and its end: a data folder that cannot hold the queue is named when
 * the trigger is made; after close() a read says so instead of reading a closed file; and close() releases the
 * store and every arrival watch, so the process that used it exits by itself. (Its metric is tested in
 * backend.test.ts.) An embedded queue is created on first use, so, unlike a broker's, no queue is ever missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEmbeddedScaler } from '../../../src/backends/embedded/index.js';
import { BrokerError } from '../../../src/errors.js';
import { runAlone, uniqueName } from '../../support/brokers.js';

const SUBJECT = 'trigger 0 (azure-servicebus) of ScaledObject consumer-scaler';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-embedded-trigger-'));
}

test('embedded trigger - a data folder that cannot hold the queue is named when the trigger is made', { timeout: 30_000 }, (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const notADir = path.join(dir, 'file');
  fs.writeFileSync(notADir, 'not a folder');
  assert.throws(
    () => createEmbeddedScaler(notADir, { queueName: 'q', target: 5, activationTarget: 0 }, 'azure-servicebus', 0, SUBJECT),
    (err: unknown) => {
      assert.ok(err instanceof BrokerError, String(err));
      assert.match(err.message, new RegExp(`^embedded queue ${path.join(notADir, 'queue.db').replace(/[.]/g, '\\.')}: cannot open: `));
      return true;
    },
  );
});

test('embedded trigger - a read after close() rejects naming the trigger; close() twice is harmless', { timeout: 30_000 }, async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const s = createEmbeddedScaler(dir, { queueName: uniqueName('q'), target: 5, activationTarget: 0 }, 'azure-servicebus', 0, SUBJECT);
  assert.deepEqual(await s.metricAndActivity(), { value: 0, active: false });
  await s.close();
  await s.close();
  await assert.rejects(s.metricAndActivity(), (err: unknown) => {
    assert.ok(err instanceof BrokerError, String(err));
    assert.equal(err.message, `${SUBJECT}: the trigger was closed`);
    return true;
  });
});

test('embedded trigger - close() releases the store and its watches: a process that read, watched and closed exits by itself', { timeout: 60_000 }, async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = await runAlone(
    `
const s = emb.createEmbeddedScaler(${JSON.stringify(dir)}, { queueName: 'q', target: 5, activationTarget: 0 }, 'azure-servicebus', 0, 'trigger 0');
s.watchArrivals(() => undefined);
s.watchArrivals(() => undefined);
console.log('value', (await s.metricAndActivity()).value);
await s.close();
`,
    { from: import.meta.url, imports: { emb: '../../../src/backends/embedded/index.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /value 0/);
});
