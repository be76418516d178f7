/**
 * RabbitMQ's dead letters beyond the conformance cases: browsing with basic.get while the queue is consumed, dead
 * letters written by earlier versions or by RabbitMQ itself, what a queue purge takes and leaves, and outages.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { rabbitmqBackend } from '../../../src/backends/rabbitmq/index.js';
import { MAX_REASON_CHARS } from '../../../src/backends/rabbitmq/dead-letters.js';
import { retryQueueName } from '../../../src/backends/rabbitmq/retry.js';
import {
  failed, hasDeadLetters, isPurgeable, type Backend, type DeadLetter, type DeadLetterReader, type Purgeable, type QueueMessage,
} from '../../../src/backends/types.js';
import { AMQP_URL, component, ctx, deleteQueues, eventually } from './helpers.js';
import { startProxy } from '../proxy.js';
import { receiveUntil } from '../../conformance/harness.js';

type Full = Backend & DeadLetterReader & Purgeable;

function queueFor(t: TestContext, prefix: string, ...more: string[]): string {
  const q = uniqueName(prefix);
  t.after(() => deleteQueues(q, `${q}-dlq`, ...more.map((m) => `${q}${m}`)).catch(() => undefined));
  return q;
}

async function open(t: TestContext, queue: string, extra: Record<string, string> = {}, host = AMQP_URL): Promise<Full> {
  const b = rabbitmqBackend.create(component({ host, queueName: queue, durable: 'true', reconnectWaitInSeconds: '1',
    retryBackoff: '0s', ...extra }, { initTimeout: '5s' }), ctx);
  t.after(() => b.close());
  await b.init();
  assert.ok(hasDeadLetters(b) && isPurgeable(b));
  return b as Full;
}

/** Sends the bodies and fails each delivery with the app's answer until all of them are dead letters. */
async function poison(b: Full, bodies: string[], metadata: Record<string, string> = {}, answer = (m: QueueMessage) => `app answered 422: bad ${m.data.toString()}`): Promise<DeadLetter[]> {
  for (const body of bodies) await b.send(Buffer.from(body), metadata);
  let failures = 0;
  await receiveUntil(b, async (m) => (failures++, failed(answer(m))), () => failures === bodies.length);
  await eventually(() => b.depth(), (d) => d.deadLettered === bodies.length);
  return b.deadLetters(100);
}

/** Another client's channel; what it published is confirmed before it closes (an unconfirmed one may be lost). */
async function withChannel<T>(fn: (ch: amqp.ConfirmChannel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    const out = await fn(ch);
    await ch.waitForConfirms();
    return out;
  } finally {
    await conn.close();
  }
}

test('rabbitmq dead letters - browsing, showing and replaying by id while the queue is consumed: the consumer gets every message once, the dead letters keep their order', { timeout: 180_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-browse');
  const b = await open(t, q, { maxDeliveryCount: '1' });
  const dead = await poison(b, ['"d0"', '"d1"', '"d2"', '"d3"', '"d4"']);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"d0"', '"d1"', '"d2"', '"d3"', '"d4"'], 'oldest first');
  const ids = dead.map((d) => d.id);
  const middle = dead[2];
  assert.ok(middle);

  // The same backend consumes the queue (one connection, other channels) while the dead letters are browsed.
  const total = 150;
  const seen = new Map<string, number>();
  const enqueuedAt: unknown[] = [];
  const ac = new AbortController();
  const consuming = b.receive(async (m) => {
    seen.set(m.data.toString(), (seen.get(m.data.toString()) ?? 0) + 1);
    enqueuedAt.push(m.enqueuedAt);
    return true;
  }, { concurrency: 4, signal: ac.signal });
  const producing = (async () => {
    for (let i = 0; i < total; i++) await b.send(Buffer.from(`{"work":${i}}`), {});
  })();
  let browses = 0;
  let produced = false;
  void producing.then(() => (produced = true));
  while (!produced || browses < 3) {
    assert.deepEqual((await b.deadLetters(10)).map((d) => d.id), ids, 'every browse sees the same dead letters in the same order');
    assert.equal((await b.deadLetter(middle.id))?.data.toString(), '"d2"');
    assert.equal(await b.requeueDeadLetters(['no-such-id']), 0);
    assert.equal(await b.purgeDeadLetters(['no-such-id']), 0);
    browses++;
  }
  await producing;
  await eventually(async () => seen.size, (n) => n === total, 150, 200);
  ac.abort();
  await consuming;
  assert.equal(seen.size, total, 'every message sent meanwhile was handled');
  assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], 'and none twice');
  assert.deepEqual([...seen.keys()].filter((k) => !k.startsWith('{"work"')), [], 'no dead letter reached the consumer');
  assert.deepEqual(enqueuedAt.filter((at) => typeof at !== 'number'), [], 'each message says when it was sent');
  assert.deepEqual((await b.deadLetters(10)).map((d) => d.id), ids);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 5 });

  // Taking one from the middle leaves the others in their order.
  assert.equal(await b.purgeDeadLetters([middle.id]), 1);
  assert.deepEqual((await b.deadLetters(10)).map((d) => d.id), ids.filter((id) => id !== middle.id));
  assert.deepEqual((await b.deadLetters(2)).map((d) => d.id), ids.slice(0, 2), 'a limit takes the oldest');
});

