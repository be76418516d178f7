/**
 * pubsub.jetstream against real nats-servers: the stream daprd expects to exist, what publish stores, the push
 * consumer daprd makes (the durable KEDA's nats-jetstream trigger is pointed at, read through the monitoring endpoint
 * as KEDA reads it), NAK and redelivery, ephemeral consumers, the server going away and coming back, and the metadata
 * against Dapr's metadata.yaml.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse } from 'yaml';
import pino from 'pino';
import { connect, StorageType, type JetStreamManager } from 'nats';
import { createPubSub } from '../../../src/pubsub/registry.js';
import type { PubSub } from '../../../src/pubsub/types.js';
import type { HandlerResult, QueueMessage } from '../../../src/backends/types.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import type { FieldSpec } from '../../../src/components/metadata.js';
import { ConfigError } from '../../../src/errors.js';
import { natsJetStreamTrigger } from '../../../src/backends/nats/index.js';
import { jetstreamPubSubFieldUse, jetstreamPubSubMetadata } from '../../../src/backends/nats/pubsub-metadata.js';
import { createLogger } from '../../../src/util/log.js';
import { componentFromYaml } from '../../conformance/component.js';
import { needBroker } from '../../support/brokers.js';
import { TestNatsServer } from './server.js';
import { LOCAL_NATS, streamName } from './support.js';

const REFERENCE = '/work/shared/reference/dapr-pubsub/pubsub.jetstream.metadata.yaml';
/** Guards against a hang, never asserts speed. */
const GIVE_UP_MS = 30_000;
const logger = createLogger('test', {}).child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function withJsm<T>(url: string, fn: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url });
  try {
    return await fn(await nc.jetstreamManager());
  } finally {
    await nc.close();
  }
}

/** A stream made as a user makes it for Dapr (nats stream add <name> --subjects <topics>), deleted after the test. */
async function stream(t: TestContext, topics: string[], url = LOCAL_NATS, storage = StorageType.Memory): Promise<string> {
  const name = streamName();
  await withJsm(url, (jsm) => jsm.streams.add({ name, subjects: topics, storage }));
  t.after(() => withJsm(url, (jsm) => jsm.streams.delete(name)).catch(() => undefined));
  return name;
}

function component(metadata: Record<string, string>): ReturnType<typeof componentFromYaml> {
  return componentFromYaml('events', 'pubsub.jetstream', metadata, { initTimeout: '3s', file: 'components/pubsub.yaml' });
}

async function open(t: TestContext, appId: string, metadata: Record<string, string>, log = logger): Promise<PubSub> {
  const p = createPubSub(component({ natsURL: LOCAL_NATS, ...metadata }), { logger: log, dataDir: '.qscale-test', appId });
  t.after(() => p.close());
  await p.init();
  return p;
}

interface Running {
  got: QueueMessage[];
  states: unknown[];
  done: Promise<void>;
  stop(): Promise<void>;
}

function run(p: PubSub, topic: string, handler: (m: QueueMessage) => Promise<HandlerResult> = async () => true, concurrency = 4): Running {
  const got: QueueMessage[] = [];
  const states: unknown[] = [];
  const ac = new AbortController();
  const done = p.subscribe({ topic, metadata: {} }, async (m) => {
    got.push(m);
    return handler(m);
  }, { concurrency, signal: ac.signal, onBrokerState: (e) => void states.push(e) });
  return {
    got,
    states,
    done,
    async stop() {
      ac.abort();
      await done;
    },
  };
}

const topicName = (): string => `${streamName()}.orders`;
const PER_APP = { durableName: '{appID}', queueGroupName: '{appID}' };

/** A nats-server of the test's own (monitoring on, restartable), a file stream on it, and app checkout prepared. */
async function ownServer(t: TestContext): Promise<{ server: TestNatsServer; topic: string; s: string; p: PubSub }> {
  const server = await TestNatsServer.start();
  const topic = topicName();
  const s = await stream(t, [topic], server.url, StorageType.File);
  const p = createPubSub(component({ natsURL: server.url, streamName: s, ...PER_APP }), { logger, dataDir: '.qscale-test', appId: 'checkout' });
  t.after(async () => {
    await p.close();
    await server.stop();
  });
  await p.init();
  await p.prepare({ topic, metadata: {} });
  return { server, topic, s, p };
}

