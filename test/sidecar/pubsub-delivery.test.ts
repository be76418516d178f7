/**
 * Subscriptions and delivery into the app as daprd does them (dapr/dapr pkg/runtime/pubsub/subscriptions.go,
 * pkg/runtime/subscription, postman/http): programmatic and declarative subscriptions with scopes and CEL rules, the
 * request the app gets, what each answer does (SUCCESS, RETRY, DROP, 404, 500), the dead-letter topic, bulk subscribe,
 * --app-max-concurrency, the drain on stop, and what GET /v1.0/metadata and the metrics say.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheus from 'parse-prometheus-text-format';
import { metadataOf, publish, pubsubYaml, resources, sidecarOn, startPubSubApp, type Answer, type Delivery, type PubSubApp } from '../pubsub/support.js';
import { waitFor } from './support.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';


interface Running {
  app: PubSubApp;
  consumer: SidecarHandle;
  producer: SidecarHandle;
}

/** A consumer app with `subscriptions` (GET /dapr/subscribe), its sidecar, and a producer sidecar, over one folder. */
async function run(
  t: TestContext,
  o: { subscriptions?: unknown; files?: Record<string, string>; answer?: (d: Delivery) => Answer | Promise<Answer>; consumer?: Parameters<typeof sidecarOn>[2]; subscribed?: number },
): Promise<Running> {
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events', { retryBackoff: '0s' }), ...o.files });
  const app = await startPubSubApp(o.subscriptions, o.answer);
  const consumer = await sidecarOn(dir, 'consumer', { appPort: app.port, ...o.consumer });
  const producer = await sidecarOn(dir, 'producer');
  t.after(async () => {
    await producer.close();
    await consumer.close();
    await app.close();
  });
  if (o.subscribed !== undefined) {
    await waitFor('subscriptions running', async () => {
      const m = (await metadataOf(consumer.port)) as { qscale: { subscriptions: Array<{ state: string }> } };
      return m.qscale.subscriptions.filter((s) => s.state === 'receiving').length === o.subscribed;
    });
  }
  return { app, consumer, producer };
}

const dataOf = (d: Delivery): unknown => d.json?.data;

test('subscriptions - programmatic v1 route and v2 rules (CEL) with default; listed by GET /v1.0/metadata as daprd lists them', { timeout: 90_000 }, async (t) => {
  const { app, consumer, producer } = await run(t, {
    subscriptions: [
      { pubsubname: 'events', topic: 'v1', route: '/v1-route', metadata: { priority: 'high' } },
      { pubsubName: 'events', Topic: 'orders', routes: { rules: [{ match: 'event.data.amount > 100 && event.type == "com.dapr.event.sent"', path: '/big' }, { match: 'has(event.data.kind)', path: 'kinds' }], default: '/orders' } },
      { pubsubname: 'events', topic: 'empty' },
    ],
    subscribed: 2,
  });
  for (const body of ['{"amount": 150}', '{"amount": 5, "kind": "x"}', '{"amount": 5}']) assert.equal((await publish(producer.port, 'events', 'orders', body)).status, 204);
  assert.equal((await publish(producer.port, 'events', 'v1', '"one"')).status, 204);
  await waitFor('four deliveries', () => app.got.length >= 4);
  const at = (url: string): unknown[] => app.got.filter((d) => d.url === url).map(dataOf);
  assert.deepEqual(at('/big'), [{ amount: 150 }]);
  assert.deepEqual(at('/kinds'), [{ amount: 5, kind: 'x' }]);
  assert.deepEqual(at('/orders'), [{ amount: 5 }]);
  assert.deepEqual(at('/v1-route'), ['one']);
  const m = await metadataOf(consumer.port);
  assert.deepEqual(m.subscriptions, [
    { pubsubname: 'events', topic: 'v1', metadata: { priority: 'high' }, rules: [{ path: '/v1-route' }], deadLetterTopic: '', type: 'PROGRAMMATIC' },
    {
      pubsubname: 'events', topic: 'orders', deadLetterTopic: '', type: 'PROGRAMMATIC',
      rules: [{ match: 'event.data.amount > 100 && event.type == "com.dapr.event.sent"', path: '/big' }, { match: 'has(event.data.kind)', path: 'kinds' }, { path: '/orders' }],
    },
  ], 'the subscription without a route is left out, as daprd does');
  const comps = m.components as Array<{ name: string; type: string; capabilities: string[] }>;
  assert.deepEqual(comps.find((c) => c.name === 'events'), { name: 'events', type: 'pubsub.qscale.embedded', version: 'v1', capabilities: [] });
});

