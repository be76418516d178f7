import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildConsumer, type ConsumerApp } from '../../apps/consumer/app.js';
import { readConsumerConfig, type ConsumerConfig } from '../../apps/consumer/config.js';
import { formatInvariant, processedLine } from '../../apps/consumer/timefmt.js';
import { quietLogger, recordingLogger } from './support.js';

const SEED_LINE = /^Hello World -- Received at: \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2} -- Finished at: \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/;

interface Answer {
  statusCode: number;
  body: string;
  json<T = unknown>(): T;
}

interface Running extends ConsumerApp {
  printed: string[];
  /** One request over a real connection to the listening app. */
  inject(o: { method: string; url: string; headers?: Record<string, string>; payload?: string }): Promise<Answer>;
}

async function consumer(over: Partial<ConsumerConfig> = {}, logger = quietLogger()): Promise<Running> {
  const printed: string[] = [];
  const c = buildConsumer({ config: { ...readConsumerConfig({}), workMs: 10, ...over }, logger, print: (l) => printed.push(l) });
  const base = await c.listen('127.0.0.1', 0);
  const inject: Running['inject'] = async (o) => {
    const res = await request(base + o.url, { method: o.method as 'GET', headers: o.headers ?? {}, body: o.payload });
    const body = await res.body.text();
    return { statusCode: res.statusCode, body, json: <T>() => JSON.parse(body) as T };
  };
  return { ...c, printed, inject };
}

test("consumer - the processed line reads exactly like the seed's .NET output", { timeout: 60_000 }, () => {
  const received = new Date(2019, 11, 24, 14, 42, 42);
  const finished = new Date(2019, 11, 24, 14, 42, 47);
  assert.equal(processedLine('Hello World', received, finished), 'Hello World -- Received at: 12/24/2019 14:42:42 -- Finished at: 12/24/2019 14:42:47');
  assert.equal(formatInvariant(new Date(2024, 0, 5, 3, 4, 5)), '01/05/2024 03:04:05', 'zero-padded, 24-hour clock');
});

test('consumer - a good message is worked on, printed in the seed format, and answered 200', { timeout: 60_000 }, async () => {
  const c = await consumer();
  try {
    const res = await c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': 'application/json' }, payload: '{"text":"Hello World"}' });
    assert.equal(res.statusCode, 200);
    assert.equal(c.printed.length, 1);
    assert.match(c.printed[0]!, SEED_LINE);
  } finally {
    await c.close();
  }
});

test('consumer - the text of the message is what is printed', { timeout: 60_000 }, async () => {
  const c = await consumer();
  try {
    const res = await c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': 'application/json' }, payload: '{"Text":"Order 42","extra":true}' });
    assert.equal(res.statusCode, 200);
    assert.match(c.printed[0]!, /^Order 42 -- Received at: /);
  } finally {
    await c.close();
  }
});

test('consumer - OPTIONS on the route answers 200 (the sidecar subscription probe)', { timeout: 60_000 }, async () => {
  const c = await consumer();
  try {
    const res = await c.inject({ method: 'OPTIONS', url: '/message-queue' });
    assert.equal(res.statusCode, 200);
  } finally {
    await c.close();
  }
});

test('consumer - BINDING_NAME changes the route', { timeout: 60_000 }, async () => {
  const c = await consumer({ route: 'orders' });
  try {
    assert.equal((await c.inject({ method: 'OPTIONS', url: '/orders' })).statusCode, 200);
    assert.equal((await c.inject({ method: 'POST', url: '/orders', payload: '{"text":"x"}', headers: { 'content-type': 'application/json' } })).statusCode, 200);
    assert.equal((await c.inject({ method: 'OPTIONS', url: '/message-queue' })).statusCode, 404, 'the default route is not served');
  } finally {
    await c.close();
  }
});

const BAD: Array<{ name: string; payload: string; contentType?: string; says: RegExp }> = [
  { name: 'not JSON', payload: 'Hello World', says: /body is not JSON/ },
  { name: 'a JSON string (data stored with its quotes)', payload: '"Hello World"', says: /body is a string, expected a JSON object/ },
  { name: 'a JSON array', payload: '[{"text":"x"}]', says: /body is an array/ },
  { name: 'null', payload: 'null', says: /body is null/ },
  { name: 'no text field', payload: '{"message":"Hello"}', says: /field "text" is missing/ },
  { name: 'text not a string', payload: '{"text":42}', says: /field "text" must be a string, got a number/ },
  { name: 'an empty body', payload: '', says: /body is empty/ },
  { name: 'not JSON with another content-type', payload: '<xml/>', contentType: 'application/xml', says: /body is not JSON/ },
];

test('consumer - every unreadable message gets a 400 with the reason and a log line', { timeout: 60_000 }, async (t) => {
  const { logger, lines } = recordingLogger();
  const c = await consumer({}, logger);
  try {
    for (const b of BAD) {
      await t.test(`consumer - 400 on ${b.name}`, async () => {
        const before = lines.length;
        const res = await c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': b.contentType ?? 'application/json' }, payload: b.payload });
        assert.equal(res.statusCode, 400, res.body);
        const body = res.json() as { errorCode: string; message: string };
        assert.equal(body.errorCode, 'ERR_BAD_MESSAGE');
        assert.match(body.message, b.says);
        const logged = lines.slice(before).map((l) => String(l.msg));
        assert.equal(logged.length, 1, 'one log line per rejected message');
        assert.match(logged[0]!, b.says);
        assert.match(logged[0]!, /dead-letter/, 'the line says what happens to the message next');
      });
    }
    assert.equal(c.printed.length, 0, 'nothing was processed');
    const ok = await c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': 'application/json' }, payload: '{"text":"still serving"}' });
    assert.equal(ok.statusCode, 200);
  } finally {
    await c.close();
  }
});

