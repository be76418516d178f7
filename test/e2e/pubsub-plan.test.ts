/**
 * What `qscale up` and `qscale validate` make of a scaled pub/sub subscriber before anything runs: which subscription
 * each KEDA trigger reads (matched on the names daprd derives), the embedded queue it is measured on under
 * --embedded, what is made before the first trigger read, the one line for a subscriber at zero whose subscription
 * only its replicas make (only where the broker then loses events or the trigger reads nothing), the line for a
 * trigger naming no subscription, and the JetStream stream annotation. Then the preparing itself: made through the
 * component, a failure said once and tried again.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadSystem, type SystemPlan } from '../../src/supervisor/plan.js';
import { prepareSubscriptions } from '../../src/supervisor/subscriptions.js';
import { pubsubQueueName } from '../../src/backends/embedded/pubsub.js';
import { QueueStore } from '../../src/backends/embedded/store.js';
import { MAIN, ROOT, tempFolder, writeFiles } from './harness.js';

const RUN_FILE = `version: 1
apps:
  - appID: producer
    appDirPath: ${ROOT}
    command: ["node", "dist/apps/producer/main.js"]
    env: { PUBSUB_NAME: pubsub, TOPIC: orders }
  - appID: consumer
    appDirPath: ${ROOT}
    command: ["node", "dist/apps/consumer/main.js"]
`;

function component(type: string, metadata: Record<string, string>, annotations = ''): string {
  const md = Object.entries(metadata).map(([k, v]) => `    - name: ${k}\n      value: ${JSON.stringify(v)}`).join('\n');
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
${annotations}spec:
  type: ${type}
  version: v1
  metadata:
${md}
`;
}

const SUBSCRIPTION = `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders-sub
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /message-queue
scopes:
  - consumer
`;

function scaledObject(trigger: string, min = 0): string {
  return `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  minReplicaCount: ${min}
  maxReplicaCount: 10
  triggers:
${trigger}`;
}

const REDIS = { c: component('pubsub.redis', { redisHost: '127.0.0.1:6379' }), trigger: (group = 'consumer') => `  - type: redis-streams\n    metadata:\n      address: 127.0.0.1:6379\n      stream: orders\n      consumerGroup: ${group}\n      lagCount: "5"\n` };
const RABBIT = { c: component('pubsub.rabbitmq', { connectionString: 'amqp://guest:guest@127.0.0.1:5672', deletedWhenUnused: 'false' }), trigger: (queue = 'consumer-orders') => `  - type: rabbitmq\n    metadata:\n      protocol: amqp\n      host: amqp://guest:guest@127.0.0.1:5672/\n      queueName: ${queue}\n      mode: QueueLength\n      value: "5"\n` };
const JETSTREAM = {
  c: component('pubsub.jetstream', { natsURL: 'nats://127.0.0.1:4222', streamName: 'orders', durableName: '{appID}', queueGroupName: '{appID}' }),
  trigger: (consumer = 'consumer') => `  - type: nats-jetstream\n    metadata:\n      natsServerMonitoringEndpoint: 127.0.0.1:8222\n      account: $G\n      stream: orders\n      consumer: ${consumer}\n      lagThreshold: "5"\n`,
};

async function plan(files: Record<string, string>, embedded = false): Promise<SystemPlan> {
  const folder = tempFolder('qscale-pubsub-plan-');
  writeFiles(folder, { 'dapr.yaml': RUN_FILE, ...files });
  try {
    return await loadSystem(folder, { embedded, dataDir: path.join(folder, '.qscale'), requireRunFile: true, checkHost: false });
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

const pubsubWarnings = (p: SystemPlan): string[] => p.warnings.filter((w) => /subscription|Subscription/.test(w));

describe('pub/sub subscribers in the plan', { timeout: 60_000 }, () => {
  test('a trigger naming the subscription daprd derives is matched to the Subscription, on each broker; no warning', { timeout: 30_000 }, async () => {
    for (const [name, b] of [['redis', REDIS], ['rabbitmq', RABBIT], ['jetstream', JETSTREAM]] as const) {
      const p = await plan({ 'pubsub.yaml': b.c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(b.trigger()) });
      assert.deepEqual(p.problems, [], name);
      const t = p.scaledObjects[0]!.triggers[0]!;
      assert.equal(t.subscription?.declared?.name, 'orders-sub', `${name}: the trigger reads the Subscription`);
      assert.equal(t.subscription?.topic, 'orders');
      assert.deepEqual(pubsubWarnings(p), [], `${name}: nothing to warn about`);
      assert.deepEqual(p.toPrepare.map((s) => `${s.appId} ${s.topic} ${s.declared?.name}`), ['consumer orders orders-sub'], `${name}: the Subscription is made before the first trigger read`);
    }
  });

  test('consumerID: "{appID}" on rabbitmq names the queue after the app, as daprd fills it; the trigger on consumer-orders matches', { timeout: 30_000 }, async () => {
    const c = component('pubsub.rabbitmq', { connectionString: 'amqp://guest:guest@127.0.0.1:5672', deletedWhenUnused: 'false', consumerID: '{appID}' });
    const p = await plan({ 'pubsub.yaml': c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(RABBIT.trigger()) });
    assert.deepEqual(p.problems, []);
    assert.equal(p.scaledObjects[0]!.triggers[0]!.subscription?.declared?.name, 'orders-sub');
    assert.deepEqual(pubsubWarnings(p), [], 'no "reads no subscription of its app" line');
  });

  test('--embedded: each trigger is measured on the embedded pub/sub queue of that subscription', { timeout: 30_000 }, async () => {
    const want = pubsubQueueName('pubsub', 'orders', 'consumer');
    for (const b of [REDIS, RABBIT, JETSTREAM]) {
      const p = await plan({ 'pubsub.yaml': b.c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(b.trigger()) }, true);
      assert.deepEqual(p.problems, []);
      assert.equal(p.scaledObjects[0]!.triggers[0]!.embeddedQueue, want);
      assert.equal(p.scaledObjects[0]!.triggers[0]!.queue, want);
    }
    // A consumerID of the component's own names both the Redis group and the embedded queue.
    const c = component('pubsub.redis', { redisHost: '127.0.0.1:6379', consumerID: 'workers' });
    const p = await plan({ 'pubsub.yaml': c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(REDIS.trigger('workers')) }, true);
    assert.equal(p.scaledObjects[0]!.triggers[0]!.embeddedQueue, pubsubQueueName('pubsub', 'orders', 'workers'));
  });

  test('a subscriber at 0 whose subscription only its replicas make: one line where the broker keeps nothing or the trigger reads nothing', { timeout: 30_000 }, async () => {
    const rabbit = await plan({ 'pubsub.yaml': RABBIT.c, 'so.yaml': scaledObject(RABBIT.trigger()) });
    const [r] = pubsubWarnings(rabbit);
    assert.match(r ?? '', /so\.yaml:\d+: .*queue 'consumer-orders'.* no Subscription resource declares it.*not kept by RabbitMQ.*declare it with a Subscription resource \(apiVersion dapr\.io\/v2alpha1, pubsubname pubsub, topic orders, scopes \[consumer\]\)/);
    assert.equal(pubsubWarnings(rabbit).length, 1, 'said once');
    assert.deepEqual(rabbit.toPrepare, [], 'nothing is made that RabbitMQ would not have');

    const js = await plan({ 'pubsub.yaml': JETSTREAM.c, 'so.yaml': scaledObject(JETSTREAM.trigger()) });
    assert.match(pubsubWarnings(js)[0] ?? '', /durable consumer 'consumer'.*no consumer to read, so consumer never scales from 0 \(the stream keeps the events meanwhile\)/);

    // Redis keeps the stream and daprd's group starts at its first entry: nothing lost, no line; the group the
    // trigger reads is made so its pending count reads too.
    const redis = await plan({ 'pubsub.yaml': REDIS.c, 'so.yaml': scaledObject(REDIS.trigger()) });
    assert.deepEqual(pubsubWarnings(redis), []);
    assert.deepEqual(redis.toPrepare.map((s) => `${s.appId} ${s.topic} ${s.declared === undefined}`), ['consumer orders true']);

    // Not scaled to zero: a replica always runs and holds the subscription.
    const kept = await plan({ 'pubsub.yaml': RABBIT.c, 'so.yaml': scaledObject(RABBIT.trigger(), 1) });
    assert.deepEqual(pubsubWarnings(kept), []);
  });

  test('a trigger naming no subscription of the app says what the app\'s subscriptions are named', { timeout: 30_000 }, async () => {
    const p = await plan({ 'pubsub.yaml': REDIS.c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(REDIS.trigger('consumers')) });
    const [w] = pubsubWarnings(p);
    assert.match(w ?? '', /consumer group 'consumers' of stream 'orders', which is no subscription of app consumer on pubsub\.redis \(its subscriptions there are consumer group 'consumer' of stream 'orders' \(topic orders of pubsub\)\)/);
    assert.equal(p.scaledObjects[0]!.triggers[0]!.subscription, undefined);
  });

  test('a Subscription out of the app\'s scope is not the app\'s: not made, and the trigger gets the line', { timeout: 30_000 }, async () => {
    const p = await plan({ 'pubsub.yaml': RABBIT.c, 'sub.yaml': SUBSCRIPTION.replace('  - consumer', '  - someone-else'), 'so.yaml': scaledObject(RABBIT.trigger()) });
    assert.deepEqual(p.toPrepare, []);
    assert.match(pubsubWarnings(p)[0] ?? '', /not kept by RabbitMQ/);
  });

  test('annotation qscale.io/jetstream-stream-subjects: read on pubsub.jetstream with streamName, refused elsewhere with file:line', { timeout: 30_000 }, async () => {
    const ann = '  annotations:\n    qscale.io/jetstream-stream-subjects: "orders, orders.>"\n';
    const ok = await plan({ 'pubsub.yaml': component('pubsub.jetstream', { natsURL: 'nats://127.0.0.1:4222', streamName: 'orders' }, ann) });
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(ok.streamSetups.map((s) => [s.component.name, s.subjects]), [['pubsub', ['orders', 'orders.>']]]);
    const redis = await plan({ 'pubsub.yaml': component('pubsub.redis', { redisHost: '127.0.0.1:6379' }, ann) });
    assert.match(redis.problems[0]?.message ?? '', /pubsub\.yaml:6: .*annotation qscale\.io\/jetstream-stream-subjects applies to pubsub\.jetstream only/);
    const noStream = await plan({ 'pubsub.yaml': component('pubsub.jetstream', { natsURL: 'nats://127.0.0.1:4222' }, ann) });
    assert.match(noStream.problems[0]?.message ?? '', /needs metadata 'streamName'/);
  });
});

describe('making subscriptions before the first trigger read', { timeout: 60_000 }, () => {
  test('embedded: the subscription\'s queue is bound to the topic, so a publish at 0 replicas lands in it', { timeout: 30_000 }, async () => {
    const folder = tempFolder('qscale-pubsub-prepare-');
    const dataDir = path.join(folder, '.qscale');
    fs.mkdirSync(dataDir, { recursive: true });
    writeFiles(folder, { 'dapr.yaml': RUN_FILE, 'pubsub.yaml': REDIS.c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(REDIS.trigger()) });
    const store = QueueStore.acquire(dataDir);
    try {
      const p = await loadSystem(folder, { embedded: true, dataDir, requireRunFile: true, checkHost: false });
      const lines: string[] = [];
      const preparer = prepareSubscriptions(p.toPrepare, { embedded: true, dataDir, report: (l) => lines.push(l) });
      await preparer.first;
      await preparer.stop();
      assert.match(lines.join('\n'), /Subscription orders-sub of app consumer \(topic orders of pubsub, pubsub\.redis\) made: its events are kept while consumer has no replica/);
      assert.deepEqual(store.topicQueues('pubsub/pubsub/orders'), [pubsubQueueName('pubsub', 'orders', 'consumer')]);
    } finally {
      store.unref();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  test('a broker that cannot be reached: said once, tried again until stopped, nothing else', { timeout: 30_000 }, async () => {
    const c = component('pubsub.rabbitmq', { connectionString: 'amqp://guest:guest@127.0.0.1:1', deletedWhenUnused: 'false', reconnectWaitSeconds: '1' });
    const p = await plan({ 'pubsub.yaml': c, 'sub.yaml': SUBSCRIPTION, 'so.yaml': scaledObject(RABBIT.trigger()) });
    const lines: string[] = [];
    const preparer = prepareSubscriptions(p.toPrepare, { embedded: false, dataDir: '.qscale-test', report: (l) => lines.push(l), retryMs: 200 });
    await preparer.first;
    await new Promise((r) => setTimeout(r, 1500));
    await preparer.stop();
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^cannot make Subscription orders-sub of app consumer \(topic orders of pubsub, pubsub\.rabbitmq\): .*127\.0\.0\.1:1.*trying again every 200 ms$/);
  });
});

test('qscale simulate takes the pub/sub examples\' ScaledObjects: 50 events of 5 s, 0 → 10 replicas, all processed', { timeout: 120_000 }, () => {
  for (const name of ['pubsub-redis', 'pubsub-rabbitmq', 'pubsub-nats']) {
    const r = spawnSync(process.execPath, [MAIN, 'simulate', `examples/${name}/consumer-scaling.yaml`, '--load', '0s:50', '--work', '5s'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${name}: ${r.stderr}${r.stdout}`);
    assert.match(r.stdout, /messages: 50 arrived, 50 processed/, name);
    assert.match(r.stdout, /peak replicas: 10\b/, name);
  }
});
