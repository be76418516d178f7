/**
 * pubsub.azure.servicebus.topics / .queues with the real @azure/service-bus SDK. Azure cannot be reached from here:
 * events travel through the AMQP test peer (amqp-peer.ts — not Service Bus), which this file teaches topics by
 * copying what is sent to a topic into `<topic>/Subscriptions/<name>` for each subscription the stand-in management
 * API created; management calls go to that recording stand-in (not the ATOM API); failures to reach a namespace are
 * shown with closed ports. The conformance suite runs the same pub/sub against a real namespace when
 * QSCALE_TEST_SERVICEBUS_CONNECTION is set.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import type { EventContext } from 'rhea';
import { ServiceBusPubSub, serviceBusQueuesPubSub, serviceBusTopicsPubSub } from '../../../src/backends/azure/servicebus/pubsub.js';
import { createSubscriptionOptions, type PubSubEntityAdmin } from '../../../src/backends/azure/servicebus/pubsub-admin.js';
import { parseServiceBusPubSub } from '../../../src/backends/azure/servicebus/pubsub-metadata.js';
import type { QueueCreationProperties } from '../../../src/backends/azure/servicebus/metadata.js';
import { createServiceBusScaler } from '../../../src/backends/azure/servicebus/trigger.js';
import type { HandlerResult, QueueMessage, ResolvedComponent } from '../../../src/backends/types.js';
import type { PubSub } from '../../../src/pubsub/types.js';
import { createLogger } from '../../../src/util/log.js';
import { closedPort } from '../closed-port.js';
import { startProxy } from '../proxy.js';
import { pubsubComponent } from '../pubsub-component.js';
import { AmqpTestPeer } from './amqp-peer.js';
import { RecordingAdmin } from './peer-admin.js';
import { SECRET_KEY, trigger } from './support.js';

const logger = createLogger('servicebus-pubsub-test').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
const PEER = 'via AMQP test peer (not Service Bus)';
const TOPICS = 'pubsub.azure.servicebus.topics';
const QUEUES = 'pubsub.azure.servicebus.queues';

type AdminCall = { op: string; entity: string; props?: QueueCreationProperties };

/** Stands in for the management API (not Service Bus's): records each call; subscriptions it creates fan out on the peer. */
class StandInAdmin implements PubSubEntityAdmin {
  readonly calls: AdminCall[] = [];
  readonly topics = new Map<string, Set<string>>();
  readonly queues = new Set<string>();
  constructor(peer?: AmqpTestPeer) {
    if (peer) teachTopics(peer, this.topics);
  }
  async ping(): Promise<void> {
    this.calls.push({ op: 'ping', entity: '' });
  }
  async queueExists(q: string): Promise<boolean> {
    this.calls.push({ op: 'queueExists', entity: q });
    return this.queues.has(q);
  }
  async createQueue(q: string, props: QueueCreationProperties): Promise<void> {
    this.calls.push({ op: 'createQueue', entity: q, props });
    this.queues.add(q);
  }
  async topicExists(t: string): Promise<boolean> {
    this.calls.push({ op: 'topicExists', entity: t });
    return this.topics.has(t);
  }
  async createTopic(t: string): Promise<void> {
    this.calls.push({ op: 'createTopic', entity: t });
    this.topics.set(t, new Set());
  }
  async subscriptionExists(t: string, s: string): Promise<boolean> {
    this.calls.push({ op: 'subscriptionExists', entity: `${t}/${s}` });
    return this.topics.get(t)?.has(s) ?? false;
  }
  async createSubscription(t: string, s: string, props: QueueCreationProperties): Promise<void> {
    this.calls.push({ op: 'createSubscription', entity: `${t}/${s}`, props });
    this.topics.get(t)?.add(s);
  }
}

/** The peer keeps queues only: an event sent to a topic is copied to each of its subscriptions' entity paths. */
function teachTopics(peer: AmqpTestPeer, topics: Map<string, Set<string>>): void {
  const p = peer as unknown as { onMessage(ctx: EventContext): void };
  const deliver = p.onMessage.bind(peer);
  p.onMessage = (ctx: EventContext) => {
    const target = String((ctx.receiver?.target as { address?: unknown } | undefined)?.address ?? '');
    const subs = topics.get(target);
    if (!subs) return deliver(ctx);
    for (const s of subs) deliver({ ...ctx, receiver: { target: { address: `${target}/Subscriptions/${s}` } } } as unknown as EventContext);
  };
}