test('jetstream pubsub - a stream that does not exist is named, with how to create it: daprd never creates one', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  // The command that creates it names the topic subscribed to, or published to: no placeholder to fill in.
  const missing = createPubSub(component({ natsURL: LOCAL_NATS, streamName: 'no_such_stream', ...PER_APP }), { logger, dataDir: '.qscale-test', appId: 'a' });
  t.after(() => missing.close());
  await missing.init();
  const subscribed = topicName();
  const err = await missing.prepare({ topic: subscribed, metadata: {} }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  assert.equal(err.field, 'streamName');
  assert.equal(err.message.replace(/^components\/pubsub\.yaml:\d+: /, ''), `component events (pubsub.jetstream): stream 'no_such_stream' (metadata 'streamName') does not exist on NATS JetStream at nats://127.0.0.1:4222; daprd's pubsub.jetstream never creates streams, nor does qscale: create it, e.g. nats stream add no_such_stream --subjects '${subscribed}'`);
  assert.doesNotMatch(err.message, /<topic>/);
  const published = topicName();
  const perr = await missing.publish(published, Buffer.from('1'), {}).then(() => undefined, (e: unknown) => e as Error);
  assert.ok(perr, 'publishing to a missing stream fails');
  assert.match(perr.message, new RegExp(`cannot send to subject '${published}' \\(the event was not stored\\): .*create it, e\\.g\\. nats stream add no_such_stream --subjects '${published}'$`));
  // Without streamName the stream is the one that takes the topic's subject; none takes it here.
  const bySubject = await open(t, 'a', PER_APP);
  const topic = topicName();
  await assert.rejects(bySubject.prepare({ topic, metadata: {} }), (e: unknown) =>
    e instanceof ConfigError && e.message.includes(`no stream on NATS JetStream at nats://127.0.0.1:4222 takes subject '${topic}' (metadata 'streamName' is not set, so it is looked up by subject); daprd's pubsub.jetstream never creates streams, nor does qscale: create it, e.g. nats stream add <stream> --subjects '${topic}'`));
  await assert.rejects(bySubject.publish(topic, Buffer.from('1'), {}), /cannot send to subject '.*' \(the event was not stored\): no stream on NATS JetStream at nats:\/\/127\.0\.0\.1:4222 takes that subject/);
  // A stream that exists but does not take the topic.
  const s = await stream(t, [`${topic}.other`]);
  const wrong = await open(t, 'a', { streamName: s, ...PER_APP });
  await assert.rejects(wrong.prepare({ topic, metadata: {} }), new RegExp(`stream '${s}' \\(metadata 'streamName'\\) does not take subject '${topic}' \\(its subjects: ${topic}\\.other\\); add it`));
});

test('jetstream pubsub - publish stores the bytes as sent, the CloudEvent id as Nats-Msg-Id: a repeat is stored once', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const topic = topicName();
  const s = await stream(t, [topic]);
  const p = await open(t, 'publisher', { streamName: s });
  const event = Buffer.from('{"specversion":"1.0","id":"5b9a-77","type":"com.dapr.event.sent","data":{"n":1}}');
  await p.publish(topic, event, { ttlInSeconds: '10' });
  await p.publish(topic, event, {});
  await p.publish(topic, Buffer.from([0x00, 0xff, 0x01]), {});
  const stored = await withJsm(LOCAL_NATS, async (jsm) => {
    const info = await jsm.streams.info(s);
    const first = await jsm.streams.getMessage(s, { seq: info.state.first_seq });
    const last = await jsm.streams.getMessage(s, { seq: info.state.last_seq });
    return { count: info.state.messages, first, last };
  });
  assert.equal(stored.count, 2, 'the repeated CloudEvent id was dropped by JetStream');
  assert.deepEqual(Buffer.from(stored.first.data), event);
  assert.equal(stored.first.header.get('Nats-Msg-Id'), '5b9a-77');
  assert.deepEqual([...stored.first.header.keys()], ['Nats-Msg-Id'], 'publish metadata is not stored, as with daprd');
  assert.deepEqual(Buffer.from(stored.last.data), Buffer.from([0x00, 0xff, 0x01]));
});

