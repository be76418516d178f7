/**
 * A real `qscale sidecar` process whose input binding loses its broker while it receives (the broker's port goes
 * through a relay the test makes refuse connections), for every broker whose client reconnects by itself. What the
 * user reads: one line when receiving stops, naming the component, its type, the broker's address (no password), the
 * cause and the way out; nothing more however many retries follow; one line when it receives again; and the
 * messages sent after the outage reach the app.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { needBroker, uniqueName } from '../support/brokers.js';
import { startProxy } from '../backends/proxy.js';
import { PROXIED_BROKERS, type ProxiedBroker } from '../backends/proxied-brokers.js';
import { call, componentYaml, spawnSidecar, startApp, tempDir, waitFor, writeComponents } from './support.js';

/** Failed attempts the sidecar sits through (its debug lines count them) before the lines are counted. */
const RETRIES = 4;
const WAIT_MS = 45_000;

const send = (port: number, data: string) =>
  call(port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data }));

async function outageSeenOnce(t: TestContext, row: ProxiedBroker): Promise<void> {
  if (!(await needBroker(t, row.broker))) return;
  const proxy = await startProxy(row.port);
  const queue = uniqueName('sidecar-outage');
  const dir = tempDir();
  writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', row.metadata(queue, proxy), row.type) });
  const app = await startApp(() => 200);
  // Debug: each retry leaves a debug line, which is how the test knows several went by.
  const sc = spawnSidecar(['--app-id', 'consumer', '--app-port', String(app.port), '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')],
    { QSCALE_LOG_LEVEL: 'debug' });
  t.after(async () => {
    await proxy.setMode('relay');
    sc.child.kill('SIGTERM');
    const killer = setTimeout(() => sc.child.kill('SIGKILL'), 15_000);
    await sc.exited;
    clearTimeout(killer);
    await app.close();
    await proxy.close();
    await row.cleanup(queue);
  });
  const port = await sc.apiPort();
  await sc.waitForLine(/reading input binding message-queue into POST \/message-queue/, WAIT_MS);
  const delivered = (body: string): boolean => app.received.some((r) => r.method === 'POST' && r.body.toString() === JSON.stringify(body));
  assert.equal((await send(port, 'before')).status, 204);
  await waitFor('the message sent before the outage', () => delivered('before'), WAIT_MS);

  const from = sc.lines.length;
  const since = (re: RegExp): string[] => sc.lines.slice(from).filter((l) => re.test(l));
  const all = (): string => sc.lines.slice(from).join('\n');
  await proxy.setMode('refuse');
  await waitFor(`${RETRIES} failed attempts`, () => since(/level=debug .*receiving failed: /).length >= RETRIES, WAIT_MS)
    .catch((err: unknown) => assert.fail(`${String(err)}\n${all()}`));
  const failing = since(/input binding (still )?cannot receive/);
  assert.equal(failing.length, 1, all());
  const subject = `component message-queue \\(${row.type.replace(/\./g, '\\.')}\\)`;
  assert.match(failing[0] ?? '', new RegExp(`level=error msg="${subject}: input binding cannot receive: ${row.name} at \\S*127\\.0\\.0\\.1:${proxy.port}\\S* is unreachable \\(.+\\)\\. Check that ${row.name} is running and reachable at that address; `));
  // The sidecar's line is the only one: the backend prints nothing of its own above debug.
  assert.deepEqual(since(/level=(warning|error)/), failing, all());
  const health = await call(port, 'GET', '/v1.0/healthz');
  assert.equal(health.status, 500, 'not ready while the binding cannot receive');

  await proxy.setMode('relay');
  await waitFor('the recovery line', () => since(/input binding receiving again after \d+ s/).length > 0, WAIT_MS)
    .catch((err: unknown) => assert.fail(`${String(err)}\n${all()}`));
  await waitFor('a send once the broker is back', async () => (await send(port, 'after')).status === 204, WAIT_MS);
  await waitFor('the message sent after the outage', () => delivered('after'), WAIT_MS);
  assert.equal(since(/input binding receiving again/).length, 1, all());
  assert.equal(since(/input binding (still )?cannot receive/).length, 1, all());
  assert.equal((await call(port, 'GET', '/v1.0/healthz')).status, 204);
  assert.deepEqual(sc.lines.filter((l) => l.includes('guest:guest')), [], 'no password in the output');
}

describe('qscale sidecar - an input binding whose broker goes away while it receives', { timeout: 300_000 }, () => {
  for (const row of PROXIED_BROKERS) {
    it(`${row.name} - one line when it stops receiving, none per retry, one when it receives again; messages sent after arrive`, { timeout: 120_000 }, (t) =>
      outageSeenOnce(t, row));
  }
});