interface Env {
  peer: AmqpTestPeer;
  admin: StandInAdmin;
  open(appId: string, metadata?: Record<string, string>): Promise<PubSub>;
}

async function setup(t: TestContext, type: string, base: Record<string, string> = {}): Promise<Env> {
  const peer = await AmqpTestPeer.start();
  const admin = new StandInAdmin(peer);
  const opened: PubSub[] = [];
  t.after(async () => {
    for (const p of opened) await p.close();
    await peer.close();
  });
  return {
    peer,
    admin,
    async open(appId, metadata = {}) {
      const c = pubsubComponent(type, { connectionString: peer.connectionString(), ...base, ...metadata }, { file: 'azure/pubsub.yaml' });
      const s = parseServiceBusPubSub(c, type === TOPICS ? 'topics' : 'queues');
      const messaging = new ServiceBusClient(s.connection.withoutEntityPath, { retryOptions: { maxRetries: 1, timeoutInMs: 5000 } });
      const p = new ServiceBusPubSub(c, s, { logger, dataDir: '/tmp', appId }, { messaging, admin });
      opened.push(p);
      await p.init();
      return p;
    },
  };
}

function run(p: PubSub, topic: string, answer: (m: QueueMessage) => HandlerResult | Promise<HandlerResult>, opts: { concurrency?: number; onBrokerState?: (err: unknown) => void } = {}) {
  const seen: QueueMessage[] = [];
  const done: QueueMessage[] = [];
  const ac = new AbortController();
  const running = p.subscribe({ topic, metadata: {} }, async (m) => {
    seen.push(m);
    const r = await answer(m);
    if (r === true) done.push(m);
    return r;
  }, { concurrency: opts.concurrency ?? 4, signal: ac.signal, ...(opts.onBrokerState ? { onBrokerState: opts.onBrokerState } : {}) });
  return { seen, done, stop: async () => { ac.abort(); await running; } };
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const texts = (ms: QueueMessage[]): string[] => ms.map((m) => m.data.toString()).sort();

test(`servicebus pubsub - topics ${PEER}: each app reads its subscription named after its app id, replicas share it, every app gets every event`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, TOPICS);
  const [a1, a2, b] = [await env.open('app-a'), await env.open('app-a'), await env.open('app-b')];
  await a1.prepare({ topic: 'orders', metadata: {} });
  await b.prepare({ topic: 'orders', metadata: {} });
  const subs = [run(a1, 'orders', () => true, { concurrency: 2 }), run(a2, 'orders', () => true, { concurrency: 2 }), run(b, 'orders', () => true)];
  const pub = await env.open('publisher');
  const sent = Array.from({ length: 12 }, (_, i) => `{"i":${i}}`);
  for (const s of sent) await pub.publish('orders', Buffer.from(s), {});
  const [s1, s2, sb] = subs as [ReturnType<typeof run>, ReturnType<typeof run>, ReturnType<typeof run>];
  await until(() => s1.done.length + s2.done.length >= 12 && sb.done.length >= 12, 'both apps got every event');
  for (const s of subs) await s.stop();
  assert.deepEqual(texts([...s1.done, ...s2.done]), [...sent].sort(), 'app-a: each event once across its replicas');
  assert.deepEqual(texts(sb.done), [...sent].sort(), 'app-b: every event');
  // daprd's EnsureTopic / EnsureSubscription: the topic once, then each app's subscription named after its app id.
  const created = env.admin.calls.filter((c) => c.op.startsWith('create')).map((c) => `${c.op} ${c.entity}`);
  assert.deepEqual(created, ['createTopic orders', 'createSubscription orders/app-a', 'createSubscription orders/app-b']);
});