test('jetstream pubsub - prepare creates the push consumer daprd creates, with the component\'s settings', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const topic = topicName();
  const s = await stream(t, [topic]);
  const p = await open(t, 'checkout', { streamName: s, ...PER_APP, ackWait: '1s', maxDeliver: '5', backOff: '1s, 5s', maxAckPending: '50' });
  await p.prepare({ topic, metadata: {} });
  await p.prepare({ topic, metadata: {} }); // idempotent
  const c = await withJsm(LOCAL_NATS, (jsm) => jsm.consumers.info(s, 'checkout'));
  assert.equal(c.config.durable_name, 'checkout');
  assert.equal(c.config.deliver_group, 'checkout');
  assert.match(c.config.deliver_subject ?? '', /^_INBOX\./, 'a push consumer');
  assert.equal(c.config.filter_subject, topic);
  assert.equal(c.config.ack_policy, 'explicit');
  assert.equal(c.config.deliver_policy, 'all');
  assert.equal(c.config.ack_wait, 1_000_000_000);
  assert.equal(c.config.max_deliver, 5);
  assert.deepEqual(c.config.backoff, [1_000_000_000, 5_000_000_000]);
  assert.equal(c.config.max_ack_pending, 50);
});

test('jetstream pubsub - KEDA\'s nats-jetstream trigger on durableName reads every event not yet processed (pending + ack pending)', { timeout: 120_000 }, async (t) => {
  const { server, topic, s, p } = await ownServer(t);
  const trigger: ResolvedTrigger = {
    index: 0, type: 'nats-jetstream', metricType: 'AverageValue', subject: 'trigger 0 (nats-jetstream) of ScaledObject checkout',
    metadata: { natsServerMonitoringEndpoint: server.monitoringEndpoint, account: '$G', stream: s, consumer: 'checkout', lagThreshold: '2' },
    where: () => ({ file: 'scaledobject.yaml', line: 10 }),
  };
  const scaler = natsJetStreamTrigger.create(trigger);
  t.after(() => scaler.close());

  for (let i = 0; i < 5; i++) await p.publish(topic, Buffer.from(String(i)), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 5, active: true }, 'kept for the app while no replica runs');
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const sub = run(p, topic, async () => (await held, true));
  await until(() => sub.got.length === 1, 'one event in the handler (concurrency single)');
  assert.deepEqual(await scaler.metricAndActivity(), { value: 5, active: true }, 'delivered but not acked still counts');
  release();
  await until(() => sub.got.length === 5, 'all five');
  await until(async () => (await scaler.metricAndActivity()).value === 0, 'all acked');
  await sub.stop();
});

test('jetstream pubsub - an existing durable that differs from the component is refused naming the field; one durable serves one topic', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const topic = topicName();
  const s = await stream(t, [topic, `${topic}.b`]);
  const first = await open(t, 'checkout', { streamName: s, ...PER_APP, ackWait: '30s' });
  await first.prepare({ topic, metadata: {} });
  const changed = await open(t, 'checkout', { streamName: s, ...PER_APP, ackWait: '10s' });
  await assert.rejects(changed.prepare({ topic, metadata: {} }), (e: unknown) => e instanceof ConfigError && e.field === 'ackWait' &&
    e.message.includes(`durable consumer 'checkout' of stream '${s}' exists with ack wait (ns) 30000000000, the component asks for 10000000000: daprd refuses to subscribe to it too; delete it (nats consumer rm ${s} checkout) or change the component`));
  const sub = run(changed, topic);
  await assert.rejects(sub.done, (e: unknown) => e instanceof ConfigError && e.field === 'ackWait', 'subscribe rejects too');
  await assert.rejects(first.prepare({ topic: `${topic}.b`, metadata: {} }), (e: unknown) => e instanceof ConfigError && e.field === 'durableName' &&
    e.message.includes(`filters subject '${topic}', not topic '${topic}.b': one durableName serves one topic`));
});

