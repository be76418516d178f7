/**
 * pubsub.rabbitmq against the RabbitMQ on this machine: the exchange and queue names daprd declares (and KEDA's
 * rabbitmq trigger measures), what becomes of a failed event with daprd's defaults, the properties a published event
 * carries, a queue declared otherwise, and the broker going away and coming back.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import type { HandlerResult, QueueMessage, ResolvedComponent } from '../../../src/backends/types.js';
import { rabbitmqPubSub } from '../../../src/backends/rabbitmq/pubsub.js';
import { rabbitmqTrigger } from '../../../src/backends/rabbitmq/trigger.js';
import type { PubSub } from '../../../src/pubsub/types.js';
import { createLogger, type Logger } from '../../../src/util/log.js';
import { needBroker, rabbitmqManagementUp, uniqueName } from '../../support/brokers.js';
import { startProxy } from '../proxy.js';
import { pubsubComponent } from '../pubsub-component.js';
import { AMQP_URL, MGMT_URL, trigger } from './helpers.js';

const silent = createLogger('rabbitmq-pubsub-test').child({}, { level: 'silent' });
const FILE = 'rabbitmq/pubsub.yaml';

function rabbitmqPubSubComponent(metadata: Record<string, string>, opts: { name?: string; initTimeout?: string } = {}): ResolvedComponent {
  return pubsubComponent('pubsub.rabbitmq', metadata, { ...opts, file: FILE });
}

interface Env {
  topic: string;
  open(appId: string, metadata?: Record<string, string>, logger?: Logger): Promise<PubSub>;
  admin: Channel;
}

async function setup(t: TestContext, extra: { exchanges?: string[]; queues?: (topic: string) => string[] } = {}): Promise<Env | undefined> {
  if (!(await needBroker(t, 'rabbitmq'))) return undefined;
  const topic = uniqueName('ps-rmq');
  const opened: PubSub[] = [];
  const conn: ChannelModel = await amqp.connect(AMQP_URL);
  const admin = await conn.createChannel();
  admin.on('error', () => undefined);
  t.after(async () => {
    for (const p of opened) await p.close();
    const ch = await conn.createChannel();
    for (const q of [`app-a-${topic}`, `app-b-${topic}`, `dlq-app-a-${topic}`, ...(extra.queues?.(topic) ?? [])]) await ch.deleteQueue(q);
    for (const e of [topic, `dlx-app-a-${topic}`, ...(extra.exchanges ?? [])]) await ch.deleteExchange(e);
    await conn.close();
  });
  return {
    topic,
    admin,
    async open(appId, metadata = {}, logger = silent) {
      const p = rabbitmqPubSub.create(rabbitmqPubSubComponent({ connectionString: AMQP_URL, ...metadata }), { logger, dataDir: '/tmp', appId });
      opened.push(p);
      await p.init();
      return p;
    },
  };
}

/** Subscribes until stop(); `answer` decides each delivery. */
function run(p: PubSub, topic: string, answer: (m: QueueMessage) => HandlerResult | Promise<HandlerResult>, opts: { concurrency?: number; onBrokerState?: (err: unknown) => void } = {}) {
  const seen: QueueMessage[] = [];
  const ac = new AbortController();
  const done = p.subscribe({ topic, metadata: {} }, async (m) => {
    seen.push(m);
    return answer(m);
  }, { concurrency: opts.concurrency ?? 4, signal: ac.signal, ...(opts.onBrokerState ? { onBrokerState: opts.onBrokerState } : {}) });
  return { seen, stop: async () => { ac.abort(); await done; } };
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function getOne(ch: Channel, queue: string): Promise<GetMessage> {
  let m: GetMessage | false = false;
  await until(async () => (m = await ch.get(queue, { noAck: true })) !== false, `a message in ${queue}`);
  return m as unknown as GetMessage;
}

test('rabbitmq pubsub - prepare declares the exchange <topic> and the queue <app id>-<topic> daprd declares, and KEDA\'s rabbitmq trigger on that queue counts the waiting events', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a');
  await app.prepare({ topic: env.topic, metadata: {} });
  // daprd's defaults: a durable fanout exchange, auto-deleted when unused; the queue durable, auto-delete, classic.
  await env.admin.checkExchange(env.topic);
  const conn = await amqp.connect(AMQP_URL);
  t.after(() => conn.close());
  const probe = await conn.createChannel();
  probe.on('error', () => undefined);
  await assert.rejects(probe.assertExchange(env.topic, 'topic', { durable: true, autoDelete: true }), /inequivalent arg 'type'/, 'a fanout exchange');
  const same = await conn.createChannel();
  await same.assertExchange(env.topic, 'fanout', { durable: true, autoDelete: true });
  await same.assertQueue(`app-a-${env.topic}`, { durable: true, autoDelete: true, arguments: { 'x-queue-type': 'classic' } });
  const pub = await env.open('publisher');
  for (let i = 0; i < 7; i++) await pub.publish(env.topic, Buffer.from(`{"i":${i}}`), {});
  const queueName = `app-a-${env.topic}`;
  const viaAmqp = rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName, mode: 'QueueLength', value: '5' }));
  t.after(() => viaAmqp.close());
  await until(async () => (await viaAmqp.metricAndActivity()).value === 7, 'the trigger counts 7 events');
  assert.deepEqual(await viaAmqp.metricAndActivity(), { value: 7, active: true });
});

