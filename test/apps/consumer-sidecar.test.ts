/**
 * The consumer behind a real sidecar and the embedded queue, all real processes: good messages are printed once,
 * a message it cannot read is retried and then dead-lettered — not lost, not looping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { request } from 'undici';
import { readDeadLetters } from '../../src/backends/embedded/dead-letters.js';
import { closedPort } from './support.js';

const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const CONSUMER = path.join(ROOT, 'dist/apps/consumer/main.js');

const COMPONENT = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.embedded
  version: v1
  metadata:
  - name: queueName
    value: msgqueue
  - name: maxDeliveryCount
    value: "3"
  - name: retryBackoff
    value: 10ms
`;

function lines(child: ChildProcess, into: string[]): void {
  readline.createInterface({ input: child.stdout! }).on('line', (l) => into.push(l));
  readline.createInterface({ input: child.stderr! }).on('line', (l) => into.push(l));
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, log: () => string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}\n${log()}`);
}

test('consumer - behind a real sidecar, good messages are printed and an unreadable one is dead-lettered after max deliveries', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-apps-'));
  writeFileSync(path.join(dir, 'binding.yaml'), COMPONENT);
  const appPort = await closedPort();
  const daprPort = await closedPort();
  const out: string[] = [];
  const consumer = spawn(process.execPath, [CONSUMER], { env: { ...process.env, APP_PORT: String(appPort), WORK_MS: '20' }, stdio: ['ignore', 'pipe', 'pipe'] });
  lines(consumer, out);
  const sidecar = spawn(
    process.execPath,
    [CLI, 'sidecar', '--app-id', 'consumer', '--app-port', String(appPort), '--dapr-http-port', String(daprPort), '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const sidecarOut: string[] = [];
  lines(sidecar, sidecarOut);
  const log = (): string => `consumer:\n${out.join('\n')}\nsidecar:\n${sidecarOut.slice(-20).join('\n')}`;
  try {
    const api = `http://127.0.0.1:${daprPort}`;
    await until('the sidecar to be ready', async () => {
      const res = await request(`${api}/v1.0/healthz`);
      await res.body.dump();
      return res.statusCode === 204 ? true : undefined;
    }, log);
    const send = async (data: unknown): Promise<void> => {
      const res = await request(`${api}/v1.0/bindings/message-queue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data, operation: 'create' }) });
      assert.ok(res.statusCode >= 200 && res.statusCode < 300, `stored (${res.statusCode}: ${await res.body.text()})`);
    };
    await send({ text: 'Hello World' });
    await send('Hello World'); // a bare string: stored with its quotes, not the object the consumer reads
    await send({ text: 'Hello again' });

    const dead = await until('the unreadable message to be dead-lettered', () => {
      const d = readDeadLetters(path.join(dir, '.qscale'), 'msgqueue', 10);
      return d.length > 0 ? d : undefined;
    }, log);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.data.toString(), '"Hello World"');
    await until('both good messages', () => (out.filter((l) => / -- Received at: /.test(l)).length === 2 ? true : undefined), log);
    const printed = out.filter((l) => / -- Received at: /.test(l)).map((l) => l.split(' -- ')[0]).sort();
    assert.deepEqual(printed, ['Hello World', 'Hello again'], 'each good message printed exactly once');
    const rejected = (): number => out.filter((l) => /rejected a message on \/message-queue: body is a string/.test(l)).length;
    await until('three rejection lines', () => (rejected() >= 3 ? true : undefined), log);
    assert.equal(rejected(), 3, 'the unreadable message was delivered maxDeliveryCount (3) times, each logged');
  } finally {
    sidecar.kill('SIGKILL');
    consumer.kill('SIGKILL');
  }
});