test('consumer - with APP_API_TOKEN set, requests without the right dapr-api-token get 401', { timeout: 60_000 }, async () => {
  const { logger, lines } = recordingLogger();
  const c = await consumer({ apiToken: 'app-secret-123' }, logger);
  try {
    const post = (headers: Record<string, string>) =>
      c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': 'application/json', ...headers }, payload: '{"text":"Hello World"}' });
    assert.equal((await post({})).statusCode, 401);
    assert.equal((await post({ 'dapr-api-token': 'wrong' })).statusCode, 401);
    assert.equal((await post({ 'dapr-api-token': 'app-secret-12' })).statusCode, 401);
    assert.equal((await c.inject({ method: 'OPTIONS', url: '/message-queue' })).statusCode, 401);
    assert.equal(c.printed.length, 0, 'no refused message was processed');
    assert.equal((await post({ 'dapr-api-token': 'app-secret-123' })).statusCode, 200);
    assert.equal((await c.inject({ method: 'OPTIONS', url: '/message-queue', headers: { 'dapr-api-token': 'app-secret-123' } })).statusCode, 200);
    assert.equal((await c.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health needs no token');
    assert.equal(c.printed.length, 1);
    assert.ok(lines.some((l) => /dapr-api-token/.test(String(l.msg))), 'refusals are logged');
    assert.ok(!JSON.stringify(lines).includes('app-secret'), 'the token never reaches the log');
  } finally {
    await c.close();
  }
});

test('consumer - a bad environment is refused with the variable named', { timeout: 60_000 }, () => {
  assert.throws(() => readConsumerConfig({ WORK_MS: 'five' }), /WORK_MS='five'/);
  assert.throws(() => readConsumerConfig({ WORK_MS: '-1' }), /WORK_MS='-1'/);
  assert.equal(readConsumerConfig({}).workMs, 5000);
  assert.equal(readConsumerConfig({}).port, 6000);
  assert.equal(readConsumerConfig({ BINDING_NAME: 'orders' }).route, 'orders');
});

test('consumer - a CloudEvent from a subscription is read through its data (or data_base64)', { timeout: 60_000 }, async () => {
  const c = await consumer();
  try {
    const envelope = {
      specversion: '1.0', id: 'e1', source: 'producer', type: 'com.dapr.event.sent', datacontenttype: 'application/json',
      topic: 'orders', pubsubname: 'orders-pubsub', data: { text: 'From a topic' },
    };
    const ce = { 'content-type': 'application/cloudevents+json' };
    const res = await c.inject({ method: 'POST', url: '/message-queue', headers: ce, payload: JSON.stringify(envelope) });
    assert.equal(res.statusCode, 200);
    assert.match(c.printed[0]!, /^From a topic -- Received at: /);
    const b64 = { ...envelope, data: undefined, data_base64: Buffer.from('{"text":"Base 64"}').toString('base64') };
    assert.equal((await c.inject({ method: 'POST', url: '/message-queue', headers: ce, payload: JSON.stringify(b64) })).statusCode, 200);
    assert.match(c.printed[1]!, /^Base 64 -- Received at: /);
    const bad = await c.inject({ method: 'POST', url: '/message-queue', headers: ce, payload: JSON.stringify({ ...envelope, data: 'just text' }) });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json<{ message: string }>().message, /the CloudEvent's data is a string/);
  } finally {
    await c.close();
  }
});

test('consumer - PUBSUB_NAME and TOPIC subscribe programmatically; none without them', { timeout: 60_000 }, async () => {
  const plain = await consumer();
  const sub = await consumer({ subscription: readConsumerConfig({ PUBSUB_NAME: 'orders-pubsub', TOPIC: 'orders' }).subscription });
  try {
    assert.deepEqual((await plain.inject({ method: 'GET', url: '/dapr/subscribe' })).json(), []);
    assert.deepEqual((await sub.inject({ method: 'GET', url: '/dapr/subscribe' })).json(), [
      { pubsubname: 'orders-pubsub', topic: 'orders', route: '/message-queue' },
    ]);
    assert.throws(() => readConsumerConfig({ TOPIC: 'orders' }), /TOPIC is set but PUBSUB_NAME is not/);
    assert.throws(() => readConsumerConfig({ PUBSUB_NAME: 'p', TOPIC: 'a/b' }), /TOPIC='a\/b' is not a valid name/);
  } finally {
    await plain.close();
    await sub.close();
  }
});

test('consumer - other routes and methods get a JSON 404, HEAD reads health, a body over 4 MiB gets 413 unworked', { timeout: 60_000 }, async () => {
  const c = await consumer();
  try {
    const missing = await c.inject({ method: 'GET', url: '/nope' });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET:/nope not found' });
    assert.equal((await c.inject({ method: 'GET', url: '/message-queue' })).statusCode, 404, 'the route takes POST and OPTIONS only');
    assert.equal((await c.inject({ method: 'POST', url: '/message-queue/' })).statusCode, 404, 'no trailing slash');
    assert.equal((await c.inject({ method: 'POST', url: '/message-queue?x=1', headers: { 'content-type': 'application/json' }, payload: '{"text":"q"}' })).statusCode, 200, 'a query string still reaches the route');
    const head = await c.inject({ method: 'HEAD', url: '/healthz' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    assert.deepEqual((await c.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok', inFlight: 0 });
    const big = await c.inject({ method: 'POST', url: '/message-queue', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ text: 'x'.repeat(4 * 1024 * 1024) }) });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json<{ message: string }>().message, 'Request body is too large');
    assert.equal(c.printed.length, 1, 'only the message within the limit was worked on');
  } finally {
    await c.close();
  }
});