test('rabbitmq pubsub - consumerID names the queue instead of the app id; subscription metadata queueName names it outright', { timeout: 120_000 }, async (t) => {
  const env = await setup(t, { queues: (topic) => [`orders-svc-${topic}`, `explicit-${topic}`] });
  if (!env) return;
  const app = await env.open('app-a', { consumerID: 'orders-svc' });
  await app.prepare({ topic: env.topic, metadata: {} });
  await env.admin.checkQueue(`orders-svc-${env.topic}`);
  await app.prepare({ topic: env.topic, metadata: { queueName: `explicit-${env.topic}` } });
  await env.admin.checkQueue(`explicit-${env.topic}`);
  await assert.rejects(env.admin.checkQueue(`app-a-${env.topic}`), /NOT_FOUND/, 'no queue named after the app id');
});

test('rabbitmq pubsub - daprd\'s default (requeueInFailure false): a failed event is dropped, not delivered again', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a', { deletedWhenUnused: 'false' });
  await app.prepare({ topic: env.topic, metadata: {} });
  const sub = run(app, env.topic, (m) => m.data.toString() !== '"poison"');
  // Every app's component must declare the topic's exchange alike.
  const pub = await env.open('publisher', { deletedWhenUnused: 'false' });
  await pub.publish(env.topic, Buffer.from('"poison"'), {});
  await pub.publish(env.topic, Buffer.from('"fine"'), {});
  await until(() => sub.seen.length >= 2, 'both events delivered once');
  await new Promise((r) => setTimeout(r, 1500)); // room for a redelivery to show
  await sub.stop();
  assert.deepEqual(sub.seen.map((m) => m.data.toString()).sort(), ['"fine"', '"poison"'], 'each delivered exactly once');
  assert.equal((await env.admin.checkQueue(`app-a-${env.topic}`)).messageCount, 0, 'nothing left in the queue');
});

test('rabbitmq pubsub - enableDeadLetter: a failed event lands in dlq-<queue> through the exchange dlx-<queue>, as daprd names them', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a', { enableDeadLetter: 'true', deletedWhenUnused: 'false' });
  await app.prepare({ topic: env.topic, metadata: {} });
  await env.admin.checkExchange(`dlx-app-a-${env.topic}`);
  const sub = run(app, env.topic, () => ({ ok: false, reason: 'app answered 500' }));
  const pub = await env.open('publisher', { deletedWhenUnused: 'false' });
  await pub.publish(env.topic, Buffer.from('{"order":42}'), { messageID: 'evt-42' });
  const dead = await getOne(env.admin, `dlq-app-a-${env.topic}`);
  await sub.stop();
  assert.equal(dead.content.toString(), '{"order":42}');
  assert.equal(dead.properties.messageId, 'evt-42');
  assert.equal(sub.seen.length, 1, 'delivered once, then dead-lettered');
});

