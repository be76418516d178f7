/**
 * Messages left in a queue by an earlier run are said at start, before they are consumed, instead of being taken
 * silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copySeedManifests, queueBackend, runFile, startUp, tempFolder, writeFiles } from '../e2e/harness.js';

test('up - messages already waiting in a scaled app\'s queue are said once at start', { timeout: 120_000 }, async () => {
  const dir = tempFolder('qscale-leftovers-');
  copySeedManifests(dir);
  writeFiles(dir, { 'dapr.yaml': runFile({ WORK_MS: '0' }) });
  const dataDir = path.join(dir, '.qscale');
  const before = await queueBackend(dir, dataDir, true);
  try {
    for (let i = 0; i < 3; i++) await before.send(Buffer.from(JSON.stringify({ text: `left over ${i}` })), {});
  } finally {
    await before.close();
  }
  const up = await startUp(dir, ['--embedded']);
  try {
    const line = await up.waitForLine(/queue msgqueue \(message-queue\) at start:/, 60_000);
    assert.match(line, /at start: 3 waiting; they are consumed like new ones/);
    // Said once, and then consumed.
    await up.waitFor((s) => (s.queue?.ready ?? 1) === 0 && (s.queue?.inFlight ?? 1) === 0, 60_000, 'the 3 messages consumed');
    assert.equal(up.countLines(/at start:/), 1);
  } finally {
    await up.stop();
  }
});

test('up - an empty queue at start prints no such line', { timeout: 120_000 }, async () => {
  const dir = tempFolder('qscale-leftovers-');
  copySeedManifests(dir);
  writeFiles(dir, { 'dapr.yaml': runFile({ WORK_MS: '0' }) });
  const up = await startUp(dir, ['--embedded']);
  try {
    await up.waitForLine(/\| status: /, 60_000);
    assert.equal(up.countLines(/at start:/), 0);
  } finally {
    await up.stop();
  }
});
