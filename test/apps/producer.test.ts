import { test } from 'node:test';
import http from 'node:http';
import { request } from 'undici';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig, type ProducerConfig } from '../../apps/producer/config.js';
import { startFakeSidecar, quietLogger, recordingLogger, closedPort, type FakeAnswer, type FakeSidecar } from './support.js';

const SEED_BODY = '{"data":{"text":"Hello World"},"operation":"create"}';

function config(sidecarUrl: string, over: Partial<ProducerConfig> = {}): ProducerConfig {
  return { ...readProducerConfig({}), sidecarUrl, ...over };
}

async function withProducer(
  answer: ((i: number) => FakeAnswer) | undefined,
  over: Partial<ProducerConfig>,
  fn: (app: FastifyInstance, fake: FakeSidecar) => Promise<void>,
): Promise<void> {
  const fake = await startFakeSidecar(answer);
  const app = await buildProducer({ config: config(fake.url, over), logger: quietLogger(), connectWaitMs: 0 });
  try {
    await fn(app, fake);
  } finally {
    await app.close();
    await fake.close();
  }
}

function post(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/MessageProducer', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
}

test('producer - POST /MessageProducer sends the seed body to the binding and answers 200', { timeout: 120_000 }, async () => {
  await withProducer(undefined, {}, async (app, fake) => {
    const res = await post(app, { count: 3, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { sent: 3 });
    assert.equal(fake.requests.length, 3);
    for (const r of fake.requests) {
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/v1.0/bindings/message-queue');
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(r.body, SEED_BODY);
      assert.equal(r.headers['dapr-api-token'], undefined);
    }
  });
});

test('producer - the seed curl with the ASP.NET-style property case still works', { timeout: 120_000 }, async () => {
  await withProducer(undefined, {}, async (app, fake) => {
    const res = await post(app, { Count: 1, IntervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.equal(fake.requests.length, 1);
  });
});

test('producer - count 0 sends nothing and answers 200', { timeout: 120_000 }, async () => {
  await withProducer(undefined, {}, async (app, fake) => {
    const res = await post(app, { count: 0, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.equal(fake.requests.length, 0);
  });
});

test('producer - BINDING_NAME picks the binding and DAPR_API_TOKEN is sent as dapr-api-token', { timeout: 120_000 }, async () => {
  await withProducer(undefined, { target: readProducerConfig({ BINDING_NAME: 'orders' }).target, apiToken: 's3cret' }, async (app, fake) => {
    const res = await post(app, { count: 2, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(fake.requests.map((r) => r.url), ['/v1.0/bindings/orders', '/v1.0/bindings/orders']);
    assert.deepEqual(fake.requests.map((r) => r.headers['dapr-api-token']), ['s3cret', 's3cret']);
  });
});

test('producer - PUBSUB_NAME and TOPIC publish each message to the topic as its JSON body', { timeout: 120_000 }, async () => {
  const target = readProducerConfig({ PUBSUB_NAME: 'orders-pubsub', TOPIC: 'orders' }).target;
  await withProducer(undefined, { target }, async (app, fake) => {
    const res = await post(app, { count: 2, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(fake.requests.map((r) => [r.method, r.url, r.body]), [
      ['POST', '/v1.0/publish/orders-pubsub/orders', '{"text":"Hello World"}'],
      ['POST', '/v1.0/publish/orders-pubsub/orders', '{"text":"Hello World"}'],
    ]);
    assert.match(String(fake.requests[0]?.headers['content-type']), /^application\/json/);
  });
});

test('producer - PUBSUB_NAME without TOPIC (or a bad name) is refused by name', { timeout: 120_000 }, async () => {
  assert.throws(() => readProducerConfig({ PUBSUB_NAME: 'orders-pubsub' }), /PUBSUB_NAME is set but TOPIC is not: set both/);
  assert.throws(() => readProducerConfig({ TOPIC: 'orders' }), /TOPIC is set but PUBSUB_NAME is not/);
  assert.throws(() => readProducerConfig({ PUBSUB_NAME: 'p', TOPIC: 'a b' }), /TOPIC='a b' is not a topic name/);
  assert.throws(() => readProducerConfig({ BINDING_NAME: '../x' }), /BINDING_NAME='..\/x' is not a component name/);
});

test('producer - with an interval the messages go one after the other', { timeout: 120_000 }, async () => {
  await withProducer(() => ({ status: 204, delayMs: 5 }), {}, async (app, fake) => {
    const res = await post(app, { count: 4, intervalMilliseconds: 20 });
    assert.equal(res.statusCode, 200);
    assert.equal(fake.requests.length, 4);
    assert.equal(fake.maxInFlight, 1);
    for (let i = 1; i < fake.spans.length; i++) {
      assert.ok(fake.spans[i]![0] > fake.spans[i - 1]![1], `message ${i} was sent after message ${i - 1} was stored`);
    }
  });
});

test('producer - without an interval a large count is sent with at most 16 in flight and all are stored before 200', { timeout: 120_000 }, async () => {
  await withProducer(() => ({ status: 204, delayMs: 2 }), {}, async (app, fake) => {
    const res = await post(app, { count: 500, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { sent: 500 });
    assert.equal(fake.requests.length, 500);
    assert.equal(fake.spans.filter((s) => s !== undefined).length, 500, 'every send was answered before the 200');
    assert.ok(fake.maxInFlight > 1, `sends overlapped (max in flight ${fake.maxInFlight})`);
    assert.ok(fake.maxInFlight <= 16, `at most 16 in flight, saw ${fake.maxInFlight}`);
  });
});

const DAPR_ERROR = '{"errorCode":"ERR_INVOKE_OUTPUT_BINDING","message":"error invoking output binding message-queue: queue msgqueue is full"}';

test("producer - a sidecar error answers 500 with the sidecar's text and how many were sent before", { timeout: 120_000 }, async () => {
  const { logger, lines } = recordingLogger();
  const fake = await startFakeSidecar((i) => (i < 2 ? { status: 204 } : { status: 500, body: DAPR_ERROR }));
  const app = await buildProducer({ config: config(fake.url, { apiToken: 'tok-not-in-logs' }), logger, connectWaitMs: 0 });
  try {
    const res = await post(app, { count: 5, intervalMilliseconds: 1 });
    assert.equal(res.statusCode, 500);
    const body = res.json() as Record<string, unknown>;
    assert.equal(body.errorCode, 'ERR_SEND_FAILED');
    assert.equal(body.sent, 2);
    assert.equal(body.requested, 5);
    assert.equal(body.sidecarStatus, 500);
    assert.equal(body.sidecarBody, DAPR_ERROR);
    assert.match(String(body.message), /sent 2 of 5 messages/);
    assert.ok(String(body.message).includes('queue msgqueue is full'), 'the message carries the sidecar error text');
    assert.equal(fake.requests.length, 3, 'nothing is sent after the failure');
    assert.ok(lines.some((l) => String(l.msg).includes('queue msgqueue is full')), 'the failure is logged');
    assert.ok(!JSON.stringify(lines).includes('tok-not-in-logs'), 'the API token is never logged');
  } finally {
    await app.close();
    await fake.close();
  }
});

test('producer - concurrent sends stop at the first sidecar error and report what was stored', { timeout: 120_000 }, async () => {
  await withProducer((i) => (i === 40 ? { status: 500, body: DAPR_ERROR } : { status: 204, delayMs: 1 }), {}, async (app, fake) => {
    const res = await post(app, { count: 1000, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 500);
    const body = res.json() as { sent: number };
    assert.equal(body.sent, fake.requests.length - 1, 'sent counts every stored message and nothing else');
    assert.ok(fake.requests.length < 1000, 'the run stopped');
  });
});

test('producer - a sidecar that cannot be reached answers 500 naming its URL', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const app = await buildProducer({ config: config(`http://127.0.0.1:${port}`), logger: quietLogger(), connectWaitMs: 0 });
  try {
    const res = await post(app, { count: 1, intervalMilliseconds: 0 });
    assert.equal(res.statusCode, 500);
    const body = res.json() as { message: string; sent: number };
    assert.equal(body.sent, 0);
    assert.ok(body.message.includes(`http://127.0.0.1:${port}/v1.0/bindings/message-queue`), body.message);
    assert.match(body.message, /ECONNREFUSED/);
  } finally {
    await app.close();
  }
});

test('producer - a sidecar that starts late is waited for', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const app = await buildProducer({ config: config(`http://127.0.0.1:${port}`), logger: quietLogger(), connectWaitMs: 10_000 });
  try {
    const pending = post(app, { count: 2, intervalMilliseconds: 0 });
    await new Promise((r) => setTimeout(r, 300));
    // The sidecar comes up on the port the producer was told about.
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        requests.push(b);
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const res = await pending;
    assert.equal(res.statusCode, 200);
    assert.deepEqual(requests, [SEED_BODY, SEED_BODY]);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  } finally {
    await app.close();
  }
});

test('producer - GET /healthz answers 200', { timeout: 120_000 }, async () => {
  await withProducer(undefined, {}, async (app) => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
  });
});

test('producer - a client that hangs up stops the run instead of sending on', { timeout: 120_000 }, async () => {
  const fake = await startFakeSidecar();
  const app = await buildProducer({ config: config(fake.url), logger: quietLogger(), connectWaitMs: 0 });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const ac = new AbortController();
    const pending = request(`${url}/MessageProducer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count: 1000, intervalMilliseconds: 50 }),
      signal: ac.signal,
    });
    while (fake.requests.length < 2) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await assert.rejects(pending);
    const atAbort = fake.requests.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(fake.requests.length <= atAbort + 1, `sending stopped (${atAbort} at hang-up, ${fake.requests.length} after)`);
  } finally {
    await app.close();
    await fake.close();
  }
});