test('rabbitmq dead letters - one written by an earlier qscale (no id, no time headers) lists, shows and requeues as a fresh message', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-legacy');
  const b = await open(t, q);
  const sentAt = Math.floor(Date.now() / 1000) - 3600;
  await withChannel(async (ch) => {
    await ch.assertQueue(`${q}-dlq`, { durable: true });
    ch.sendToQueue(`${q}-dlq`, Buffer.from('{"legacy":true}'), {
      persistent: true, messageId: 'legacy-1', timestamp: sentAt, contentType: 'application/json', correlationId: 'corr-9',
      headers: { tenant: 'acme', 'x-delivery-count': 3, 'x-qscale-dead-letter-reason': 'failed 3 deliveries (maxDeliveryCount 3)', 'x-qscale-source-queue': q },
    });
  });
  await eventually(() => b.depth(), (d) => d.deadLettered === 1);
  const [dead, ...more] = await b.deadLetters(10);
  assert.deepEqual(more, []);
  assert.ok(dead);
  assert.deepEqual(dead, {
    id: 'legacy-1', data: Buffer.from('{"legacy":true}'), metadata: { tenant: 'acme' }, deliveryCount: 3,
    reason: 'failed 3 deliveries (maxDeliveryCount 3)', enqueuedAt: sentAt * 1000,
  });
  assert.equal((await b.deadLetter('legacy-1'))?.reason, 'failed 3 deliveries (maxDeliveryCount 3)');

  assert.equal(await b.requeueDeadLetters(['legacy-1']), 1);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
  const back = await withChannel((ch) => ch.get(q, { noAck: true }));
  assert.ok(back);
  assert.equal(back.content.toString(), '{"legacy":true}');
  assert.deepEqual(back.properties.headers, { tenant: 'acme' }, 'no delivery count, reason or source queue comes along');
  assert.equal(back.properties.messageId, 'legacy-1');
  assert.equal(back.properties.correlationId, 'corr-9');
  assert.equal(back.properties.contentType, 'application/json');
  assert.ok(back.properties.timestamp > sentAt, 'sent again now');
});

