/**
 * KEDA's azure-servicebus trigger: parsing with KEDA's names and defaults, errors at file:line, and the metric from
 * the management API (a recording stand-in here: Azure cannot be reached from this machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TRIGGER_READ_TIMEOUT_MS } from '../../../src/backends/trigger-support.js';
import { ServiceBusScaler, createServiceBusScaler, parseServiceBusTrigger, serviceBusMetricName, serviceBusTrigger } from '../../../src/backends/azure/servicebus/trigger.js';
import type { EntityCounts, QueueAdmin } from '../../../src/backends/azure/servicebus/admin.js';
import { RecordingAdmin } from './peer-admin.js';
import { NAMESPACE_CS, SECRET_KEY, trigger } from './support.js';
import { closedPort, runAlone } from '../../support/brokers.js';

const QUEUE_CS = `${NAMESPACE_CS};EntityPath=msgqueue`;

test('servicebus trigger refuses queueLength under keda.sh/v1alpha1, where KEDA 2 reads messageCount only', { timeout: 120_000 }, () => {
  assert.throws(() => parseServiceBusTrigger(trigger({ queueName: 'msgqueue', queueLength: '5', connection: QUEUE_CS })), (err: Error) => {
    assert.match(err.message, /^azure\/consumer-scaling\.yaml:14: .*queueLength is the KEDA 1\.x name of the target: KEDA 2 \(keda\.sh\/v1alpha1\) does not read it and would scale on the default messageCount 5; write messageCount/);
    return true;
  });
  const s = parseServiceBusTrigger(trigger({ queueName: 'msgqueue', messageCount: '5', connection: QUEUE_CS }));
  assert.deepEqual(s.entity, { kind: 'queue', queueName: 'msgqueue' });
  assert.equal(s.target, 5);
  assert.equal(s.host, 'qscale-test.servicebus.windows.net');
});

test('servicebus trigger - KEDA v2 defaults: messageCount 5, activationMessageCount 0', { timeout: 120_000 }, () => {
  const s = parseServiceBusTrigger(trigger({ queueName: 'msgqueue', connection: NAMESPACE_CS }));
  assert.equal(s.target, 5);
  assert.equal(s.activationTarget, 0);
  assert.equal(serviceBusTrigger.parseQueueParams(trigger({ queueName: 'MsgQueue', messageCount: '10', activationMessageCount: '2' })).target, 10);
});

test('servicebus trigger - topicName + subscriptionName measure the subscription', { timeout: 120_000 }, () => {
  const s = parseServiceBusTrigger(trigger({ topicName: 'orders', subscriptionName: 'billing', connection: NAMESPACE_CS }));
  assert.deepEqual(s.entity, { kind: 'subscription', topicName: 'orders', subscriptionName: 'billing' });
  assert.equal(serviceBusMetricName(0, s.metricEntity), 's0-azure-servicebus-orders');
});

test('servicebus trigger - KEDA\'s metric name: s<index>-azure-servicebus-<queue>', { timeout: 120_000 }, () => {
  assert.equal(serviceBusMetricName(0, 'msgqueue'), 's0-azure-servicebus-msgqueue');
  assert.equal(serviceBusMetricName(2, 'my.queue'), 's2-azure-servicebus-my-queue');
  assert.equal(createServiceBusScaler(trigger({ queueName: 'msgqueue', connection: NAMESPACE_CS }, 1), new RecordingAdmin()).metricName, 's1-azure-servicebus-msgqueue');
});

const errors: Array<{ name: string; metadata: Record<string, string>; line: number; message: RegExp }> = [
  { name: 'no connection', metadata: { queueName: 'q' }, line: 20,
    message: /no connection setting given: set connectionFromEnv, or authenticationRef to a TriggerAuthentication with parameter connection/ },
  { name: 'namespace without connection, and no podIdentity (KEDA: no connection setting given)', metadata: { queueName: 'q', namespace: 'ns' }, line: 20,
    message: /no connection setting given: .*\(namespace is read with a TriggerAuthentication whose podIdentity provider is azure-workload\)/ },
  { name: 'useRegex', metadata: { queueName: 'q.*', useRegex: 'true', connection: NAMESPACE_CS }, line: 14,
    message: /useRegex is not supported by qscale: name one queue or subscription/ },
  { name: 'queue and subscription', metadata: { queueName: 'q', subscriptionName: 's', connection: NAMESPACE_CS }, line: 14,
    message: /subscription name provided with queue name/ },
  { name: 'a bad connection string', metadata: { queueName: 'q', connection: `Endpoint=https://x/;SharedAccessKey=${SECRET_KEY}` }, line: 20,
    message: /connection is not a Service Bus connection string: its Endpoint must look like sb:\/\// },
  { name: 'messageCount 0', metadata: { queueName: 'q', messageCount: '0', connection: NAMESPACE_CS }, line: 14,
    message: /messageCount must be more than 0, got 0 \(the HorizontalPodAutoscaler refuses a target that is not positive\)/ },
];
for (const c of errors) {
  test(`servicebus trigger - error: ${c.name}, at file:line, key never shown`, { timeout: 120_000 }, () => {
    assert.throws(() => parseServiceBusTrigger(trigger(c.metadata)), (err: Error) => {
      assert.ok(err.message.startsWith(`azure/consumer-scaling.yaml:${c.line}: trigger 0 (azure-servicebus) of ScaledObject bindingconsumer-scaler: `), err.message);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes(SECRET_KEY));
      return true;
    });
  });
}

test('servicebus trigger - the metric is ActiveMessageCount; active only strictly above activationMessageCount', { timeout: 120_000 }, async () => {
  const cases: Array<{ active: number; activation: string; wantActive: boolean }> = [
    { active: 0, activation: '0', wantActive: false },
    { active: 1, activation: '0', wantActive: true },
    { active: 3, activation: '3', wantActive: false },
    { active: 4, activation: '3', wantActive: true },
  ];
  for (const c of cases) {
    const admin = new RecordingAdmin(undefined, { active: c.active, deadLetter: 9, scheduled: 2 });
    const scaler = createServiceBusScaler(trigger({ queueName: 'MsgQueue', activationMessageCount: c.activation, connection: NAMESPACE_CS }), admin);
    assert.deepEqual(await scaler.metricAndActivity(), { value: c.active, active: c.wantActive });
    assert.deepEqual(admin.calls, [{ op: 'queueCounts', queue: 'msgqueue' }]);
    assert.equal(scaler.target, 5);
    assert.equal(scaler.metricType, 'AverageValue');
  }
});

test('servicebus trigger - a subscription is counted through the subscription\'s runtime properties', { timeout: 120_000 }, async () => {
  const admin = new RecordingAdmin(undefined, { active: 12, deadLetter: 0, scheduled: 0 });
  const scaler = createServiceBusScaler(trigger({ topicName: 'orders', subscriptionName: 'billing', connection: NAMESPACE_CS }), admin);
  assert.equal((await scaler.metricAndActivity()).value, 12);
  assert.deepEqual(admin.calls, [{ op: 'subscriptionCounts', topic: 'orders', subscription: 'billing' }]);
});

test('servicebus trigger - a failing management call names the trigger, the queue and the namespace, never the key', { timeout: 120_000 }, async () => {
  const failing: QueueAdmin = {
    queueFacts: async () => ({ maxDeliveryCount: 10, requiresDuplicateDetection: false }),
    createQueue: async () => undefined,
    subscriptionCounts: async (): Promise<EntityCounts> => ({ active: 0, deadLetter: 0, scheduled: 0 }),
    queueCounts: async () => {
      throw Object.assign(new Error(`401 Unauthorized for SharedAccessKey=${SECRET_KEY}`), { code: 'UnauthorizedRequestError' });
    },
  };
  const scaler = new ServiceBusScaler(trigger({}), parseServiceBusTrigger(trigger({ queueName: 'msgqueue', connection: NAMESPACE_CS })), failing);
  await assert.rejects(scaler.metricAndActivity(), (err: Error) => {
    assert.match(err.message, /^trigger 0 \(azure-servicebus\) of ScaledObject bindingconsumer-scaler: cannot read queue 'msgqueue' at qscale-test\.servicebus\.windows\.net: UnauthorizedRequestError: 401 Unauthorized/);
    assert.ok(!err.message.includes(SECRET_KEY), err.message);
    return true;
  });
});

test('servicebus trigger - a management API that never answers is a bounded error, and the call is aborted', { timeout: 30_000 }, async () => {
  let aborted = false;
  const silent: QueueAdmin = {
    queueFacts: async () => ({ maxDeliveryCount: 10, requiresDuplicateDetection: false }),
    createQueue: async () => undefined,
    subscriptionCounts: () => new Promise<EntityCounts>(() => undefined),
    // A request in flight holds the process open, as the SDK's socket would, until it is aborted.
    queueCounts: (_q, signal) =>
      new Promise<EntityCounts>(() => {
        const inFlight = setInterval(() => undefined, 1000);
        signal?.addEventListener('abort', () => {
          aborted = true;
          clearInterval(inFlight);
        });
      }),
  };
  const scaler = new ServiceBusScaler(trigger({}), parseServiceBusTrigger(trigger({ queueName: 'msgqueue', connection: NAMESPACE_CS })), silent);
  await assert.rejects(
    scaler.metricAndActivity(),
    /^BrokerError: trigger 0 \(azure-servicebus\) of ScaledObject bindingconsumer-scaler: cannot read queue 'msgqueue' at qscale-test\.servicebus\.windows\.net: no answer within 2500 ms$/,
  );
  assert.ok(aborted, 'the SDK call is aborted, not left running');
});

test('servicebus trigger - the real SDK pointed at a closed port: rejects naming the address, never the key; the process exits', { timeout: 60_000 }, async () => {
  const port = await closedPort();
  const run = await runAlone(
    `
const trig = (md) => ({ index: 0, type: 'azure-servicebus', metricType: 'AverageValue', metadata: md, subject: 'trigger 0 (azure-servicebus) of ScaledObject s', where: () => ({}) });
const s = sb.createServiceBusScaler(trig({ queueName: 'msgqueue', connection: 'Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${SECRET_KEY}' }));
console.log('read:', await s.metricAndActivity().then(() => 'value', (e) => e.message));
await s.close();
`,
    { from: import.meta.url, imports: { sb: '../../../src/backends/azure/servicebus/trigger.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, new RegExp(`read: trigger 0 \\(azure-servicebus\\) of ScaledObject s: cannot read queue 'msgqueue' at 127\\.0\\.0\\.1:${port}: (.*ECONNREFUSED|no answer within ${TRIGGER_READ_TIMEOUT_MS} ms)`));
  assert.ok(!run.stdout.includes(SECRET_KEY));
});
