import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TRIGGER_READ_TIMEOUT_MS } from '../../../src/backends/trigger-support.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import amqp from 'amqplib';
import { closedPort, requireBroker, runAlone, silentServer, uniqueName } from '../../support/brokers.js';
import { parseRabbitmqTrigger, rabbitmqBackend, rabbitmqTrigger } from '../../../src/backends/rabbitmq/index.js';
import { BrokerError, ConfigError } from '../../../src/errors.js';
import { AMQP_URL, MGMT_URL, closeConnectionsNamed, component, ctx, deleteQueues, eventually, trigger } from './helpers.js';

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
  test(`rabbitmq trigger - ${name}`, { timeout: 120_000 }, () => {
    assert.deepEqual(rabbitmqTrigger.parseQueueParams(trigger(md)), want);
    rabbitmqTrigger.create(trigger(md)); // parses connection settings too, without connecting
  });
}

test('rabbitmq trigger - protocol auto by scheme, vhostName overrides the host\'s vhost', { timeout: 120_000 }, () => {
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
  test(`rabbitmq trigger - ${name}`, { timeout: 120_000 }, () => {
    assert.throws(() => rabbitmqTrigger.create(trigger(md)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /S3cretPw/);
      return true;
    });
  });
}

/** A queue of 9 messages, 2 of them held unacked by a raw consumer (another "process"); its binding for depth(). */
async function queueWithTwoUnacked(t: TestContext, prefix: string): Promise<{ q: string; b: ReturnType<typeof rabbitmqBackend.create> }> {
  const q = queueFor(t, prefix);
  const b = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: q, durable: 'true' }), ctx);
  t.after(() => b.close());
  await b.init();
  for (let i = 0; i < 9; i++) await b.send(Buffer.from(String(i)), {});
  const conn = await amqp.connect(AMQP_URL);
  t.after(() => conn.close().catch(() => undefined));
  const ch = await conn.createChannel();
  await ch.prefetch(2);
  await ch.consume(q, () => undefined, { noAck: false });
  return { q, b };
}

test('rabbitmq trigger - amqp counts ready messages only (a passive declare, as KEDA)', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const { q, b } = await queueWithTwoUnacked(t, 'rmq-trig');
  const viaAmqp = rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  t.after(() => viaAmqp.close());
  const ready = await eventually(() => viaAmqp.metricAndActivity(), (m) => m.value === 7);
  assert.deepEqual(ready, { value: 7, active: true });
  assert.equal(viaAmqp.metricName, `s0-rabbitmq-${q}`);
  assert.equal((await b.depth()).ready, ready.value);
});

test('rabbitmq trigger - http counts ready + unacked, as the backend\'s depth does', { timeout: 90_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  if (!(await requireBroker(t, 'rabbitmq-management'))) return;
  const { q, b } = await queueWithTwoUnacked(t, 'rmq-trig-http');
  const viaHttp = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  t.after(() => viaHttp.close());
  const total = await eventually(() => viaHttp.metricAndActivity(), (m) => m.value === 9, 60, 500);
  assert.deepEqual(total, { value: 9, active: true });
  const d = await b.depth();
  assert.equal(d.ready + d.inFlight, total.value);
});