test(`servicebus pubsub - KEDA's azure-servicebus trigger with topicName and subscriptionName <app id> measures the subscription an app reads`, { timeout: 120_000 }, async () => {
  const admin = new RecordingAdmin(undefined, { active: 9, deadLetter: 0, scheduled: 0 });
  const c = pubsubComponent(TOPICS, { connectionString: `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=${SECRET_KEY}` });
  const s = parseServiceBusPubSub(c, 'topics');
  assert.equal(s.consumerID, undefined, 'the subscription is the app id');
  const scaler = createServiceBusScaler(trigger({ topicName: 'orders', subscriptionName: 'checkout', messageCount: '5', connection: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=x' }), admin);
  assert.deepEqual(await scaler.metricAndActivity(), { value: 9, active: true });
  assert.deepEqual(admin.calls, [{ op: 'subscriptionCounts', topic: 'orders', subscription: 'checkout' }]);
  const sc = parseServiceBusPubSub(pubsubComponent(TOPICS, { connectionString: `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=${SECRET_KEY}`, consumerID: 'billing' }), 'topics');
  assert.equal(sc.consumerID, 'billing', 'consumerID names the subscription instead');
});

test(`servicebus pubsub - queues ${PEER}: the queue is named after the topic and created with the creation properties; every app competes for its events`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, QUEUES, { lockDurationInSec: '30', maxDeliveryCount: '4', defaultMessageTimeToLiveInSec: '3600' });
  const [a, b] = [await env.open('app-a'), await env.open('app-b')];
  await a.prepare({ topic: 'jobs', metadata: {} });
  await b.prepare({ topic: 'jobs', metadata: {} });
  const subs = [run(a, 'jobs', () => true), run(b, 'jobs', () => true)];
  const pub = await env.open('publisher');
  for (let i = 0; i < 8; i++) await pub.publish('jobs', Buffer.from(String(i)), {});
  await until(() => subs[0]!.done.length + subs[1]!.done.length >= 8, 'all events');
  for (const s of subs) await s.stop();
  assert.deepEqual(texts([...subs[0]!.done, ...subs[1]!.done]), ['0', '1', '2', '3', '4', '5', '6', '7'], 'each event once, whichever app');
  assert.deepEqual(env.admin.calls.filter((c) => c.op === 'createQueue'),
    [{ op: 'createQueue', entity: 'jobs', props: { lockDurationSec: 30, maxDeliveryCount: 4, defaultMessageTtlSec: 3600, autoDeleteOnIdleSec: undefined } }]);
  assert.equal(env.admin.calls.filter((c) => c.op.includes('opic') || c.op.includes('ubscription')).length, 0, 'no topic or subscription for queues');
});

test(`servicebus pubsub - ${PEER}: exactly the bytes, and daprd's metadata.* headers (application properties, MessageId, DeliveryCount, LockToken ...)`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, QUEUES, { disableEntityManagement: 'true' });
  const app = await env.open('app-a');
  const sub = run(app, 'q1', () => true);
  const pub = await env.open('publisher');
  await pub.publish('q1', Buffer.from('{"order":1,"note":"naïve ✓"}'), { MessageId: 'm-1', CorrelationId: 'c-1', Label: 'order', tenant: 'acme', ttlInSeconds: '60' });
  await until(() => sub.done.length >= 1, 'the event');
  await sub.stop();
  const m = sub.done[0]!;
  assert.equal(m.data.toString(), '{"order":1,"note":"naïve ✓"}');
  assert.equal(m.deliveryCount, 1);
  assert.equal(m.id, 'm-1');
  const md = m.metadata;
  assert.equal(md['metadata.MessageId'], 'm-1');
  assert.equal(md['metadata.CorrelationId'], 'c-1');
  assert.equal(md['metadata.Label'], 'order');
  assert.equal(md['metadata.tenant'], 'acme', 'an application property, unescaped');
  assert.equal(md['metadata.DeliveryCount'], '1');
  assert.match(md['metadata.EnqueuedTimeUtc'] ?? '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'an HTTP date');
  assert.match(md['metadata.SequenceNumber'] ?? '', /^\d+$/);
  assert.equal(Buffer.from(md['metadata.LockToken'] ?? '', 'base64').length, 16, 'the lock token\'s 16 bytes');
  assert.equal(md['metadata.ttlInSeconds'], undefined, 'the TTL is the message\'s time to live, not a property');
  assert.equal(env.admin.calls.length, 0, 'disableEntityManagement: no management call');
});

// One case per test: with both at once, the peer can be slow to answer the SDK's drain of a receive call while an
// abandoned event comes back; the SDK then closes its link and settles through $management, which the peer lacks.
test(`servicebus pubsub - ${PEER}: a failed event is abandoned at once and comes again with its delivery count`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, QUEUES, { disableEntityManagement: 'true' });
  const app = await env.open('app-a');
  const sub = run(app, 'q2', (m) => m.deliveryCount >= 3);
  const pub = await env.open('publisher');
  await pub.publish('q2', Buffer.from('"fails twice"'), {});
  await until(() => sub.done.length >= 1, 'processed on its third delivery');
  await sub.stop();
  assert.deepEqual(sub.seen.map((m) => [m.deliveryCount, m.metadata['metadata.DeliveryCount']]), [[1, '1'], [2, '2'], [3, '3']]);
  assert.equal(env.peer.stats.abandons, 2, 'abandoned, not left to expire');
  assert.deepEqual(env.peer.counts('q2'), { active: 0, deadLetter: 0, locked: 0 }, 'completed on its third delivery');
});

