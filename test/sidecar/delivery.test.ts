import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readDeadLetters } from '../../src/backends/embedded/index.js';
import { call, componentYaml, freePort, queueDepth, sidecarFor, startApp, tempDir, waitFor, writeComponents, type Received } from './support.js';

const send = (port: number, name: string, data: unknown, metadata: Record<string, string> = {}) =>
  call(port, 'POST', `/v1.0/bindings/${name}`, JSON.stringify({ operation: 'create', data, metadata }));

const posts = (received: Received[], url: string): Received[] => received.filter((r) => r.method === 'POST' && r.url === url);

describe('sidecar delivery - into the app', { timeout: 300_000 }, () => {
  it('delivery - POST /<name> with the stored bytes, content-type application/json, metadata as lower-cased headers, APP_API_TOKEN', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'deliver' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port, appApiToken: 'app-secret' });
    try {
      assert.equal((await send(sc.port, 'message-queue', { text: 'Hello World', n: 7 }, { 'X-Custom-Key': 'abc', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })).status, 204);
      const [got] = await waitFor('the delivery', () => posts(app.received, '/message-queue').length > 0 && posts(app.received, '/message-queue'));
      assert.equal(got?.body.toString(), '{"n":7,"text":"Hello World"}', 'keys sorted, as json.Marshal writes them in daprd');
      assert.equal(got?.headers['content-type'], 'application/json');
      assert.equal(got?.headers['x-custom-key'], 'abc');
      assert.equal(got?.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      assert.equal(got?.headers['dapr-api-token'], 'app-secret');
      const probe = app.received.find((r) => r.method === 'OPTIONS');
      assert.equal(probe?.url, '/message-queue');
      assert.equal(probe?.headers['dapr-api-token'], 'app-secret');
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('delivery - a JSON string keeps its quotes on the way to the app, and the route metadata picks the path', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'routed', route: '/orders/incoming' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'message-queue', 'hello');
      const [got] = await waitFor('the delivery', () => posts(app.received, '/orders/incoming').length > 0 && posts(app.received, '/orders/incoming'));
      assert.equal(got?.body.toString(), '"hello"');
      assert.equal(got?.headers['dapr-api-token'], undefined, 'no token header without APP_API_TOKEN');
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('delivery - 2xx acks: the queue is empty afterwards and nothing is delivered twice', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'acked' }) });
    const app = await startApp(() => 204);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      for (let i = 0; i < 5; i++) await send(sc.port, 'message-queue', { i });
      await waitFor('five deliveries', () => posts(app.received, '/message-queue').length >= 5);
      await waitFor('all acked', async () => {
        const d = await queueDepth(dataDir, 'acked');
        return d.ready === 0 && d.inFlight === 0;
      });
      const bodies = posts(app.received, '/message-queue').map((r) => r.body.toString());
      assert.deepEqual(bodies, ['{"i":0}', '{"i":1}', '{"i":2}', '{"i":3}', '{"i":4}']);
      const meta = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { delivered: number; succeeded: number; failed: number } };
      assert.deepEqual([meta.qscale.delivered, meta.qscale.succeeded, meta.qscale.failed], [5, 5, 0]);
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('delivery - a non-2xx answer is not acked: the message comes back and succeeds on the next try', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'retry', retryBackoff: '0s' }) });
    let calls = 0;
    const app = await startApp((r) => (r.method === 'POST' && ++calls === 1 ? 500 : 200));
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'message-queue', 'again');
      await waitFor('the second try', () => posts(app.received, '/message-queue').length >= 2);
      await waitFor('acked', async () => (await queueDepth(dataDir, 'retry')).inFlight === 0);
      const tries = posts(app.received, '/message-queue');
      assert.equal(tries.length, 2);
      assert.deepEqual(tries.map((t) => t.body.toString()), ['"again"', '"again"']);
      const d = await queueDepth(dataDir, 'retry');
      assert.deepEqual(d, { ready: 0, inFlight: 0, deadLettered: 0 });
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('delivery - a message the app keeps failing is dead-lettered after maxDeliveryCount tries', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'poison', retryBackoff: '0s', maxDeliveryCount: '3' }) });
    const app = await startApp((r) => (r.method === 'POST' ? 500 : 200));
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'message-queue', { poison: true });
      await waitFor('dead-lettered', async () => (await queueDepth(dataDir, 'poison')).deadLettered === 1);
      assert.equal(posts(app.received, '/message-queue').length, 3);
      const [dl] = readDeadLetters(dataDir, 'poison', 10);
      assert.equal(dl?.data.toString(), '{"poison":true}');
      assert.equal(dl?.deliveryCount, 3);
      const d = await queueDepth(dataDir, 'poison');
      assert.deepEqual([d.ready, d.inFlight], [0, 0]);
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('delivery - the sidecar waits for the app port to open, then delivers what was queued meanwhile', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'late-app' }) });
    const appPort = await freePort();
    const sc = await sidecarFor(dir, { appPort });
    try {
      await send(sc.port, 'message-queue', 'early');
      assert.equal((await call(sc.port, 'GET', '/v1.0/healthz')).status, 500);
      const app = await startApp(() => 200, appPort);
      try {
        const [got] = await waitFor('the delivery', () => posts(app.received, '/message-queue').length > 0 && posts(app.received, '/message-queue'));
        assert.equal(got?.body.toString(), '"early"');
        assert.equal((await call(sc.port, 'GET', '/v1.0/healthz')).status, 204);
      } finally {
        await sc.close();
        await app.close();
      }
    } catch (err) {
      await sc.close();
      throw err;
    }
  });
});