test('jetstream pubsub - a failed event is NAKed and comes again with its delivery count and first stored time; metadata is daprd\'s Topic', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const topic = topicName();
  const s = await stream(t, [topic]);
  const p = await open(t, 'checkout', { streamName: s, ...PER_APP, ackWait: '1s' });
  await p.prepare({ topic, metadata: {} });
  await p.publish(topic, Buffer.from('"flaky"'), {});
  const before = Date.now();
  const sub = run(p, topic, async (m) => m.deliveryCount >= 3);
  await until(() => sub.got.length === 3, 'three deliveries');
  await sub.stop();
  assert.deepEqual(sub.got.map((m) => m.deliveryCount), [1, 2, 3]);
  assert.equal(new Set(sub.got.map((m) => m.id)).size, 1);
  assert.equal(new Set(sub.got.map((m) => m.enqueuedAt)).size, 1);
  assert.ok(Math.abs((sub.got[0]?.enqueuedAt ?? 0) - before) < 60_000, 'the time JetStream stored it');
  assert.deepEqual(sub.got[0]?.metadata, { Topic: topic });
  const c = await withJsm(LOCAL_NATS, (jsm) => jsm.consumers.info(s, 'checkout'));
  assert.equal(c.num_ack_pending + c.num_pending, 0, 'acked once processed');
});

test('jetstream pubsub - without durableName every subscriber has its own consumer: each replica gets every event, said once', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const topic = topicName();
  const s = await stream(t, [topic]);
  const lines: Array<{ level: number; msg: string }> = [];
  const captured = pino({ level: 'warn' }, { write: (x: string) => void lines.push(JSON.parse(x) as { level: number; msg: string }) });
  const a1 = await open(t, 'checkout', { streamName: s }, captured);
  const a2 = await open(t, 'checkout', { streamName: s }, captured);
  await a1.prepare({ topic, metadata: {} });
  const subs = [run(a1, topic), run(a2, topic)];
  await until(async () => (await withJsm(LOCAL_NATS, (jsm) => jsm.consumers.list(s).next())).length === 2, 'two ephemeral consumers');
  await a1.publish(topic, Buffer.from('"to all"'), {});
  await until(() => subs.every((x) => x.got.length === 1), 'both replicas');
  for (const x of subs) await x.stop();
  const said = lines.filter((l) => l.msg.includes('no durableName'));
  assert.equal(said.length, 2, 'once per component');
  assert.match(said[0]?.msg ?? '', /every replica gets every event, nothing is kept while none runs, and KEDA's nats-jetstream trigger has no consumer to read\. Set durableName and queueGroupName \(e\.g\. "\{appID\}"\)/);
});

test('jetstream pubsub - the server going away and coming back: one outage report, one recovery, events flow again', { timeout: 120_000 }, async (t) => {
  const { server, topic, s, p } = await ownServer(t);
  const sub = run(p, topic);
  await p.publish(topic, Buffer.from('"before"'), {});
  await until(() => sub.got.length === 1, 'the first event');
  await server.down();
  await until(() => sub.states.length >= 1, 'an outage report');
  const lost = sub.states[0];
  assert.ok(lost instanceof Error);
  assert.equal(lost.message, `component events (pubsub.jetstream): NATS JetStream at ${server.url} is unreachable (connection lost). Check that NATS JetStream is running and reachable at that address`);
  await assert.rejects(p.publish(topic, Buffer.from('"during"'), {}), /cannot send \(the message was not stored\): NATS JetStream at .* is unreachable \(connection lost\)/);
  await server.up();
  await until(() => sub.states.at(-1) === undefined, 'the recovery');
  await until(async () => p.publish(topic, Buffer.from('"after"'), {}).then(() => true, () => false), 'publish works again');
  await until(() => sub.got.length === 2, 'the event after the outage');
  await sub.stop();
  assert.deepEqual(sub.got.map((m) => m.data.toString()), ['"before"', '"after"']);
  assert.equal(sub.states.filter((x) => x !== undefined).length, 1);
});