test('rabbitmq trigger - a queue that does not exist is an error naming trigger, queue and broker', { timeout: 30_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const s = rabbitmqTrigger.create(trigger({ host: 'amqp://guest:guest@127.0.0.1:5672', queueName: 'no-such-queue-qscale' }));
  t.after(() => s.close());
  await assert.rejects(s.metricAndActivity(), /trigger 0 \(rabbitmq\) of ScaledObject consumer-scaler: cannot read queue 'no-such-queue-qscale' \(vhost '\/'\) at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672.*NOT_FOUND/);
  // The failed declare closed the channel, not the trigger: the next reads fail the same way, not as "channel closed",
  // on the one connection, and nothing piles up per failed read.
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`);
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  for (let i = 0; i < 15; i++) await assert.rejects(s.metricAndActivity(), /NOT_FOUND/);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings, []);
});

test('rabbitmq trigger - a missing queue gives one error text at every read, also when reads overlap (the poll and the arrival watch): no "channel ended" from the 404\'s closed channel', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const queue = uniqueName('no-such-queue');
  const s = rabbitmqTrigger.create(trigger({ host: 'amqp://guest:guest@127.0.0.1:5672', queueName: queue }));
  t.after(() => s.close());
  const texts = new Set<string>();
  const read = async (): Promise<void> => {
    const err = await s.metricAndActivity().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof BrokerError, `a read of a missing queue fails: ${String(err)}`);
    texts.add(err.message);
  };
  for (let i = 0; i < 5; i++) await read();
  for (let i = 0; i < 10; i++) await Promise.all([read(), read(), read()]);
  for (let i = 0; i < 5; i++) {
    void read();
    await read();
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual([...texts], [
    `trigger 0 (rabbitmq) of ScaledObject consumer-scaler: cannot read queue '${queue}' (vhost '/') at amqp://guest:***@127.0.0.1:5672: ` +
      `it does not exist (404 NOT_FOUND); it is counted once declared: start the consumer that declares it (a pub/sub subscriber's sidecar declares '<consumerID>-<topic>'), or correct queueName`,
  ]);
});

test('rabbitmq trigger - amqp: nothing listening rejects at once, naming the address, the password never', { timeout: 30_000 }, async (t) => {
  const port = await closedPort();
  const s = rabbitmqTrigger.create(trigger({ host: `amqp://guest:S3cretPw@127.0.0.1:${port}`, queueName: 'q', protocol: 'amqp' }));
  t.after(() => s.close());
  const err = await s.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.match(err.message, new RegExp(`^trigger 0 \\(rabbitmq\\) of ScaledObject consumer-scaler: cannot read queue 'q' \\(vhost '/'\\) at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}: connection refused`));
  assert.doesNotMatch(err.message, /S3cretPw/);
});

test('rabbitmq trigger - amqp: a broker that accepts and never answers is a bounded error, not a hang', { timeout: 30_000 }, async (t) => {
  const silent = await silentServer();
  t.after(() => silent.close());
  const s = rabbitmqTrigger.create(trigger({ host: `amqp://guest:guest@127.0.0.1:${silent.port}`, queueName: 'q' }));
  t.after(() => s.close());
  await assert.rejects(s.metricAndActivity(), new RegExp(`cannot read queue 'q' \\(vhost '/'\\) at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${silent.port}: (no answer within ${TRIGGER_READ_TIMEOUT_MS} ms|connection timed out|connect ETIMEDOUT)`));
});

test('rabbitmq trigger - http: management API not listening names the address and how to turn it on', { timeout: 30_000 }, async (t) => {
  const port = await closedPort();
  const s = rabbitmqTrigger.create(trigger({ host: `http://guest:S3cretPw@127.0.0.1:${port}/`, queueName: 'q', mode: 'QueueLength', value: '5' }));
  t.after(() => s.close());
  const err = await s.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.match(err.message, new RegExp(`^trigger 0 \\(rabbitmq\\) of ScaledObject consumer-scaler: cannot read queue 'q' .*127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*rabbitmq-plugins enable rabbitmq_management`));
  assert.doesNotMatch(err.message, /S3cretPw/);
});

test('rabbitmq trigger - http: a management API that never answers fails after the trigger\'s timeout', { timeout: 30_000 }, async (t) => {
  const silent = await silentServer();
  t.after(() => silent.close());
  const s = rabbitmqTrigger.create(trigger({ host: `http://guest:guest@127.0.0.1:${silent.port}/`, queueName: 'q', mode: 'QueueLength', value: '5', timeout: '300' }));
  t.after(() => s.close());
  await assert.rejects(s.metricAndActivity(), new RegExp(`cannot read queue 'q' .*127\\.0\\.0\\.1:${silent.port}.*no answer within 300 ms`));
});