describe('sidecar delivery - what status reads', { timeout: 300_000 }, () => {
  it('metadata - qscale.inFlight counts deliveries the app has not answered yet, then drops back to 0', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'inflight' }) });
    const hold: Array<() => void> = [];
    const app = await startApp(async (r) => {
      if (r.method === 'POST') await new Promise<void>((resolve) => hold.push(resolve));
      return 200;
    });
    const sc = await sidecarFor(dir, { appPort: app.port });
    type Meta = { extended: Record<string, string>; qscale: { inFlight: number; succeeded: number } };
    const meta = async (): Promise<Meta> => (await call(sc.port, 'GET', '/v1.0/metadata')).json() as Meta;
    try {
      await send(sc.port, 'message-queue', 'slow');
      await waitFor('the delivery', () => hold.length === 1);
      const during = await meta();
      assert.equal(during.qscale.inFlight, 1);
      assert.equal(during.extended['qscale.inFlight'], '1');
      hold.shift()?.();
      const afterwards = await waitFor('the answer', async () => {
        const m = await meta();
        return m.qscale.succeeded === 1 && m;
      });
      assert.equal(afterwards.qscale.inFlight, 0);
    } finally {
      for (const h of hold) h();
      await sc.close();
      await app.close();
    }
  });

  it('healthz - an app with only output bindings is ready once its port accepts connections', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'out-only', direction: 'output' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await waitFor('ready', async () => (await call(sc.port, 'GET', '/v1.0/healthz')).status === 204);
      assert.equal(app.received.length, 0, 'no probe and no delivery for an output-only binding');
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it("delivery - the producer's traceparent header travels with the message to the consumer", async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'trace' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await call(sc.port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: 1 }), { traceparent: tp });
      const [got] = await waitFor('the delivery', () => posts(app.received, '/message-queue').length > 0 && posts(app.received, '/message-queue'));
      assert.equal(got?.headers.traceparent, tp);
    } finally {
      await sc.close();
      await app.close();
    }
  });
});