test('jetstream pubsub metadata - every field of Dapr\'s metadata.yaml is declared with its name, default and secrecy', { timeout: 30_000 }, (t) => {
  if (!fs.existsSync(REFERENCE)) {
    t.skip(`reference file ${REFERENCE} is not on this machine`);
    return;
  }
  type RefField = { name: string; default?: string; type?: string; sensitive?: boolean; allowedValues?: string[] };
  const ref = parse(fs.readFileSync(REFERENCE, 'utf8')) as { metadata: RefField[]; authenticationProfiles: Array<{ metadata: RefField[] }> };
  const refFields: RefField[] = [];
  for (const r of [...ref.metadata, ...ref.authenticationProfiles.flatMap((p) => p.metadata)]) if (!refFields.some((x) => x.name === r.name)) refFields.push(r);
  const declared = new Map<string, FieldSpec>(jetstreamPubSubMetadata.fields.map((f) => [f.name, f]));
  // Secrets the reference does not flag: qscale never prints them.
  const extraSecrets = ['token', 'jwt', 'seedKey', 'tls_client_key'];
  for (const r of refFields) {
    const f = declared.get(r.name);
    assert.ok(f, `'${r.name}' is declared`);
    if (r.default !== undefined) assert.equal(String(f.default), r.default, `default of '${r.name}'`);
    else assert.equal(f.default, undefined, `'${r.name}' has no default`);
    assert.equal(f.sensitive === true, r.sensitive === true || extraSecrets.includes(r.name), `secrecy of '${r.name}'`);
    if (r.type === 'bool') assert.equal(f.type, 'boolean', `type of '${r.name}'`);
    if (r.type === 'number') assert.equal(f.type, 'integer', `type of '${r.name}'`);
    if (r.allowedValues) assert.deepEqual(f.enum, r.allowedValues, `values of '${r.name}'`);
  }
  assert.deepEqual([...declared.keys()].filter((n) => !refFields.some((r) => r.name === n)), [], 'nothing beyond the reference');
  assert.deepEqual(jetstreamPubSubMetadata.fields.filter((f) => jetstreamPubSubFieldUse(f) === 'refused').map((f) => f.name), ['jwt', 'seedKey', 'tls_client_cert', 'tls_client_key']);
});

test('jetstream pubsub metadata - what qscale cannot do, and what daprd cannot read, is refused naming the field and its line', { timeout: 30_000 }, () => {
  const ctx = { logger, dataDir: '.qscale-test', appId: 'a' };
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ jwt: 'eyJ', seedKey: 'SUA' }, 'jwt', /no JWT \/ nkey login/],
    [{ tls_client_cert: '/c.pem', tls_client_key: '/k.pem' }, 'tls_client_cert', /no client-certificate TLS/],
    [{ backOff: '[1s, 2s, 4s]' }, 'backOff', /comma-separated durations such as 1s, 5s, 30s \(no brackets: daprd cannot read them either\)/],
    [{ deliverPolicy: 'sequence' }, 'deliverPolicy', /'sequence': give startSequence too/],
    [{ durableName: 'c', ackWait: '10s', backOff: '1s, 5s' }, 'ackWait', /is 10000 ms with backOff set: NATS sets the durable consumer's ack wait to backOff's first step \(1000 ms\), and daprd then refuses that consumer from its second start on/],
    [{ deliverPolicy: 'first' }, 'deliverPolicy', /must be one of all, last, new, sequence, time/],
    [{ concurrency: 'many' }, 'concurrency', /must be one of single, parallel/],
  ];
  for (const [md, field, why] of cases) {
    const err = (() => {
      try {
        createPubSub(component({ natsURL: LOCAL_NATS, ...md }), ctx);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, `${field}: ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, /^components\/pubsub\.yaml:\d+: component events \(pubsub\.jetstream\): metadata '/);
    assert.match(err.message, why);
    assert.doesNotMatch(err.message, /eyJ|SUA/, 'secrets never shown');
  }
  // The docs' own example (no durableName: an ephemeral consumer each start, so ackWait and backOff can differ).
  createPubSub(component({ natsURL: LOCAL_NATS, backOff: '50ms, 1s, 10s', startTime: '1630349391', deliverPolicy: 'time', heartbeat: '15s', ackWait: '10s' }), ctx);
});

test('jetstream pubsub metadata - docs/pubsub-brokers.md names every field in its table', { timeout: 30_000 }, () => {
  const doc = fs.readFileSync(new URL('../../../../docs/pubsub-brokers.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((x) => x.startsWith('pubsub.jetstream\n')) ?? assert.fail('no ## pubsub.jetstream section');
  const table = section.slice(section.indexOf('### Metadata'));
  const missing = jetstreamPubSubMetadata.fields.map((f) => f.name).filter((n) => !table.split('\n').some((l) => l.startsWith('| ') && (l.split('|')[1] ?? '').split(',').some((c) => c.trim() === n)));
  assert.deepEqual(missing, []);
});