test('subscriptions - declarative v2alpha1 and v1alpha1 with scopes; a programmatic one replaces a declarative one of the same topic', { timeout: 90_000 }, async (t) => {
  const sub = (name: string, topic: string, route: string, scopes = ''): string => `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: ${name}
spec:
  pubsubname: events
  topic: ${topic}
  routes:
    default: ${route}
${scopes}
`;
  const { app, consumer, producer } = await run(t, {
    files: {
      'subs.yaml': [
        sub('mine', 'declared', '/declared', 'scopes: [consumer]'),
        sub('theirs', 'theirs', '/theirs', 'scopes: [someone-else]'),
        sub('replaced', 'both', '/from-yaml'),
        `apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: old
spec:
  pubsubname: events
  topic: old
  route: /old
`,
      ].join('---\n'),
    },
    subscriptions: [{ pubsubname: 'events', topic: 'both', route: '/from-app' }],
    subscribed: 3,
  });
  for (const topic of ['declared', 'theirs', 'both', 'old']) assert.equal((await publish(producer.port, 'events', topic, `"${topic}"`)).status, 204);
  await waitFor('three deliveries', () => app.got.length >= 3);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(app.got.map((d) => `${d.url} ${String(dataOf(d))}`).sort(), ['/declared declared', '/from-app both', '/old old']);
  const subs = (await metadataOf(consumer.port)).subscriptions as Array<{ topic: string; type: string }>;
  assert.deepEqual(subs.map((s) => `${s.topic}:${s.type}`), ['declared:DECLARATIVE', 'both:PROGRAMMATIC', 'old:DECLARATIVE']);
});

