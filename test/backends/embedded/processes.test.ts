/**
 * The embedded queue shared by real processes: kill -9, two receivers racing on one queue, restarts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EmbeddedBackend, parseEmbeddedComponent, type SettledOutcome } from '../../../src/backends/embedded/index.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { createLogger } from '../../../src/util/log.js';
import { componentFromYaml } from '../../conformance/component.js';
import { uniqueName } from '../../support/brokers.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/worker.js');
const logger = createLogger('embedded-test').child({}, { level: 'silent' });
const GIVE_UP_MS = 30_000;

interface Worker {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  waitFor(match: (line: string) => boolean, what: string): Promise<string>;
}

function startWorker(t: TestContext, mode: string, dataDir: string, queue: string, opts: object = {}): Worker {
  const child = spawn(process.execPath, [WORKER, mode, dataDir, queue, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    lines,
    exited,
    async waitFor(match, what) {
      const end = Date.now() + GIVE_UP_MS;
      for (;;) {
        const hit = lines.find(match);
        if (hit !== undefined) return hit;
        if (Date.now() > end || child.exitCode !== null) assert.fail(`worker ${mode}: gave up waiting for ${what}; output: ${lines.join(' | ')}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

function backend(dataDir: string, queue: string, metadata: Record<string, string> = {}, onSettled?: (id: string, o: SettledOutcome) => void): EmbeddedBackend {
  const c = componentFromYaml(queue, 'bindings.qscale.embedded', { queueName: queue, retryBackoff: '0s', ...metadata });
  return new EmbeddedBackend(c, parseEmbeddedComponent(c), { logger, dataDir }, { onSettled: onSettled && ((m, o) => onSettled(m.id, o)) });
}

async function drain(b: EmbeddedBackend, expected: number, concurrency = 4): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS);
  await b.receive(async (m) => {
    got.push(m);
    if (got.length >= expected) ac.abort();
    return true;
  }, { concurrency, signal: ac.signal });
  clearTimeout(giveUp);
  return got;
}

async function receiveFor(b: EmbeddedBackend, ms: number): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  await b.receive(async (m) => (got.push(m), true), { concurrency: 1, signal: ac.signal });
  clearTimeout(timer);
  return got;
}

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-embedded-'));

test('embedded processes - a receiver killed with SIGKILL while holding leases: its messages come back after the visibility timeout', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('kill');
  const sender = startWorker(t, 'send', dataDir, queue, { count: 6, prefix: 'job' });
  await sender.waitFor((l) => l === 'sent 6', 'sent');
  await sender.exited;

  const holder = startWorker(t, 'hold', dataDir, queue, { concurrency: 4, visibilitySec: 1 });
  await holder.waitFor((l) => l === 'holding 4', 'four leases held');
  const b = backend(dataDir, queue, { maxConcurrentHandlers: '8' });
  t.after(() => b.close());
  assert.deepEqual(await b.depth(), { ready: 2, inFlight: 4, deadLettered: 0 });
  holder.child.kill('SIGKILL');
  await holder.exited;

  const got = await drain(b, 6);
  assert.deepEqual(got.map((m) => JSON.parse(m.data.toString()) as string).sort(), ['job-0', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
  assert.deepEqual(got.map((m) => m.deliveryCount).sort(), [1, 1, 2, 2, 2, 2], 'the four held messages count their second delivery');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded processes - two processes on one queue with expiring leases never both complete one message', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('race');
  const total = 40;
  const producer = backend(dataDir, queue);
  t.after(() => producer.close());
  for (let i = 0; i < total; i++) await producer.send(Buffer.from(JSON.stringify(`m-${i}`)), {});
  // Handlers take up to 0.5 s against a 0.3 s lease that is never renewed: many leases expire mid-handler and the
  // other process takes the message over, so both processes try to complete the same messages.
  const opts = { visibilitySec: 0.3, renewSec: 0, maxMs: 500, maxDeliveryCount: 100, concurrency: 3 };
  const a = startWorker(t, 'consume', dataDir, queue, opts);
  const b = startWorker(t, 'consume', dataDir, queue, opts);
  const end = Date.now() + GIVE_UP_MS * 2;
  for (;;) {
    const d = await producer.depth();
    if (d.ready + d.inFlight === 0) break;
    if (Date.now() > end) assert.fail(`queue never emptied: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  await a.waitFor((l) => l === 'drained', 'a drained');
  await b.waitFor((l) => l === 'drained', 'b drained');
  const all = [...a.lines, ...b.lines];
  const completed = all.filter((l) => l.startsWith('completed ')).map((l) => l.slice('completed '.length));
  const lost = all.filter((l) => l.startsWith('lease-lost '));
  assert.ok(lost.length > 0, 'leases did expire under a running handler (the race this test is about happened)');
  assert.equal(completed.length, total, 'one completion per message');
  assert.equal(new Set(completed).size, total, 'no message completed twice');
  assert.ok(a.lines.some((l) => l.startsWith('completed')) && b.lines.some((l) => l.startsWith('completed')), 'both processes did work');
  assert.deepEqual(await producer.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('embedded processes - messages survive a restart of everything, and a killed receiver loses none of them', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('restart');
  const sender = startWorker(t, 'send', dataDir, queue, { count: 200, prefix: 'r' });
  await sender.waitFor((l) => l === 'sent 200', 'sent');
  await sender.exited;

  const consumer = startWorker(t, 'consume', dataDir, queue, { visibilitySec: 1, maxMs: 5, concurrency: 2 });
  await consumer.waitFor((l) => l.startsWith('completed ') && consumer.lines.filter((x) => x.startsWith('completed ')).length >= 20, '20 completed');
  consumer.child.kill('SIGKILL');
  await consumer.exited;
  const doneBefore = consumer.lines.filter((l) => l.startsWith('completed ')).map((l) => l.slice('completed '.length));

  // A fresh process opens the file as after a reboot: what was not completed is all there, once.
  const b = backend(dataDir, queue, { maxConcurrentHandlers: '8' });
  t.after(() => b.close());
  const d = await b.depth();
  const remaining = d.ready + d.inFlight;
  // The kill can land between a completion's commit and its printed line: at most one per handler slot goes unsaid.
  const unsaid = 200 - doneBefore.length - remaining;
  assert.ok(unsaid >= 0 && unsaid <= 2, `${remaining} left after ${doneBefore.length} completions were printed`);
  const rest = await drain(b, remaining, 8);
  const after = rest.map((m) => JSON.parse(m.data.toString()) as string);
  assert.equal(new Set(after).size, remaining, 'each message left is delivered once');
  assert.equal(new Set([...doneBefore, ...after]).size + unsaid, 200, 'every message completed');
  assert.deepEqual(after.filter((p) => doneBefore.includes(p)), [], 'nothing completed before the kill came again');
});

test('embedded processes - a message sent by another process wakes an idle receiver', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('wake');
  const b = backend(dataDir, queue);
  t.after(() => b.close());
  const ac = new AbortController();
  const got: string[] = [];
  const receiving = b.receive(async (m) => {
    got.push(JSON.parse(m.data.toString()) as string);
    ac.abort();
    return true;
  }, { concurrency: 1, signal: ac.signal });
  const sender = startWorker(t, 'send', dataDir, queue, { count: 1, prefix: 'ping' });
  assert.equal(await sender.exited, 0, 'the sender stored its message');
  const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS);
  await receiving;
  clearTimeout(giveUp);
  assert.deepEqual(got, ['ping-0']);
});

test('embedded processes - a message that crashes every receiver is dead-lettered after maxDeliveryCount, not redelivered forever', { timeout: 120_000 }, async (t) => {
  const dataDir = tmp();
  const queue = uniqueName('crash');
  const b = backend(dataDir, queue, { maxDeliveryCount: '2', visibilityTimeoutInSec: '0.5' });
  t.after(() => b.close());
  await b.send(Buffer.from('"crashes the app"'), {});
  for (let crash = 1; crash <= 2; crash++) {
    // Each receiver takes the message and dies with it, as a process hitting a fatal bug would.
    const holder = startWorker(t, 'hold', dataDir, queue, { concurrency: 1, visibilitySec: 0.5, maxDeliveryCount: 2 });
    await holder.waitFor((l) => l === 'holding 1', `crash ${crash}: message taken`);
    holder.child.kill('SIGKILL');
    await holder.exited;
  }
  const end = Date.now() + GIVE_UP_MS;
  while ((await b.depth()).deadLettered === 0 && Date.now() < end) {
    const got = await receiveFor(b, 500);
    assert.deepEqual(got, [], 'never delivered a third time');
  }
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  const [dead] = await b.deadLetters(1);
  assert.equal(dead?.deliveryCount, 2);
  assert.match(dead?.reason ?? '', /MaxDeliveryCountExceeded: delivered 2 times and the last lease expired/);
});