test(`servicebus pubsub - ${PEER}: an event whose handler outlives handlerTimeoutInSec is abandoned then, and its late answer completes nothing`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, QUEUES, { disableEntityManagement: 'true', handlerTimeoutInSec: '1' });
  const app = await env.open('app-a');
  const slow: Array<() => void> = [];
  const sub = run(app, 'q3', async (m) => {
    if (m.deliveryCount === 1) await new Promise<void>((r) => slow.push(r)); // answers only when released
    return true;
  });
  const pub = await env.open('publisher');
  await pub.publish('q3', Buffer.from('"slow once"'), {});
  await until(() => sub.done.length >= 1, 'processed on its second delivery');
  assert.equal(slow.length, 1, 'the first call is still running');
  for (const r of slow) r();
  await until(() => sub.done.length >= 2, 'the late answer came');
  await sub.stop();
  assert.deepEqual(sub.seen.map((m) => m.deliveryCount), [1, 2]);
  assert.equal(env.peer.stats.abandons, 1, 'abandoned at the timeout');
  assert.deepEqual(env.peer.counts('q3'), { active: 0, deadLetter: 0, locked: 0 }, 'completed once, on the second delivery');
});

test(`servicebus pubsub - ${PEER}: a subscriber stopped mid-event loses nothing, the next replica gets it`, { timeout: 120_000 }, async (t) => {
  const env = await setup(t, TOPICS);
  const first = await env.open('app-a');
  await first.prepare({ topic: 'evts', metadata: {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const sub1 = run(first, 'evts', async () => (await released, false), { concurrency: 1 });
  const pub = await env.open('publisher');
  await pub.publish('evts', Buffer.from('{"only":1}'), {});
  await until(() => sub1.seen.length >= 1, 'in hand');
  const stopping = sub1.stop();
  release();
  await stopping;
  const second = await env.open('app-a');
  const sub2 = run(second, 'evts', () => true);
  await until(() => sub2.done.length >= 1, 'the next replica gets it');
  await sub2.stop();
  assert.deepEqual(texts(sub2.done), ['{"only":1}']);
});

test('servicebus pubsub - subscription metadata requireSessions is refused, naming the field', { timeout: 60_000 }, async (t) => {
  const env = await setup(t, TOPICS, { disableEntityManagement: 'true' });
  const app = await env.open('app-a');
  await assert.rejects(app.prepare({ topic: 'x', metadata: { requireSessions: 'true' } }),
    (err: Error & { field?: string }) => err.field === 'requireSessions' && /metadata 'requireSessions' is not supported by qscale/.test(err.message));
});

test('servicebus pubsub - the SDK gets daprd\'s subscription creation properties as ISO 8601 durations', { timeout: 60_000 }, () => {
  assert.deepEqual(createSubscriptionOptions({ lockDurationSec: 30, defaultMessageTtlSec: 3600, maxDeliveryCount: 4, autoDeleteOnIdleSec: 600 }),
    { lockDuration: 'PT30S', defaultMessageTimeToLive: 'PT3600S', maxDeliveryCount: 4, autoDeleteOnIdle: 'PT600S' });
  assert.deepEqual(createSubscriptionOptions({ lockDurationSec: undefined, defaultMessageTtlSec: undefined, maxDeliveryCount: undefined, autoDeleteOnIdleSec: undefined }), {},
    'nothing set: the server decides, as daprd leaves it');
});

function unreachableComponent(type: string, port: number, extra: Record<string, string> = {}, emulator = true): ResolvedComponent {
  const cs = `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY}${emulator ? ';UseDevelopmentEmulator=true' : ''}`;
  return pubsubComponent(type, { connectionString: cs, timeoutInSec: '2', publishMaxRetries: '0', minConnectionRecoveryInSec: '0', maxConnectionRecoveryInSec: '1', ...extra }, { initTimeout: '2s', file: 'azure/pubsub.yaml' });
}

test('servicebus pubsub - a namespace that cannot be reached (closed port, TLS): init names the component, the namespace and the management API, never the key', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const p = serviceBusTopicsPubSub.create(unreachableComponent(TOPICS, port, {}, false), { logger, dataDir: '/tmp', appId: 'app-a' });
  await assert.rejects(p.init(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_BROKER');
    assert.match(err.message, new RegExp(`^component orders-pubsub \\(pubsub\\.azure\\.servicebus\\.topics\\): cannot reach the namespace through the management API \\(Service Bus 127\\.0\\.0\\.1:${port}\\): `));
    assert.ok(!err.message.includes(SECRET_KEY), err.message);
    return true;
  });
  await p.close();
});

test('servicebus pubsub - a namespace that cannot be reached (closed port, emulator): publish fails with a clear error, the subscriber reports the outage once', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const p = serviceBusQueuesPubSub.create(unreachableComponent(QUEUES, port), { logger, dataDir: '/tmp', appId: 'app-a' });
  await p.init();
  await assert.rejects(p.publish('jobs', Buffer.from('x'), {}), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_BROKER');
    assert.match(err.message, /^component orders-pubsub \(pubsub\.azure\.servicebus\.queues\): (publish to queue 'jobs' failed \(Service Bus 127\.0\.0\.1:\d+\)|cannot send)/);
    assert.ok(!err.message.includes(SECRET_KEY), err.message);
    return true;
  });
  const states: unknown[] = [];
  const ac = new AbortController();
  const running = p.subscribe({ topic: 'jobs', metadata: {} }, async () => true, { concurrency: 1, signal: ac.signal, onBrokerState: (e) => states.push(e) });
  await until(() => states.length >= 1, 'the outage is reported', 60_000);
  ac.abort();
  await running;
  await p.close();
  assert.match(String((states[0] as Error).message), /^component orders-pubsub \(pubsub\.azure\.servicebus\.queues\): Azure Service Bus at sb:\/\/127\.0\.0\.1:\d+ is unreachable \(queue 'jobs': /);
  assert.ok(!String((states[0] as Error).message).includes(SECRET_KEY));
});

test(`servicebus pubsub - ${PEER} behind a relay: the namespace going away and coming back is reported once each way, and events flow again`, { timeout: 180_000 }, async (t) => {
  const peer = await AmqpTestPeer.start();
  const proxy = await startProxy(peer.port);
  t.after(async () => {
    await proxy.close();
    await peer.close();
  });
  const cs = `Endpoint=sb://127.0.0.1:${proxy.port}/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY};UseDevelopmentEmulator=true`;
  const open = async (): Promise<PubSub> => {
    const c = pubsubComponent(QUEUES, { connectionString: cs, disableEntityManagement: 'true', minConnectionRecoveryInSec: '0', maxConnectionRecoveryInSec: '1', timeoutInSec: '3' });
    const s = parseServiceBusPubSub(c, 'queues');
    const messaging = new ServiceBusClient(s.connection.withoutEntityPath, { retryOptions: { maxRetries: 0, timeoutInMs: 3000 } });
    const p = new ServiceBusPubSub(c, s, { logger, dataDir: '/tmp', appId: 'app-a' }, { messaging, admin: undefined });
    t.after(() => p.close());
    await p.init();
    return p;
  };
  const app = await open();
  const states: Array<string | undefined> = [];
  const sub = run(app, 'jobs', () => true, { onBrokerState: (e) => states.push(e === undefined ? undefined : (e as Error).message) });
  const pub = await open();
  await pub.publish('jobs', Buffer.from('"before"'), {});
  await until(() => sub.done.length >= 1, 'the event before the outage');
  await proxy.setMode('refuse');
  await until(() => states.length >= 1, 'the outage is reported', 60_000);
  assert.match(states[0] ?? '', /Azure Service Bus at sb:\/\/127\.0\.0\.1:\d+ is unreachable \(queue 'jobs': /);
  assert.ok(!(states[0] ?? '').includes(SECRET_KEY));
  await proxy.setMode('relay');
  await until(async () => pub.publish('jobs', Buffer.from('"after"'), {}).then(() => true, () => false), 'publishing works again', 60_000);
  await until(() => sub.done.some((m) => m.data.toString() === '"after"'), 'the event after the outage', 60_000);
  await sub.stop();
  assert.equal(states.at(-1), undefined, `the recovery is reported: ${JSON.stringify(states)}`);
  assert.equal(states.filter((s) => s === undefined).length, 1, `one recovery line: ${JSON.stringify(states)}`);
  assert.ok(states.length <= 3, `an outage line per distinct cause, not per retry: ${JSON.stringify(states)}`);
});
