/**
 * bindings.rabbitmq as daprd's RabbitMQ binding publishes, declares and delivers (components-contrib
 * bindings/rabbitmq, common/component/rabbitmq, metadata.TryGetTTL / TryGetPriority), point by point, against the
 * real broker on this machine; every property is read back with amqplib.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import amqp, { type GetMessage } from 'amqplib';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { parseRabbitmqComponent, rabbitmqBackend } from '../../../src/backends/rabbitmq/index.js';
import { hasDeadLetters, type Backend, type QueueMessage } from '../../../src/backends/types.js';
import { ConfigError } from '../../../src/errors.js';
import { AMQP_URL, component, ctx, deleteQueues } from './helpers.js';

function queueFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteQueues(q, `${q}-dlq`).catch(() => undefined));
  return q;
}

async function open(t: TestContext, queue: string, extra: Record<string, string> = {}): Promise<Backend> {
  const b = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: queue, durable: 'true', ...extra }), ctx);
  t.after(() => b.close());
  await b.init();
  return b;
}

/** Every message on the queue, taken off it, as amqplib sees it. */
async function drain(queue: string): Promise<GetMessage[]> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const out: GetMessage[] = [];
    for (let m = await ch.get(queue, { noAck: true }); m !== false; m = await ch.get(queue, { noAck: true })) out.push(m);
    return out;
  } finally {
    await conn.close();
  }
}

/** Does the queue exist (a passive declare on a channel of its own)? */
async function exists(queue: string): Promise<boolean> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await ch.checkQueue(queue).then(() => true, () => false);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Does the queue carry exactly these arguments? (RabbitMQ refuses a declaration that differs.) */
async function declaredWith(queue: string, args: Record<string, unknown>): Promise<boolean> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await ch.assertQueue(queue, { durable: true, arguments: args }).then(() => true, () => false);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

test('rabbitmq daprd parity - request messageID, correlationID, type and contentType become the message\'s properties', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-props');
  const b = await open(t, q);
  await b.send(Buffer.from('1'), { messageID: 'm-1', correlationID: 'c-1', type: 'order.created', contentType: 'application/json' });
  // Any spelling, as Dapr's TryGetProperty matches it once the exact name is absent.
  await b.send(Buffer.from('2'), { MessageId: 'm-2', CorrelationId: 'c-2', Type: 'order.paid' });
  const [first, second] = await drain(q);
  assert.ok(first && second);
  assert.deepEqual(
    { messageId: first.properties.messageId, correlationId: first.properties.correlationId, type: first.properties.type, contentType: first.properties.contentType },
    { messageId: 'm-1', correlationId: 'c-1', type: 'order.created', contentType: 'application/json' },
  );
  assert.deepEqual(
    { messageId: second.properties.messageId, correlationId: second.properties.correlationId, type: second.properties.type, contentType: second.properties.contentType },
    { messageId: 'm-2', correlationId: 'c-2', type: 'order.paid', contentType: 'text/plain' },
  );
  // Every entry is a header too, as Dapr publishes it.
  assert.equal(first.properties.headers?.messageID, 'm-1');
});

test('rabbitmq daprd parity - request priority is clamped to 0–255 as Dapr clamps it; one that is no integer is refused', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-prio');
  const b = await open(t, q, { maxPriority: '10' });
  for (const p of ['300', '-4', '7']) await b.send(Buffer.from(p), { priority: p });
  await assert.rejects(b.send(Buffer.from('x'), { priority: 'high' }), /metadata 'priority' must be an integer \(0 to 255; others are clamped\), got 'high'/);
  const got = await drain(q);
  assert.deepEqual(got.map((m) => [m.content.toString(), m.properties.priority]), [['300', 255], ['7', 7], ['-4', 0]]);
});

