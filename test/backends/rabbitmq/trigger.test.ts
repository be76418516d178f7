import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { parseRabbitmqTrigger, rabbitmqBackend, rabbitmqTrigger } from '../../../src/backends/rabbitmq/index.js';
import { ConfigError } from '../../../src/errors.js';
import { AMQP_URL, MGMT_URL, component, ctx, deleteQueues, eventually, managementUp, trigger } from './helpers.js';

/** A unique queue name whose queues are deleted when the test ends, passed or not. */
function queueFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteQueues(q, `${q}-dlq`).catch(() => undefined));
  return q;
}

const params: Array<[string, Record<string, string>, { queueName: string; target: number; activationTarget: number }]> = [
  ['legacy default: queueLength 20', { host: AMQP_URL, queueName: 'q' }, { queueName: 'q', target: 20, activationTarget: 0 }],
  ['legacy queueLength 5', { host: AMQP_URL, queueName: 'q', queueLength: '5' }, { queueName: 'q', target: 5, activationTarget: 0 }],
  ['mode QueueLength value 5, activationValue 1', { host: AMQP_URL, queueName: 'q', mode: 'QueueLength', value: '5', activationValue: '1' }, { queueName: 'q', target: 5, activationTarget: 1 }],
  ['mode MessageRate value 2.5 over http', { host: MGMT_URL, queueName: 'q', mode: 'MessageRate', value: '2.5' }, { queueName: 'q', target: 2.5, activationTarget: 0 }],
];
for (const [name, md, want] of params) {
  test(`rabbitmq trigger - ${name}`, () => {
    assert.deepEqual(rabbitmqTrigger.parseQueueParams(trigger(md)), want);
    rabbitmqTrigger.create(trigger(md)); // parses connection settings too, without connecting
  });
}

test('rabbitmq trigger - protocol auto by scheme, vhostName overrides the host\'s vhost', () => {
  const a = parseRabbitmqTrigger(trigger({ host: 'amqp://u:p@h:5672/prod', queueName: 'q' }));
  assert.equal(a.protocol, 'amqp');
  assert.equal(a.vhost, 'prod');
  const h = parseRabbitmqTrigger(trigger({ host: 'http://u:p@h:15672/', queueName: 'q', vhostName: 'staging' }));
  assert.equal(h.protocol, 'http');
  assert.equal(h.vhost, 'staging');
});

const bad: Array<[string, Record<string, string>, RegExp]> = [
  ['MessageRate over amqp', { host: AMQP_URL, queueName: 'q', mode: 'MessageRate', value: '1' }, /^scaledobject\.yaml:12: .*mode MessageRate needs protocol http/],
  ['queueLength together with mode/value', { host: AMQP_URL, queueName: 'q', queueLength: '5', mode: 'QueueLength', value: '5' }, /^scaledobject\.yaml:12: .*queueLength is deprecated and cannot be combined with mode and value/],
  ['mode without value', { host: AMQP_URL, queueName: 'q', mode: 'QueueLength' }, /^scaledobject\.yaml:12: .*mode QueueLength needs a value/],
  ['unknown mode', { host: AMQP_URL, queueName: 'q', mode: 'Bytes', value: '1' }, /^scaledobject\.yaml:12: .*'mode' must be one of QueueLength, MessageRate/],
  ['host that is no URL, secret not echoed', { host: 'guest:S3cretPw@nowhere', queueName: 'q' }, /^scaledobject\.yaml:10: .*host must /],
  ['missing queueName', { host: AMQP_URL }, /missing required metadata 'queueName'/],
];
for (const [name, md, re] of bad) {
  test(`rabbitmq trigger - ${name}`, () => {
    assert.throws(() => rabbitmqTrigger.create(trigger(md)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /S3cretPw/);
      return true;
    });
  });
}

test('rabbitmq trigger - amqp counts ready messages; http counts ready + unacked, as the backend\'s depth does', async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-trig');
  const b = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: q, durable: 'true' }), ctx);
  await b.init();
  for (let i = 0; i < 9; i++) await b.send(Buffer.from(String(i)), {});
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.prefetch(2);
  await ch.consume(q, () => undefined, { noAck: false });
  const viaAmqp = rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  const ready = await eventually(() => viaAmqp.metricAndActivity(), (m) => m.value === 7);
  assert.deepEqual(ready, { value: 7, active: true });
  assert.equal(viaAmqp.metricName, `s0-rabbitmq-${q}`);
  assert.equal((await b.depth()).ready, ready.value);
  if (await managementUp()) {
    const viaHttp = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: q, mode: 'QueueLength', value: '5' }));
    const total = await eventually(() => viaHttp.metricAndActivity(), (m) => m.value === 9, 60, 500);
    assert.deepEqual(total, { value: 9, active: true });
    const d = await b.depth();
    assert.equal(d.ready + d.inFlight, total.value);
    await viaHttp.close();
  } else if (process.env.CI === 'true') {
    throw new Error('RabbitMQ management API (15672) is off: rabbitmq-plugins enable rabbitmq_management');
  }
  await viaAmqp.close();
  await conn.close();
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq trigger - a queue that does not exist is an error naming trigger, queue and broker', async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const s = rabbitmqTrigger.create(trigger({ host: 'amqp://guest:guest@127.0.0.1:5672', queueName: 'no-such-queue-qscale' }));
  await assert.rejects(s.metricAndActivity(), /trigger 0 \(rabbitmq\) of ScaledObject consumer-scaler: cannot read queue 'no-such-queue-qscale' at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672.*NOT_FOUND/);
  await s.close();
});

test('rabbitmq trigger - watchArrivals calls back when an empty queue gets a message', async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-watch');
  const b = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: q, durable: 'true' }), ctx);
  await b.init();
  const s = rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  assert.ok(s.watchArrivals);
  let arrivals = 0;
  const stop = s.watchArrivals(() => arrivals++);
  await new Promise((r) => setTimeout(r, 1500)); // one peek sees the queue empty
  await b.send(Buffer.from('wake up'), {});
  assert.equal(await eventually(async () => arrivals, (n) => n >= 1), 1);
  stop();
  await s.close();
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});
