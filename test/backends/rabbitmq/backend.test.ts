import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { closedPort } from '../closed-port.js';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { rabbitmqBackend } from '../../../src/backends/rabbitmq/index.js';
import { hasDeadLetters, type Backend, type QueueMessage } from '../../../src/backends/types.js';
import { AMQP_URL, closeConnectionsOf, component, ctx, deleteQueues, eventually, managementUp } from './helpers.js';

/** A unique queue name whose queue and dead-letter queue are deleted when the test ends, passed or not. */
function queueFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteQueues(q, `${q}-dlq`).catch(() => undefined));
  return q;
}

function backend(queue: string, extra: Record<string, string> = {}, name?: string): Backend {
  const md = { host: AMQP_URL, queueName: queue, durable: 'true', reconnectWaitInSeconds: '1', ...extra };
  return rabbitmqBackend.create(component(md, name ? { name } : {}), ctx);
}

test('rabbitmq init - wrong password: clear error naming component and broker, password never shown', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const b = rabbitmqBackend.create(component({ host: 'amqp://guest:Wr0ngPassw0rd@127.0.0.1:5672', queueName: 'q' }, { initTimeout: '3s' }), ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, /component message-queue \(bindings\.rabbitmq\): cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672: login refused/);
    assert.doesNotMatch(err.message, /Wr0ngPassw0rd/);
    return true;
  });
  await b.close();
});

test('rabbitmq init - nothing listening on the port: connection refused', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const port = await closedPort();
  const b = rabbitmqBackend.create(component({ host: `amqp://guest:Secr3tPw@127.0.0.1:${port}`, queueName: 'q' }, { initTimeout: '2s' }), ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, new RegExp(`component message-queue \\(bindings\\.rabbitmq\\): cannot connect to RabbitMQ at .*127\\.0\\.0\\.1:${port}: connection refused`));
    assert.doesNotMatch(err.message, /Secr3tPw/);
    return true;
  });
  await b.close();
});

