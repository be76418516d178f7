/**
 * A binding whose broker goes away, with a real Redis behind a relay that refuses connections or swallows them: output calls answer 500 at
 * once instead of hanging, the input binding's receiver retries, and each outage is printed once, with its end.
 */
import { afterEach, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pino from 'pino';
import { needBroker, uniqueName } from '../support/brokers.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';
import { call, componentYaml, freePort, sidecarFor, startApp, tempDir, waitFor, writeComponents, type TinyApp } from './support.js';
import { startProxy, type CuttableProxy } from '../backends/proxy.js';

/** A logger whose messages the test reads. */
function capture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
  return { logger, lines };
}

const OUTPUT_BOUND_MS = 1000;
const send = (port: number, data: unknown) => call(port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data }));

describe('sidecar - a binding that loses its broker (Redis behind a relay)', { timeout: 120_000 }, () => {
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  }, { timeout: 60_000 });

  async function setUp(t: TestContext, appPort?: number): Promise<{ relay: CuttableProxy; sc: SidecarHandle; lines: string[] } | undefined> {
    if (!(await needBroker(t, 'redis'))) return undefined;
    const relay = await startProxy(6379);
    open.push(relay);
    const dir = tempDir();
    writeComponents(dir, {
      'queue.yaml': componentYaml('message-queue', { redisHost: `127.0.0.1:${relay.port}`, queueName: uniqueName('outage'), reconnectWaitInSeconds: '0.2' }, 'bindings.qscale.redis'),
    });
    const { logger, lines } = capture();
    const sc = await sidecarFor(dir, { logger, appPort, outputBindingTimeoutMs: OUTPUT_BOUND_MS, dataDir: path.join(dir, '.qscale') });
    open.push(sc);
    // Closed first: a client cannot say goodbye to a broker that hangs, and would keep reconnecting.
    open.push({ close: () => relay.setMode('relay') });
    return { relay, sc, lines };
  }

  it('output - a broker that stops answering: each call answers 500 within the bound, one line says so, one line when it is back', async (t) => {
    const s = await setUp(t);
    if (!s) return;
    const { relay, sc, lines } = s;
    assert.equal((await send(sc.port, 'before')).status, 204);
    await relay.setMode('blackhole');
    const pending = send(sc.port, 'during-1');
    // The API keeps serving while a call waits on the broker.
    assert.equal((await call(sc.port, 'GET', '/v1.0/healthz/outbound')).status, 204);
    for (const r of [await pending, await send(sc.port, 'during-2'), await send(sc.port, 'during-3')]) {
      assert.equal(r.status, 500);
      const j = r.json() as { errorCode: string; message: string };
      assert.equal(j.errorCode, 'ERR_INVOKE_OUTPUT_BINDING');
      assert.match(j.message, new RegExp(`^error invoking output binding message-queue: no answer from the broker within ${OUTPUT_BOUND_MS} ms \\(is it reachable\\?\\)`));
    }
    const meta = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { outputBindings: Array<{ name: string; outage?: { cause: string } }> } };
    assert.match(meta.qscale.outputBindings[0]?.outage?.cause ?? '', /no answer from the broker/);
    const failing = lines.filter((l) => l.includes('output binding calls fail'));
    assert.equal(failing.length, 1, lines.join('\n'));
    assert.match(failing[0] ?? '', /^component message-queue \(bindings\.qscale\.redis\): output binding calls fail: no answer from the broker/);

    // The network is back: the connections it swallowed are reset, and the client connects again.
    await relay.setMode('relay');
    relay.cut();
    await waitFor('a call that succeeds again', async () => (await send(sc.port, 'after')).status === 204);
    assert.equal(lines.filter((l) => /^component message-queue \(bindings\.qscale\.redis\): output binding calls succeed again after \d+ s$/.test(l)).length, 1, lines.join('\n'));
    const after = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { outputBindings: Array<{ outage?: unknown }> } };
    assert.equal(after.qscale.outputBindings[0]?.outage, undefined);
  });

  it('output - a broker that refuses connections: calls answer 500 ERR_INVOKE_OUTPUT_BINDING naming the binding, and the sidecar keeps serving', async (t) => {
    const s = await setUp(t);
    if (!s) return;
    const { relay, sc } = s;
    assert.equal((await send(sc.port, 'before')).status, 204);
    await relay.setMode('refuse');
    for (let i = 0; i < 3; i++) {
      const r = await send(sc.port, `during-${i}`);
      assert.equal(r.status, 500);
      const j = r.json() as { errorCode: string; message: string };
      assert.equal(j.errorCode, 'ERR_INVOKE_OUTPUT_BINDING');
      assert.match(j.message, /^error invoking output binding message-queue: \S/);
      assert.equal((await call(sc.port, 'GET', '/v1.0/metadata')).status, 200);
    }
    await relay.setMode('relay');
    await waitFor('a call that succeeds again', async () => (await send(sc.port, 'after')).status === 204);
  });

  it('input - a receiver that cannot reach its broker: one line naming component, type and cause; health says so; one line when it receives again', async (t) => {
    const appPort = await freePort();
    const s = await setUp(t, appPort);
    if (!s) return;
    const { relay, sc, lines } = s;
    // The broker goes away before the receiver starts (it starts once the app's port accepts).
    await relay.setMode('refuse');
    const app: TinyApp = await startApp(() => 200, appPort);
    open.push(app);
    const failing = await waitFor('the outage line', () => lines.find((l) => l.includes('input binding cannot receive')));
    assert.match(failing, /^component message-queue \(bindings\.qscale\.redis\): input binding cannot receive: .*connection refused.*; retrying until the broker answers/);
    const health = await call(sc.port, 'GET', '/v1.0/healthz');
    assert.equal(health.status, 500);
    assert.match((health.json() as { message: string }).message, /^dapr is not ready: input binding message-queue cannot receive: /);
    const meta = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { inputBindings: Array<{ state: string; outage?: { cause: string } }> } };
    assert.equal(meta.qscale.inputBindings[0]?.state, 'restarting');
    assert.match(meta.qscale.inputBindings[0]?.outage?.cause ?? '', /connection refused/);
    // Long enough for several retries (1 s, then 2 s): none of them prints again.
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(lines.filter((l) => l.includes('input binding cannot receive') || l.includes('input binding still cannot receive')).length, 1, lines.join('\n'));

    await relay.setMode('relay');
    await waitFor('the recovery line', () => lines.find((l) => /^component message-queue \(bindings\.qscale\.redis\): input binding receiving again after \d+ s$/.test(l)), 30_000);
    await waitFor('health', async () => (await call(sc.port, 'GET', '/v1.0/healthz')).status === 204);
    assert.equal((await send(sc.port, { text: 'after the outage' })).status, 204);
    await waitFor('the message delivered', () => app.received.find((r) => r.method === 'POST' && r.body.toString() === '{"text":"after the outage"}'));
    assert.equal(lines.filter((l) => l.includes('receiving again')).length, 1, lines.join('\n'));
  });
});