describe('sidecar delivery - OPTIONS probe', { timeout: 300_000 }, () => {
  const cases: Array<[string, number, boolean]> = [
    ['200 subscribes', 200, true],
    ['405 subscribes', 405, true],
    ['404 does not subscribe', 404, false],
  ];
  for (const [what, status, reads] of cases) {
    it(`probe - OPTIONS answered ${what}${reads ? '' : ': the binding is never read'}`, async () => {
      const dir = tempDir();
      const dataDir = path.join(dir, '.qscale');
      writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: `probe-${status}` }) });
      const app = await startApp((r) => (r.method === 'OPTIONS' ? status : 200));
      const sc = await sidecarFor(dir, { appPort: app.port });
      try {
        await send(sc.port, 'message-queue', 'probe');
        const state = await waitFor('the probe outcome', async () => {
          const m = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { inputBindings: Array<{ state: string }> } };
          const s = m.qscale.inputBindings[0]?.state;
          return s === 'reading' || s === 'not-subscribed' ? s : undefined;
        });
        if (reads) {
          assert.equal(state, 'reading');
          await waitFor('the delivery', () => posts(app.received, '/message-queue').length === 1);
        } else {
          assert.equal(state, 'not-subscribed');
          assert.equal(posts(app.received, '/message-queue').length, 0);
          assert.equal((await queueDepth(dataDir, `probe-${status}`)).ready, 1, 'the message stays queued');
        }
        assert.equal(app.received.filter((r) => r.method === 'OPTIONS').length, 1);
      } finally {
        await sc.close();
        await app.close();
      }
    });
  }

  it('probe - skipped when direction says input: messages flow even though OPTIONS would answer 404', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'declared', direction: 'input' }) });
    const app = await startApp((r) => (r.method === 'OPTIONS' ? 404 : 200));
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      // direction input only: no output binding here, so another sidecar produces.
      const producerDir = tempDir();
      writeComponents(producerDir, { 'q.yaml': componentYaml('message-queue', { queueName: 'declared', direction: 'output' }) });
      const producer = await sidecarFor(producerDir, { dataDir: path.join(dir, '.qscale') });
      try {
        assert.equal((await send(producer.port, 'message-queue', 'in')).status, 204);
      } finally {
        await producer.close();
      }
      await waitFor('the delivery', () => posts(app.received, '/message-queue').length === 1);
      assert.equal(app.received.filter((r) => r.method === 'OPTIONS').length, 0);
    } finally {
      await sc.close();
      await app.close();
    }
  });
});

describe('sidecar delivery - concurrency', { timeout: 300_000 }, () => {
  /** Holds every app call until `expected` run at once (or all that are left), then releases one: returns the peak. */
  async function maxConcurrent(metadata: Record<string, string>, appMaxConcurrency: number | undefined, messages: number, expected: number): Promise<number> {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'conc', ...metadata }) });
    let now = 0;
    let peak = 0;
    const waiting: Array<() => void> = [];
    const app = await startApp(async (r) => {
      if (r.method !== 'POST') return 200;
      now++;
      peak = Math.max(peak, now);
      await new Promise<void>((resolve) => waiting.push(resolve));
      now--;
      return 200;
    });
    const sc = await sidecarFor(dir, { appPort: app.port, appMaxConcurrency });
    try {
      for (let i = 0; i < messages; i++) await send(sc.port, 'message-queue', i);
      let released = 0;
      while (released < messages) {
        await waitFor(`${expected} calls at once`, () => waiting.length >= Math.min(expected, messages - released));
        // A moment for a call beyond the limit to show up, if the sidecar were to start one.
        await new Promise((r) => setTimeout(r, 50));
        waiting.shift()?.();
        released++;
      }
      await waitFor('all delivered', () => posts(app.received, '/message-queue').length === messages);
      return peak;
    } finally {
      await sc.close();
      await app.close();
    }
  }

  it('concurrency - by default one message at a time (maxConcurrentHandlers 1, as the Service Bus binding)', async () => {
    assert.equal(await maxConcurrent({}, undefined, 3, 1), 1);
  });

  it('concurrency - maxConcurrentHandlers 3 lets three run at once', async () => {
    assert.equal(await maxConcurrent({ maxConcurrentHandlers: '3' }, undefined, 5, 3), 3);
  });

  it('concurrency - maxConcurrentHandlers 0 is no limit of its own, as Dapr: maxActiveMessages 4 bounds it', async () => {
    assert.equal(await maxConcurrent({ maxConcurrentHandlers: '0', maxActiveMessages: '4' }, undefined, 6, 4), 4);
  });

  it('concurrency - --app-max-concurrency 2 caps maxConcurrentHandlers 5', async () => {
    assert.equal(await maxConcurrent({ maxConcurrentHandlers: '5' }, 2, 5, 2), 2);
  });
});