test('rabbitmq pubsub - requeueInFailure: a failed event comes back after the redelivery wait; retryBackoff 0s requeues at once as daprd', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a', { requeueInFailure: 'true', retryBackoff: '0s' });
  await app.prepare({ topic: env.topic, metadata: {} });
  let failures = 0;
  const sub = run(app, env.topic, () => ++failures > 3);
  const pub = await env.open('publisher');
  await pub.publish(env.topic, Buffer.from('"again"'), {});
  await until(() => sub.seen.length >= 4, 'three failures, then success');
  await sub.stop();
  assert.deepEqual(sub.seen.map((m) => m.deliveryCount), [1, 2, 3, 4], 'the delivery count grows with each failure');
});

test('rabbitmq pubsub - a published event carries daprd\'s properties: text/plain, messageID, priority, ttl as expiration, deliveryMode', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a');
  await app.prepare({ topic: env.topic, metadata: {} });
  const pub = await env.open('publisher', { deliveryMode: '2', ttlInSeconds: '60' });
  await pub.publish(env.topic, Buffer.from('plain'), {});
  await pub.publish(env.topic, Buffer.from('{"a":1}'), {
    contentType: 'application/cloudevents+json', messageID: 'm-1', correlationID: 'c-1', type: 'order', priority: '300', ttlInSeconds: '5',
  });
  const q = `app-a-${env.topic}`;
  const first = await getOne(env.admin, q);
  assert.equal(first.properties.contentType, 'text/plain');
  assert.equal(first.properties.deliveryMode, 2);
  assert.equal(first.properties.expiration, '60000', "the component's ttlInSeconds");
  assert.equal(first.properties.messageId, undefined, 'daprd sets no message id of its own');
  const second = await getOne(env.admin, q);
  assert.equal(second.properties.contentType, 'application/cloudevents+json');
  assert.equal(second.properties.messageId, 'm-1');
  assert.equal(second.properties.correlationId, 'c-1');
  assert.equal(second.properties.type, 'order');
  assert.equal(second.properties.priority, 255, 'clamped to a byte');
  assert.equal(second.properties.expiration, '5000', "the event's own ttlInSeconds");
});

test('rabbitmq pubsub - publishMessagePropertiesToMetadata gives the app metadata.messageid and friends; without it, nothing', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  for (const [flag, want] of [['false', {}], ['true', { 'metadata.messageid': 'm-7', 'metadata.contenttype': 'text/plain' }]] as const) {
    const app = await env.open('app-a', { publishMessagePropertiesToMetadata: flag });
    await app.prepare({ topic: env.topic, metadata: {} });
    const sub = run(app, env.topic, () => true);
    const pub = await env.open('publisher');
    await pub.publish(env.topic, Buffer.from('x'), { messageID: 'm-7' });
    await until(() => sub.seen.length >= 1, 'the event');
    await sub.stop();
    assert.deepEqual(sub.seen[0]?.metadata, want);
  }
});

test('rabbitmq pubsub - concurrencyMode single handles one event at a time', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a', { concurrencyMode: 'single' });
  await app.prepare({ topic: env.topic, metadata: {} });
  let now = 0;
  let most = 0;
  const sub = run(app, env.topic, async () => {
    most = Math.max(most, ++now);
    await new Promise((r) => setTimeout(r, 20));
    now--;
    return true;
  }, { concurrency: 8 });
  const pub = await env.open('publisher');
  for (let i = 0; i < 10; i++) await pub.publish(env.topic, Buffer.from(String(i)), {});
  await until(() => sub.seen.length >= 10, 'all events');
  await sub.stop();
  assert.equal(most, 1);
});

test('rabbitmq pubsub - a queue declared with other settings: prepare names the queue and the way out', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  await env.admin.assertExchange(env.topic, 'fanout', { durable: true, autoDelete: true });
  await env.admin.assertQueue(`app-a-${env.topic}`, { durable: false, autoDelete: false });
  const app = await env.open('app-a');
  await assert.rejects(app.prepare({ topic: env.topic, metadata: {} }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_BROKER');
    assert.match(err.message, new RegExp(`^component orders-pubsub \\(pubsub\\.rabbitmq\\): cannot prepare the subscription of topic '${env.topic}' \\(queue 'app-a-${env.topic}'\\) on RabbitMQ at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:5672`));
    assert.match(err.message, /inequivalent arg 'durable'.*exists with other settings.*or delete the queue/);
    return true;
  });
});

