/**
 * The replicas table's last log lines: the log sink keeps each replica's app and sidecar lines together, without
 * the terminal's colours, and keeps only the last ones.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { createLogSink, TAIL_LINES } from '../../src/supervisor/logs.js';

function run(script: string): ChildProcess {
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode === null) await once(child, 'close');
  await new Promise((r) => setImmediate(r)); // the last 'line' events
}

describe('logs - the last lines of each replica', { timeout: 30_000 }, () => {
  test('logs - app and sidecar lines of a replica, in order, the sidecar\'s marked, colours stripped', async () => {
    const out = new PassThrough();
    out.resume();
    const sink = createLogSink(out, true);
    const app = run(`console.log('\\x1b[32mHello World\\x1b[0m -- Received'); console.error('oops')`);
    sink.attach(app, 'consumer-abc-1');
    await ended(app);
    const sidecar = run(`console.log('sidecar stopped')`);
    sink.attach(sidecar, 'consumer-abc-1 daprd');
    await ended(sidecar);
    const lines = sink.tail!('consumer-abc-1');
    assert.deepEqual(lines.filter((l) => !l.startsWith('daprd')).sort(), ['Hello World -- Received', 'oops']);
    assert.equal(lines.at(-1), 'daprd | sidecar stopped');
    assert.deepEqual(sink.tail!('consumer-other'), []);
  });

  test(`logs - only the last ${TAIL_LINES} lines are kept`, async () => {
    const out = new PassThrough();
    out.resume();
    const sink = createLogSink(out, false);
    const app = run(`for (let i = 1; i <= ${TAIL_LINES + 20}; i++) console.log('line ' + i)`);
    sink.attach(app, 'consumer-abc-2');
    await ended(app);
    const lines = sink.tail!('consumer-abc-2');
    assert.equal(lines.length, TAIL_LINES);
    assert.equal(lines[0], 'line 21');
    assert.equal(lines.at(-1), `line ${TAIL_LINES + 20}`);
  });
});