/** A management API stand-in answering one queue's counters (404 for any other). */
async function fakeManagement(t: TestContext, queue: string, body: object): Promise<string> {
  const server = http.createServer((req, res) => {
    if (req.url === `/api/queues/%2F/${queue}`) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    } else {
      res.statusCode = 404;
      res.end('{"error":"Object Not Found"}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return `http://guest:guest@127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

test('rabbitmq trigger - MessageRate: the metric is the publish rate; active while messages are still queued (as KEDA)', { timeout: 30_000 }, async (t) => {
  const host = await fakeManagement(t, 'q', { messages: 4, messages_ready: 4, messages_unacknowledged: 0, message_stats: { publish_details: { rate: 0 } } });
  const s = rabbitmqTrigger.create(trigger({ host, queueName: 'q', mode: 'MessageRate', value: '2' }));
  t.after(() => s.close());
  assert.deepEqual(await s.metricAndActivity(), { value: 0, active: true });
  const missing = rabbitmqTrigger.create(trigger({ host, queueName: 'other', mode: 'QueueLength', value: '2' }));
  t.after(() => missing.close());
  await assert.rejects(missing.metricAndActivity(), /cannot read queue 'other' .*knows no queue 'other' \(404\)/);
});

test('rabbitmq trigger refuses timeout with amqp once mode and value are given, and accepts it without, as KEDA', () => {
  assert.throws(() => rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: 'q', mode: 'QueueLength', value: '5', timeout: '1000' })), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^scaledobject\.yaml:14: .*timeout applies to protocol http only/);
    return true;
  });
  // KEDA's validateTrigger returns before its timeout rule when mode and value are not given (the default target).
  void rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: 'q', timeout: '1000' })).close();
  void rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: 'q', mode: 'QueueLength', value: '5', timeout: '1000' })).close();
});

test('rabbitmq trigger refuses a username without a password, as KEDA', { timeout: 30_000 }, () => {
  assert.throws(() => rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: 'q', username: 'u' })), /scaledobject\.yaml:12: .*username and password must be given together/);
  assert.throws(() => rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: 'q', password: 'p' })), /scaledobject\.yaml:12: .*username and password must be given together/);
});

test('rabbitmq trigger - close() releases every connection: a process that polled, watched and closed exits by itself', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-close');
  const setup = await amqp.connect(AMQP_URL);
  await (await setup.createChannel()).assertQueue(q, { durable: false });
  await setup.close();
  const run = await runAlone(
    `
const trig = (md) => ({ index: 0, type: 'rabbitmq', metricType: 'AverageValue', metadata: md, subject: 'trigger 0 (rabbitmq) of ScaledObject s', where: () => ({}) });
const make = (queueName) => rmq.rabbitmqTrigger.create(trig({ host: ${JSON.stringify(AMQP_URL)}, queueName, mode: 'QueueLength', value: '5' }));
// The poll and the arrival watch read at the same moment: one connection between them.
const a = make(${JSON.stringify(q)});
const stop = a.watchArrivals(() => undefined);
console.log('values', (await Promise.all([a.metricAndActivity(), a.metricAndActivity(), a.metricAndActivity()])).map((m) => m.value).join(','));
await new Promise((r) => setTimeout(r, 1500));
stop();
await a.close();
// close() while the first connection is still opening.
const b = make(${JSON.stringify(q)});
const pending = b.metricAndActivity().then(() => 'read', (e) => e.message);
await b.close();
console.log('after close:', await pending);
// A read that failed (missing queue) and then close().
const c = make('no-such-queue-qscale');
await c.metricAndActivity().catch(() => undefined);
await c.close();
`,
    { from: import.meta.url, imports: { rmq: '../../../src/backends/rabbitmq/index.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /values 0,0,0/);
  assert.match(run.stdout, /after close: (read|.*the trigger was closed)/);
});

test('rabbitmq trigger - a connection the broker closes (a restart) is opened again by the next read', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-reopen');
  const setup = await amqp.connect(AMQP_URL);
  await (await setup.createChannel()).assertQueue(q, { durable: false });
  await setup.close();
  const so = uniqueName('so');
  const s = rabbitmqTrigger.create({ ...trigger({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }), subject: `trigger 0 (rabbitmq) of ScaledObject ${so}` });
  t.after(() => s.close());
  assert.deepEqual(await s.metricAndActivity(), { value: 0, active: false });
  assert.equal(await closeConnectionsNamed(`qscale-keda: trigger 0 (rabbitmq) of ScaledObject ${so}`), 1, 'one connection, named after its trigger');
  const again = await eventually(() => s.metricAndActivity().then((m) => m.value, (e: Error) => e.message), (v) => v === 0, 20, 250);
  assert.equal(again, 0);
  assert.equal(await closeConnectionsNamed(`qscale-keda: trigger 0 (rabbitmq) of ScaledObject ${so}`), 1, 'still one connection');
});

test('rabbitmq trigger - watchArrivals calls back when an empty queue gets a message', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-watch');
  const b = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: q, durable: 'true' }), ctx);
  t.after(() => b.close());
  await b.init();
  const s = rabbitmqTrigger.create(trigger({ host: AMQP_URL, queueName: q, mode: 'QueueLength', value: '5' }));
  t.after(() => s.close());
  assert.ok(s.watchArrivals);
  let arrivals = 0;
  const stop = s.watchArrivals(() => arrivals++);
  t.after(stop);
  await new Promise((r) => setTimeout(r, 1500)); // one peek sees the queue empty
  await b.send(Buffer.from('wake up'), {});
  assert.equal(await eventually(async () => arrivals, (n) => n >= 1), 1);
});