test('rabbitmq daprd parity - request TTL: ttl or ttlInSeconds, a Go duration or whole seconds, ttl first; 0 is sent as Dapr sends it', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-ttl');
  const b = await open(t, q);
  const cases: Array<[Record<string, string>, string]> = [
    [{ ttlInSeconds: '30s' }, '30000'],
    [{ ttl: '1500ms' }, '1500'],
    [{ ttlInSeconds: '60' }, '60000'],
    [{ ttl: '2m', ttlInSeconds: '5' }, '120000'],
    [{ TTL: '1h' }, '3600000'],
  ];
  for (const [md] of cases) await b.send(Buffer.from('{}'), md);
  const got = await drain(q);
  assert.deepEqual(got.map((m) => m.properties.expiration), cases.map(([, e]) => e));
  // An expiration of 0: the broker drops it unless a consumer takes it at once; accepted, as daprd accepts it.
  await b.send(Buffer.from('{}'), { ttlInSeconds: '0' });
});

test('rabbitmq daprd parity - a request TTL daprd refuses is refused, naming the key and the value', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-badttl2');
  const b = await open(t, q);
  await assert.rejects(b.send(Buffer.from('1'), { ttl: 'soon' }), { code: 'ERR_BAD_METADATA', message: "metadata 'ttl' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon'" });
  await assert.rejects(b.send(Buffer.from('1'), { ttlInSeconds: '-5' }), { code: 'ERR_BAD_METADATA', message: "metadata 'ttlInSeconds' must be a whole number of seconds above zero, got '-5'" });
  assert.equal((await b.depth()).ready, 0);
});

test('rabbitmq daprd parity - header values arrive as they were published; only keys are query-escaped, as Dapr delivers them', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-esc');
  const b = await open(t, q);
  await b.send(Buffer.from('"hello"'), { tenant: 'a b/c&d=e', 'my key': 'x y' });
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  await b.receive(async (m) => {
    got.push(m);
    ac.abort();
    return true;
  }, { concurrency: 1, signal: ac.signal });
  assert.equal(got[0]?.metadata.tenant, 'a b/c&d=e');
  assert.equal(got[0]?.metadata['my+key'], 'x y');
});

test('rabbitmq daprd parity - component TTL as a duration (ttlInSeconds or ttl) declares x-message-ttl in ms; 0 is declared as Dapr declares it', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  for (const [md, ms] of [[{ ttlInSeconds: '30s' }, 30_000], [{ ttl: '90' }, 90_000], [{ ttlInSeconds: '0' }, 0]] as const) {
    const q = queueFor(t, 'rmq-qttl');
    await open(t, q, md);
    assert.ok(await declaredWith(q, { 'x-message-ttl': ms }), `${JSON.stringify(md)}: x-message-ttl ${ms}`);
    assert.ok(!(await declaredWith(q, { 'x-message-ttl': ms + 1 })), 'and not another value');
  }
});

test('rabbitmq daprd parity - a component TTL daprd refuses is refused at start with file:line', { timeout: 60_000 }, () => {
  for (const [md, says] of [
    [{ ttlInSeconds: 'soon' }, /binding\.yaml:13: .*metadata 'ttlInSeconds' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon'/],
    [{ ttl: '-1' }, /binding\.yaml:13: .*metadata 'ttl' must be a whole number of seconds above zero, got '-1'/],
  ] as const) {
    assert.throws(() => parseRabbitmqComponent(component({ host: AMQP_URL, queueName: 'q', ...md })), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, says);
      return true;
    });
  }
});

test('rabbitmq daprd parity - an output-only component declares its queue only, as daprd: no -dlq queue until something reads', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-out');
  const producer = await open(t, q);
  await producer.send(Buffer.from('"work"'), {});
  assert.ok(await exists(q));
  assert.equal(await exists(`${q}-dlq`), false, 'no dead-letter queue for a component that only sends');
  assert.deepEqual(await producer.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
  assert.ok(hasDeadLetters(producer));
  assert.deepEqual(await producer.deadLetters(10), []);
  // The component that reads declares it before its first delivery.
  const consumer = await open(t, q, { maxDeliveryCount: '1' });
  const ac = new AbortController();
  await consumer.receive(async () => {
    ac.abort();
    return false;
  }, { concurrency: 1, signal: ac.signal });
  assert.ok(await exists(`${q}-dlq`));
  assert.ok(hasDeadLetters(consumer));
  assert.equal((await consumer.deadLetters(10)).length, 1);
});