test('rabbitmq init - queue exists with other settings: says which queue and why', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-conflict');
  const durable = backend(q);
  await durable.init();
  const transient = rabbitmqBackend.create(component({ host: AMQP_URL, queueName: q, durable: 'false' }), ctx);
  await assert.rejects(transient.init(), /cannot declare queue 'rmq-conflict-[^']+' on amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672: .*PRECONDITION_FAILED.*durable/);
  await transient.close();
  await durable.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq send - Dapr mapping: persistent, metadata as headers, ttlInSeconds → expiration, priority, contentType', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-map');
  const b = backend(q, { maxPriority: '5' });
  await b.init();
  await b.send(Buffer.from('{"n":1}'), { ttlInSeconds: '60', priority: '3', contentType: 'application/json', tenant: 'a b/c' });
  await b.send(Buffer.from('"plain"'), {});
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const first = await ch.get(q, { noAck: true });
  const second = await ch.get(q, { noAck: true });
  await conn.close();
  assert.ok(first && second);
  assert.equal(first.content.toString(), '{"n":1}');
  assert.equal(first.properties.deliveryMode, 2);
  assert.equal(first.properties.expiration, '60000');
  assert.equal(first.properties.priority, 3);
  assert.equal(first.properties.contentType, 'application/json');
  assert.equal(first.properties.headers?.tenant, 'a b/c');
  assert.equal(second.properties.contentType, 'text/plain');
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq send - a ttlInSeconds that is not a number is refused with the field named', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-badttl');
  const b = backend(q);
  await b.init();
  await assert.rejects(b.send(Buffer.from('1'), { ttlInSeconds: 'soon' }), /metadata 'ttlInSeconds' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon'/);
  assert.equal((await b.depth()).ready, 0);
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq receive - metadata arrives as Dapr delivers it (values as published); success acks', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-rt');
  const b = backend(q);
  await b.init();
  await b.send(Buffer.from('"hello"'), { tenant: 'a b/c' });
  const ac = new AbortController();
  const got: QueueMessage[] = [];
  const done = b.receive(async (m) => {
    got.push(m);
    ac.abort();
    return true;
  }, { concurrency: 1, signal: ac.signal });
  await done;
  assert.equal(got.length, 1);
  assert.equal(got[0]?.data.toString(), '"hello"');
  assert.equal(got[0]?.metadata.tenant, 'a b/c');
  assert.equal(got[0]?.deliveryCount, 1);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq receive - a failing message is redelivered with a growing count, then dead-lettered at maxDeliveryCount', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dlq');
  const b = backend(q, { maxDeliveryCount: '3' });
  await b.init();
  await b.send(Buffer.from('"poison"'), {});
  const counts: number[] = [];
  const ac = new AbortController();
  const run = b.receive(async (m) => {
    counts.push(m.deliveryCount);
    return false;
  }, { concurrency: 1, signal: ac.signal });
  const d = await eventually(() => b.depth(), (x) => x.deadLettered === 1);
  ac.abort();
  await run;
  assert.deepEqual(counts, [1, 2, 3]);
  assert.equal(d.deadLettered, 1);
  assert.equal(d.ready, 0);
  assert.ok(hasDeadLetters(b));
  const dead = await b.deadLetters(10);
  assert.equal(dead.length, 1);
  assert.equal(dead[0]?.data.toString(), '"poison"');
  assert.equal(dead[0]?.deliveryCount, 3);
  assert.equal(dead[0]?.reason, 'MaxDeliveryCountExceeded: failed on delivery 3 of 3: the handler reported failure');
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq receive - the delivery count survives a restart of the consumer', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-restart');
  const first = backend(q);
  await first.init();
  await first.send(Buffer.from('1'), {});
  const ac1 = new AbortController();
  let fails = 0;
  await first.receive(async () => {
    if (++fails === 2) ac1.abort();
    return false;
  }, { concurrency: 1, signal: ac1.signal });
  await first.close();
  const second = backend(q);
  await second.init();
  const ac2 = new AbortController();
  let seen = 0;
  await second.receive(async (m) => {
    seen = m.deliveryCount;
    ac2.abort();
    return true;
  }, { concurrency: 1, signal: ac2.signal });
  assert.equal(seen, 3);
  await second.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq receive - leases only concurrency messages; abort finishes and acks in-flight work, leaves the rest ready', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-lease');
  const b = backend(q);
  await b.init();
  for (let i = 0; i < 10; i++) await b.send(Buffer.from(String(i)), {});
  const ac = new AbortController();
  let started = 0;
  let finished = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = b.receive(async () => {
    started++;
    await gate;
    finished++;
    return true;
  }, { concurrency: 2, signal: ac.signal });
  await eventually(async () => started, (n) => n === 2);
  const d = await b.depth();
  assert.equal(d.ready, 8);
  assert.equal(started, 2);
  ac.abort();
  release();
  await run;
  assert.equal(finished, 2);
  const after = await eventually(() => b.depth(), (x) => x.inFlight === 0);
  assert.deepEqual(after, { ready: 8, inFlight: 0, deadLettered: 0 });
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq depth - inFlight counts another process\'s unacked messages (management API)', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  if (!(await managementUp())) {
    if (process.env.CI === 'true') throw new Error('RabbitMQ management API (15672) is off: rabbitmq-plugins enable rabbitmq_management');
    t.skip('RabbitMQ management API is off: rabbitmq-plugins enable rabbitmq_management');
    return;
  }
  const q = queueFor(t, 'rmq-inflight');
  const observer = backend(q);
  await observer.init();
  for (let i = 0; i < 5; i++) await observer.send(Buffer.from(String(i)), {});
  // another "process": a raw consumer holding 3 unacked
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.prefetch(3);
  await ch.consume(q, () => undefined, { noAck: false });
  const d = await eventually(() => observer.depth(), (x) => x.inFlight === 3, 60, 500);
  assert.deepEqual(d, { ready: 2, inFlight: 3, deadLettered: 0 });
  await conn.close();
  await observer.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq reconnect - connections closed by the broker: sending and receiving resume, nothing lost', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-reconnect');
  const producer = backend(q, {}, q);
  const consumer = backend(q, {}, q);
  await producer.init();
  await consumer.init();
  const total = 40;
  const seen = new Set<string>();
  const ac = new AbortController();
  const run = consumer.receive(async (m) => {
    await new Promise((r) => setTimeout(r, 5));
    seen.add(m.data.toString());
    return true;
  }, { concurrency: 4, signal: ac.signal });
  for (let i = 0; i < total / 2; i++) await producer.send(Buffer.from(String(i)), {});
  assert.equal(await closeConnectionsOf(q), 2);
  for (let i = total / 2; i < total; i++) await producer.send(Buffer.from(String(i)), {});
  await eventually(async () => seen.size, (n) => n === total, 150, 200);
  ac.abort();
  await run;
  assert.equal(seen.size, total);
  assert.equal((await consumer.depth()).ready, 0);
  await producer.close();
  await consumer.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq init - an unreachable address fails within initTimeout instead of hanging', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  // 10.255.255.1 is unrouted: depending on the network the connect times out or is refused at once.
  const b = rabbitmqBackend.create(component({ host: 'amqp://guest:Secr3tPw@10.255.255.1:5672', queueName: 'q' }, { initTimeout: '1s' }), ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, /component message-queue \(bindings\.rabbitmq\): cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@10\.255\.255\.1:5672: /);
    assert.doesNotMatch(err.message, /Secr3tPw/);
    return true;
  });
  await b.close();
});

test('rabbitmq receive - a dead letter of a message with a TTL does not expire and names its source queue', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-ttl');
  const b = backend(q, { maxDeliveryCount: '2' });
  await b.init();
  await b.send(Buffer.from('1'), { ttlInSeconds: '600' });
  const ac = new AbortController();
  let calls = 0;
  const run = b.receive(async () => {
    calls++;
    return false;
  }, { concurrency: 1, signal: ac.signal });
  await eventually(() => b.depth(), (d) => d.deadLettered === 1);
  ac.abort();
  await run;
  assert.equal(calls, 2);
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const dead = await ch.get(`${q}-dlq`, { noAck: true });
  await conn.close();
  assert.ok(dead);
  assert.equal(dead.properties.expiration, undefined);
  assert.equal(dead.properties.headers?.['x-qscale-source-queue'], q);
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});

test('rabbitmq init - a virtual host that does not exist is named in the error', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const b = rabbitmqBackend.create(component({ host: 'amqp://guest:guest@127.0.0.1:5672/no-such-vhost', queueName: 'q' }, { initTimeout: '3s' }), ctx);
  await assert.rejects(b.init(), /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/no-such-vhost: virtual host 'no-such-vhost' refused/);
  await b.close();
});

test('rabbitmq send - a queue deleted under a running producer is declared again: the message is not dropped', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-gone');
  const b = backend(q);
  await b.init();
  await b.send(Buffer.from('before'), {});
  await deleteQueues(q);
  await b.send(Buffer.from('after'), {});
  assert.equal((await b.depth()).ready, 1);
  await b.close();
  await deleteQueues(q, `${q}-dlq`);
});