test('delivery - the request daprd makes: cloudevents content type, pubsubname, a traceparent continuing the event, the app token', { timeout: 90_000 }, async (t) => {
  const { app, producer } = await run(t, {
    subscriptions: [{ pubsubname: 'events', topic: 'h', route: 'h' }],
    consumer: { appApiToken: 'app-secret' },
    subscribed: 1,
  });
  await publish(producer.port, 'events', 'h', '{}', { 'content-type': 'application/json', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  await waitFor('the delivery', () => app.got.length >= 1);
  const d = app.got[0]!;
  assert.equal(d.method, 'POST');
  assert.equal(d.url, '/h');
  assert.equal(d.headers['content-type'], 'application/cloudevents+json');
  assert.equal(d.headers.pubsubname, 'events');
  assert.equal(d.headers['dapr-api-token'], 'app-secret');
  assert.match(String(d.headers.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.notEqual(d.headers.traceparent, d.json!.traceparent, 'the delivery is a span of its own');
});

test('delivery - SUCCESS, an empty 200 and a 2xx without JSON ack; RETRY and 500 come again; DROP and 404 are dropped', { timeout: 90_000 }, async (t) => {
  const attempts = new Map<string, number>();
  const { app, producer } = await run(t, {
    subscriptions: [{ pubsubname: 'events', topic: 'answers', route: '/a' }],
    subscribed: 1,
    answer: (d) => {
      const kind = String(dataOf(d));
      const n = (attempts.get(kind) ?? 0) + 1;
      attempts.set(kind, n);
      if (n > 1) return { status: 200, body: '{"status":"SUCCESS"}' };
      switch (kind) {
        case 'success': return { status: 200, body: '{"status":"SUCCESS"}' };
        case 'empty': return { status: 200 };
        case 'text': return { status: 201, body: 'fine, thanks' };
        case 'retry': return { status: 200, body: '{"status":"RETRY"}' };
        case 'unknown': return { status: 200, body: '{"status":"LATER"}' };
        case 'drop': return { status: 200, body: '{"status":"DROP"}' };
        case 'missing': return { status: 404, body: 'no such route' };
        default: return { status: 500, body: 'boom' };
      }
    },
  });
  const kinds = ['success', 'empty', 'text', 'retry', 'unknown', 'drop', 'missing', 'error'];
  for (const k of kinds) await publish(producer.port, 'events', 'answers', `"${k}"`);
  await waitFor('retried ones processed', () => ['retry', 'unknown', 'error'].every((k) => (attempts.get(k) ?? 0) >= 2));
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(Object.fromEntries(kinds.map((k) => [k, attempts.get(k)])), {
    success: 1, empty: 1, text: 1, retry: 2, unknown: 2, drop: 1, missing: 1, error: 2,
  });
  assert.ok(app.got.length === 11);
});

test('delivery - with deadLetterTopic a failed event goes there at once and is acked; a dropped one too', { timeout: 90_000 }, async (t) => {
  const attempts = new Map<string, number>();
  const { app, producer } = await run(t, {
    subscriptions: [
      { pubsubname: 'events', topic: 'work', route: '/work', deadLetterTopic: 'poison' },
      { pubsubname: 'events', topic: 'poison', route: '/poison' },
    ],
    subscribed: 2,
    answer: (d) => {
      if (d.url === '/poison') return { status: 200 };
      const k = String(dataOf(d));
      attempts.set(k, (attempts.get(k) ?? 0) + 1);
      return k === 'bad' ? { status: 500 } : k === 'drop' ? { status: 200, body: '{"status":"DROP"}' } : { status: 200 };
    },
  });
  for (const k of ['good', 'bad', 'drop']) await publish(producer.port, 'events', 'work', `"${k}"`);
  await waitFor('two dead letters', () => app.got.filter((d) => d.url === '/poison').length >= 2);
  await new Promise((r) => setTimeout(r, 500));
  const dead = app.got.filter((d) => d.url === '/poison');
  assert.deepEqual(dead.map((d) => dataOf(d)).sort(), ['bad', 'drop']);
  // The dead letter is the event as it was: its topic field still names the topic it was published to.
  assert.equal(dead[0]!.json!.topic, 'work');
  assert.deepEqual(Object.fromEntries(attempts), { good: 1, bad: 1, drop: 1 }, 'nothing delivered twice: the dead-letter topic took it');
});

test('delivery - without a dead-letter topic an event that keeps failing ends in the embedded queue\'s dead letters after maxDeliveryCount', { timeout: 90_000 }, async (t) => {
  let calls = 0;
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events', { retryBackoff: '0s', maxDeliveryCount: '3' }) });
  const app = await startPubSubApp([{ pubsubname: 'events', topic: 'fails', route: '/f' }], () => {
    calls++;
    return { status: 503 };
  });
  const consumer = await sidecarOn(dir, 'consumer', { appPort: app.port });
  t.after(async () => {
    await consumer.close();
    await app.close();
  });
  await waitFor('subscribed', async () => ((await metadataOf(consumer.port)) as { qscale: { subscriptions: unknown[] } }).qscale.subscriptions.length === 1);
  await publish(consumer.port, 'events', 'fails', '{}');
  await waitFor('three attempts', () => calls >= 3);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(calls, 3);
  const { QueueStore } = await import('../../src/backends/embedded/index.js');
  const { pubsubQueueName } = await import('../../src/backends/embedded/pubsub.js');
  const store = QueueStore.acquire(`${dir}/.qscale`);
  try {
    const dead = store.deadLetters(pubsubQueueName('events', 'fails', 'consumer'), 10);
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.reason, /status code returned: 503/);
  } finally {
    store.unref();
  }
});

test('delivery - a rawPayload subscription gets data_base64; an event no rule takes is dropped', { timeout: 90_000 }, async (t) => {
  const { app, producer } = await run(t, {
    subscriptions: [
      { pubsubname: 'events', topic: 'raw', route: '/raw', metadata: { rawPayload: 'true' } },
      { pubsubname: 'events', topic: 'ruled', routes: { rules: [{ match: 'event.data == "yes"', path: '/yes' }] } },
    ],
    subscribed: 2,
  });
  await publish(producer.port, 'events', 'raw', '{"x":1}', { 'content-type': 'application/json' }, '?metadata.rawPayload=true');
  await publish(producer.port, 'events', 'ruled', '"no"');
  await publish(producer.port, 'events', 'ruled', '"yes"');
  await waitFor('two deliveries', () => app.got.length >= 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(app.got.map((d) => d.url).sort(), ['/raw', '/yes']);
  const raw = app.got.find((d) => d.url === '/raw')!.json!;
  assert.equal(Buffer.from(String(raw.data_base64), 'base64').toString(), '{"x":1}');
});

test('delivery - --app-max-concurrency bounds calls to the app; a stop waits for the event in the app and acks it', { timeout: 90_000 }, async (t) => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events', { concurrency: '10' }) });
  const app = await startPubSubApp([{ pubsubname: 'events', topic: 'slow', route: '/slow' }], async (d) => {
    if (dataOf(d) === 'hold') await released;
    else await new Promise((r) => setTimeout(r, 20));
    return { status: 200 };
  });
  const consumer = await sidecarOn(dir, 'consumer', { appPort: app.port, appMaxConcurrency: 2 });
  t.after(() => app.close());
  await waitFor('subscribed', async () => ((await metadataOf(consumer.port)) as { qscale: { subscriptions: unknown[] } }).qscale.subscriptions.length === 1);
  for (let i = 0; i < 8; i++) await publish(consumer.port, 'events', 'slow', `${i}`);
  await waitFor('eight deliveries', () => app.got.length >= 8);
  assert.ok(app.maxConcurrent <= 2, `at most 2 calls at once, saw ${app.maxConcurrent}`);
  await publish(consumer.port, 'events', 'slow', '"hold"');
  await waitFor('the held event in the app', () => app.got.some((d) => dataOf(d) === 'hold'));
  const stopping = consumer.close();
  await new Promise((r) => setTimeout(r, 200));
  release();
  const r = await stopping;
  assert.equal(r.drained, true);
  // Nothing comes again: a fresh sidecar of the same app finds the queue empty.
  const again = await sidecarOn(dir, 'consumer', { appPort: app.port });
  await new Promise((r2) => setTimeout(r2, 800));
  await again.close();
  assert.equal(app.got.filter((d) => dataOf(d) === 'hold').length, 1);
});

test('delivery - an answer to GET /dapr/subscribe daprd cannot read starts no subscription, and says why once', { timeout: 90_000 }, async (t) => {
  const lines: string[] = [];
  const pino = (await import('pino')).default;
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const { producer } = await run(t, {
    subscriptions: [{ pubsubname: 'events', topic: 'x', routes: { rules: [{ match: 'event.data >', path: '/x' }] } }],
    consumer: { logger },
  });
  await waitFor('the error line', () => lines.some((l) => l.includes('is not a valid CEL expression')));
  const line = lines.find((l) => l.includes('is not a valid CEL expression'))!;
  assert.match(line, /no subscription of this app is started/);
  assert.equal((await publish(producer.port, 'events', 'x', '{}')).status, 204);
});

test('delivery - bulk subscribe: events reach the app as one bulk envelope and each entry\'s status decides', { timeout: 90_000 }, async (t) => {
  const entryStatus = new Map<string, number>();
  const { app, producer } = await run(t, {
    subscriptions: [{ pubsubname: 'events', topic: 'bulk', route: '/bulk', bulkSubscribe: { enabled: true, maxMessagesCount: 3, maxAwaitDurationMs: 200 } }],
    subscribed: 1,
    answer: (d) => {
      const entries = (d.json!.entries as Array<{ entryId: string; event: { data: string } }>);
      return {
        status: 200,
        body: JSON.stringify({
          statuses: entries.map((e) => {
            const n = (entryStatus.get(e.event.data) ?? 0) + 1;
            entryStatus.set(e.event.data, n);
            return { entryId: e.entryId, status: e.event.data === 'again' && n === 1 ? 'RETRY' : 'SUCCESS' };
          }),
        }),
      };
    },
  });
  for (const k of ['a', 'b', 'again']) await publish(producer.port, 'events', 'bulk', `"${k}"`);
  await waitFor('again delivered twice', () => (entryStatus.get('again') ?? 0) >= 2);
  const first = app.got[0]!;
  assert.equal(first.headers['content-type'], 'application/json');
  const env = first.json!;
  assert.deepEqual(Object.keys(env), ['entries', 'id', 'metadata', 'pubsubname', 'topic', 'type']);
  assert.equal(env.type, 'com.dapr.event.sent.bulk');
  assert.equal(env.topic, 'bulk');
  const entries = env.entries as Array<Record<string, unknown>>;
  assert.ok(entries.length >= 1);
  assert.deepEqual(Object.keys(entries[0]!), ['entryId', 'event', 'metadata', 'contentType']);
  assert.equal(entries[0]!.contentType, 'application/cloudevents+json');
  assert.equal(entryStatus.get('a'), 1);
  assert.equal(entryStatus.get('b'), 1);
});

test('metrics - daprd\'s pub/sub egress and ingress series on the metrics port', { timeout: 90_000 }, async (t) => {
  const lines: string[] = [];
  const pino = (await import('pino')).default;
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const { app, consumer } = await run(t, {
    subscriptions: [{ pubsubname: 'events', topic: 'm', route: '/m' }],
    consumer: { metrics: { port: 0, listenAddress: '127.0.0.1' }, logger },
    subscribed: 1,
    answer: (d) => (dataOf(d) === 'drop' ? { status: 200, body: '{"status":"DROP"}' } : { status: 200 }),
  });
  await publish(consumer.port, 'events', 'm', '"ok"');
  await publish(consumer.port, 'events', 'm', '"drop"');
  await waitFor('two deliveries', () => app.got.length >= 2);
  const port = Number(/metrics server started on 127\.0\.0\.1:(\d+)/.exec(lines.join('\n'))?.[1]);
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const families = parsePrometheus(text) as Array<{ name: string; metrics: Array<{ labels: Record<string, string>; value?: string }> }>;
  const family = (name: string) => families.find((f) => f.name === name);
  const egress = family('dapr_component_pubsub_egress_count');
  assert.ok(egress, text.slice(0, 500));
  assert.deepEqual(egress.metrics.map((m) => m.labels), [{ app_id: 'consumer', component: 'events', namespace: '', success: 'true', topic: 'm' }]);
  assert.equal(egress.metrics[0]!.value, '2');
  const ingress = family('dapr_component_pubsub_ingress_count')!;
  const byStatus = Object.fromEntries(ingress.metrics.map((m) => [`${m.labels.process_status}/${m.labels.status}`, m.value]));
  assert.deepEqual(byStatus, { 'success/success': '1', 'drop/success': '1' });
  assert.ok(family('dapr_component_pubsub_ingress_latencies'));
  assert.ok(family('dapr_component_pubsub_egress_latencies'));
});

test('--embedded - a pubsub.rabbitmq component is served by the embedded queue, keeping its name, topic and consumerID; a ttl still holds', { timeout: 90_000 }, async (t) => {
  const dir = resources({ 'pubsub.yaml': pubsubYaml('rabbit', { connectionString: 'amqp://nowhere:1', consumerID: 'billing', retryBackoff: '0s' }, 'pubsub.rabbitmq') });
  const app = await startPubSubApp([{ pubsubname: 'rabbit', topic: 'invoices', route: '/invoices' }]);
  const consumer = await sidecarOn(dir, 'consumer', { appPort: app.port, embedded: true });
  t.after(async () => {
    await consumer.close();
    await app.close();
  });
  await waitFor('subscribed', async () => ((await metadataOf(consumer.port)) as { qscale: { subscriptions: Array<{ state: string }> } }).qscale.subscriptions.some((s) => s.state === 'receiving'));
  assert.equal((await publish(consumer.port, 'rabbit', 'invoices', '{"n":1}', undefined, '?metadata.ttlInSeconds=60')).status, 204);
  await waitFor('the delivery', () => app.got.length >= 1);
  const e = app.got[0]!.json!;
  assert.equal(e.pubsubname, 'rabbit');
  assert.ok(typeof e.expiration === 'string', 'the embedded queue expires nothing itself: the sidecar writes the expiration');
  const comps = (await metadataOf(consumer.port)).components as Array<{ name: string; type: string; capabilities: string[] }>;
  assert.deepEqual(comps.find((c) => c.name === 'rabbit'), { name: 'rabbit', type: 'pubsub.rabbitmq', version: 'v1', capabilities: ['MESSAGE_TTL'] });
  const { QueueStore } = await import('../../src/backends/embedded/index.js');
  const { pubsubQueueName } = await import('../../src/backends/embedded/pubsub.js');
  const store = QueueStore.acquire(`${dir}/.qscale`);
  try {
    assert.deepEqual(store.topicQueues('pubsub/rabbit/invoices'), [pubsubQueueName('rabbit', 'invoices', 'billing')], 'one queue, named by the component\'s consumerID');
  } finally {
    store.unref();
  }
});