test('rabbitmq pubsub - a bad subscription queueType is refused before anything is declared, naming the field', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const app = await env.open('app-a');
  await assert.rejects(app.prepare({ topic: env.topic, metadata: { queueType: 'stream' } }),
    /subscription to topic '.*': metadata 'queueType' must be classic or quorum, got 'stream'/);
  await assert.rejects(env.admin.checkExchange(env.topic), /NOT_FOUND/);
});

test('rabbitmq pubsub - the broker going away and coming back: one outage report, publishes refused meanwhile, events flow again after', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const proxy = await startProxy(5672);
  t.after(() => proxy.close());
  const via = proxy.url('amqp').replace('amqp://', 'amqp://guest:guest@');
  const app = await env.open('app-a', { connectionString: via, reconnectWaitSeconds: '0.3', deletedWhenUnused: 'false' });
  await app.prepare({ topic: env.topic, metadata: {} });
  const states: Array<string | undefined> = [];
  const sub = run(app, env.topic, () => true, { onBrokerState: (err) => states.push(err === undefined ? undefined : String((err as Error).message)) });
  const pub = await env.open('publisher', { connectionString: via, reconnectWaitSeconds: '0.3', deletedWhenUnused: 'false' });
  await pub.publish(env.topic, Buffer.from('"before"'), {});
  await until(() => sub.seen.length >= 1, 'the event before the outage');

  await proxy.setMode('refuse');
  await until(() => states.length >= 1, 'the outage is reported');
  assert.match(states[0] ?? '', /^component orders-pubsub \(pubsub\.rabbitmq\): RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ is unreachable \(connection refused/);
  await until(async () => {
    const r = await pub.publish(env.topic, Buffer.from('"lost"'), {}).then(() => 'stored', (err: Error) => err.message);
    return r !== 'stored';
  }, 'a publish fails while the broker is away');
  await assert.rejects(pub.publish(env.topic, Buffer.from('"lost"'), {}),
    /cannot send \(the message was not stored\): RabbitMQ at .* is unreachable.*reconnects every 0\.3 s \(reconnectWaitSeconds\)/);

  await proxy.setMode('relay');
  await until(() => states.at(-1) === undefined && states.length >= 2, 'the recovery is reported');
  await until(async () => pub.publish(env.topic, Buffer.from('"after"'), {}).then(() => true, () => false), 'publishing works again');
  await until(() => sub.seen.some((m) => m.data.toString() === '"after"'), 'the event after the outage');
  await sub.stop();
  assert.equal(states.filter((s) => s !== undefined).length, 1, `one outage line, not one per retry: ${JSON.stringify(states)}`);
  assert.ok(!sub.seen.some((m) => m.data.toString() === '"lost"'), 'a refused publish stored nothing');
});

test('rabbitmq pubsub - KEDA\'s rabbitmq trigger over the management API counts the queue\'s ready and unacked events', { timeout: 120_000 }, async (t) => {
  const env = await setup(t);
  if (!env) return;
  if (!(await rabbitmqManagementUp())) {
    t.skip('the RabbitMQ management API is not reachable on 127.0.0.1:15672');
    return;
  }
  const app = await env.open('app-a');
  await app.prepare({ topic: env.topic, metadata: {} });
  const pub = await env.open('publisher');
  for (let i = 0; i < 3; i++) await pub.publish(env.topic, Buffer.from(String(i)), {});
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const sub = run(app, env.topic, async () => (await held, true), { concurrency: 1 });
  await until(() => sub.seen.length >= 1, 'one event in hand');
  const viaHttp = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: `app-a-${env.topic}`, mode: 'QueueLength', value: '5' }));
  t.after(() => viaHttp.close());
  // The management API's counts trail by a few seconds.
  await until(async () => (await viaHttp.metricAndActivity()).value === 3, '2 ready + 1 unacked');
  release();
  await until(() => sub.seen.length >= 3, 'all events');
  await sub.stop();
});