/** Queues of `counts` messages each (durable false), deleted when the test ends. */
async function queuesWith(t: TestContext, counts: Record<string, number>): Promise<void> {
  t.after(() => deleteQueues(...Object.keys(counts)).catch(() => undefined));
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    for (const [q, n] of Object.entries(counts)) {
      await ch.assertQueue(q, { durable: false });
      for (let i = 0; i < n; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    }
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

test('rabbitmq trigger with useRegex sums, averages or maxes the matching queues over the management API, as KEDA', { timeout: 120_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  if (!(await requireBroker(t, 'rabbitmq-management'))) return;
  const prefix = uniqueName('rmq-regex');
  await queuesWith(t, { [`${prefix}-a-1`]: 2, [`${prefix}-a-2`]: 3, [`${prefix}-b`]: 7 });
  const want: Record<string, number> = { sum: 5, avg: 2, max: 3 };
  for (const operation of ['sum', 'avg', 'max']) {
    const s = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: `^${prefix}-a-`, useRegex: 'true', operation, mode: 'QueueLength', value: '5' }));
    t.after(() => s.close());
    const m = await eventually(() => s.metricAndActivity(), (v) => v.value === want[operation], 60, 500);
    assert.deepEqual(m, { value: want[operation], active: true }, operation);
    assert.match(s.describes, new RegExp(`the queues matching '\\^${prefix}-a-' \\(${operation}\\)`));
  }
  // More matches than one page holds: an error, as in KEDA.
  const paged = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: `^${prefix}-`, useRegex: 'true', pageSize: '1' }));
  t.after(() => paged.close());
  await assert.rejects(paged.metricAndActivity(), /more queues match than one page of 1 holds: raise pageSize or narrow queueName/);
});

test('rabbitmq trigger in MessageRate mode is active while messages wait, even with nothing published, as KEDA', { timeout: 120_000 }, async (t) => {
  if (!(await requireBroker(t, 'rabbitmq'))) return;
  if (!(await requireBroker(t, 'rabbitmq-management'))) return;
  const q = uniqueName('rmq-rate');
  await queuesWith(t, { [q]: 3 });
  const s = rabbitmqTrigger.create(trigger({ host: MGMT_URL, queueName: q, mode: 'MessageRate', value: '10', activationValue: '2' }));
  t.after(() => s.close());
  // The publish rate of three messages is well under the activation value 2/s; the three waiting messages are above it.
  const m = await eventually(() => s.metricAndActivity(), (v) => v.active, 60, 500);
  assert.equal(m.active, true);
  assert.ok(m.value < 2, `publish rate ${m.value}`);
});