test('rabbitmq dead letters - one RabbitMQ dead-lettered itself (x-death) gives the broker\'s cause and time', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-xdeath', '-expiring');
  const b = await open(t, q);
  await withChannel(async (ch) => {
    await ch.assertQueue(`${q}-dlq`, { durable: true });
    await ch.assertQueue(`${q}-expiring`, { arguments: { 'x-message-ttl': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${q}-dlq` } });
    ch.sendToQueue(`${q}-expiring`, Buffer.from('"late"'), { messageId: 'late-1' });
  });
  await eventually(() => b.depth(), (d) => d.deadLettered === 1);
  const [dead] = await b.deadLetters(10);
  assert.equal(dead?.id, 'late-1');
  assert.equal(dead?.reason, `RabbitMQ dead-lettered it from queue '${q}-expiring': expired`);
  assert.equal(typeof dead?.deadLetteredAt, 'number');
  assert.ok(Math.abs((dead?.deadLetteredAt ?? 0) - Date.now()) < 120_000, 'the time of the x-death entry');
});

test('rabbitmq dead letters - one put there by another client without any id is named by a digest of its content', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-noid');
  const b = await open(t, q);
  await withChannel(async (ch) => {
    await ch.assertQueue(`${q}-dlq`, { durable: true });
    ch.sendToQueue(`${q}-dlq`, Buffer.from('"first"'), {});
    ch.sendToQueue(`${q}-dlq`, Buffer.from('"second"'), { headers: { tenant: 'acme' } });
  });
  await eventually(() => b.depth(), (d) => d.deadLettered === 2);
  const dead = await b.deadLetters(10);
  assert.deepEqual(dead.map((d) => [d.data.toString(), d.reason, d.deliveryCount]), [['"first"', 'dead-lettered (no reason recorded)', 0], ['"second"', 'dead-lettered (no reason recorded)', 0]]);
  const [first, second] = dead;
  assert.ok(first && second);
  assert.match(first.id, /^sha256-[0-9a-f]{24}$/);
  assert.notEqual(first.id, second.id);
  assert.deepEqual(await b.deadLetters(10), dead, 'the same names on the next browse');
  assert.equal((await b.deadLetter(second.id))?.data.toString(), '"second"');
  assert.equal(await b.purgeDeadLetters([second.id]), 1);
  assert.deepEqual((await b.deadLetters(10)).map((d) => d.id), [first.id]);
});

test('rabbitmq dead letters - two messages sent with the same messageID are two dead letters, each named on its own', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-dupid');
  const b = await open(t, q, { maxDeliveryCount: '1' });
  const dead = await poison(b, ['"a"', '"b"'], { messageID: 'same' });
  assert.equal(dead.length, 2);
  const [a, bee] = dead;
  assert.ok(a && bee);
  assert.notEqual(a.id, bee.id);
  assert.equal(await b.requeueDeadLetters([a.id]), 1);
  assert.deepEqual((await b.deadLetters(10)).map((d) => d.data.toString()), ['"b"']);
});

test('rabbitmq dead letters - a very long answer from the app is cut in the dead letter\'s header, and the cut shows', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-dl-long');
  const b = await open(t, q, { maxDeliveryCount: '1' });
  const [dead] = await poison(b, ['"long"'], {}, () => `app answered 500: ${'x'.repeat(200_000)}`);
  assert.equal(dead?.reason.length, MAX_REASON_CHARS);
  assert.match(dead?.reason ?? '', /^MaxDeliveryCountExceeded: failed on delivery 1 of 1: app answered 500: x+…$/);
});

test('rabbitmq purge - takes the ready messages and those waiting out a retry backoff; a message in a handler is kept and finishes', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-purge', '-retry-30000ms');
  const b = await open(t, q, { maxDeliveryCount: '3', retryBackoff: '30s', retryBackoffMax: '30s' });
  await b.send(Buffer.from('"fails"'), {});
  await b.send(Buffer.from('"held"'), {});
  for (let i = 0; i < 3; i++) await b.send(Buffer.from(`"ready-${i}"`), {});
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let holding = false;
  const handled: string[] = [];
  const ac = new AbortController();
  const receiving = b.receive(async (m) => {
    const body = m.data.toString();
    if (body === '"fails"') return false;
    holding = true;
    await gate;
    handled.push(body);
    return true;
  }, { concurrency: 1, signal: ac.signal });
  await eventually(async () => holding, (h) => h);
  const retrying = await withChannel((ch) => ch.checkQueue(retryQueueName(q, 30_000)));
  assert.equal(retrying.messageCount, 1, 'the failed message waits in its retry queue');
  assert.equal((await b.depth()).ready, 4, 'depth counts it as ready');
  assert.equal(await b.purge(), 4, 'three ready and the one waiting out its backoff');
  ac.abort();
  release();
  await receiving;
  assert.deepEqual(handled, ['"held"'], 'the message in the handler was handled and acked');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  assert.deepEqual(await b.deadLetters(10), []);
});

test('rabbitmq dead letters - while the broker cannot be reached, browsing fails at once naming the component, the address and what it was doing', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const proxy = await startProxy(5672);
  t.after(() => proxy.close());
  const q = queueFor(t, 'rmq-dl-down');
  const b = await open(t, q, {}, `amqp://guest:guest@127.0.0.1:${proxy.port}`);
  assert.deepEqual(await b.deadLetters(10), [], 'no dead-letter queue yet: no dead letters');
  await proxy.setMode('refuse');
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['list the dead letters', () => b.deadLetters(10)],
    ['show a dead letter', () => b.deadLetter('x')],
    ['requeue dead letters', () => b.requeueDeadLetters('all')],
    ['purge dead letters', () => b.purgeDeadLetters('all')],
    ['purge the queue', () => b.purge()],
  ];
  for (const [doing, call] of calls) {
    const err = await eventually(() => call().then(() => undefined, (e: unknown) => e), (e) => e instanceof Error && /unreachable/.test(e.message));
    assert.ok(err instanceof Error);
    assert.match(err.message, new RegExp(`^component message-queue \\(bindings\\.rabbitmq\\): cannot ${doing}: RabbitMQ at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${proxy.port} is unreachable`));
  }
  await proxy.setMode('relay');
  assert.deepEqual(await eventually(() => b.deadLetters(10).catch(() => undefined), (d) => d !== undefined), [], 'and works again once it is back');
});
