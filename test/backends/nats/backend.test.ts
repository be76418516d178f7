import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { connect as natsConnect, headers as natsHeaders, RetentionPolicy, type NatsConnection } from 'nats';
import { BrokerError } from '../../../src/errors.js';
import { NatsBackend } from '../../../src/backends/nats/backend.js';
import { failed, type HandlerResult, type QueueMessage } from '../../../src/backends/types.js';
import { needBroker } from '../../support/brokers.js';
import { startProxy } from '../proxy.js';
import { component, ctx, deleteNatsStreams, LOCAL_NATS, streamName } from './support.js';
import { TestNatsServer } from './server.js';

/** A backend on a fresh stream (or on `extra.stream`), closed and its streams deleted when the test ends. */
async function open(t: TestContext, extra: Record<string, string> = {}, url = LOCAL_NATS): Promise<NatsBackend> {
  const stream = extra.stream ?? streamName();
  const b = new NatsBackend(component({ natsURL: url, stream, ...extra }), ctx());
  await b.init();
  t.after(async () => {
    await b.close();
    await deleteNatsStreams(stream, url).catch(() => undefined);
  });
  return b;
}

async function receiveUntil(b: NatsBackend, handler: (m: QueueMessage) => Promise<HandlerResult>, until: () => boolean, concurrency = 1): Promise<void> {
  const ac = new AbortController();
  await b.receive(
    async (m) => {
      const ok = await handler(m);
      if (until()) ac.abort();
      return ok;
    },
    { concurrency, signal: ac.signal },
  );
}

test('nats backend - messages arrive in publish order with their bytes and metadata, then the stream is empty', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t);
  const before = Date.now();
  for (let i = 0; i < 5; i++) await b.send(Buffer.from(JSON.stringify({ n: i })), { 'content-type': 'application/json', n: String(i) });
  const after = Date.now();
  assert.deepEqual(await b.depth(), { ready: 5, inFlight: 0, deadLettered: 0 });
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 5);
  assert.deepEqual(got.map((m) => m.data.toString()), [0, 1, 2, 3, 4].map((n) => JSON.stringify({ n })));
  assert.deepEqual(got.map((m) => m.metadata.n), ['0', '1', '2', '3', '4']);
  assert.equal(got[0]?.metadata['content-type'], 'application/json');
  assert.ok(got.every((m) => m.deliveryCount === 1));
  // JetStream's own clock is this machine's: a loose window around the sends, never a speed.
  for (const m of got) assert.ok(m.enqueuedAt !== undefined && m.enqueuedAt >= before - 1000 && m.enqueuedAt <= after + 1000, `enqueuedAt ${m.enqueuedAt}`);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats backend - a failed message is redelivered with a higher count, then moved to <stream>-dlq after maxDeliveryCount', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t, { maxDeliveryCount: '3' });
  await b.send(Buffer.from('"poison"'), { kind: 'bad' });
  await b.send(Buffer.from('"fine"'), {});
  const seen: string[] = [];
  await receiveUntil(
    b,
    async (m) => (seen.push(`${m.data.toString()}#${m.deliveryCount}`), m.data.toString() === '"fine"'),
    () => seen.includes('"fine"#1') && seen.includes('"poison"#3'),
  );
  assert.deepEqual(seen.filter((s) => s.startsWith('"poison"')), ['"poison"#1', '"poison"#2', '"poison"#3']);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  const dead = await b.deadLetters(10);
  assert.equal(dead.length, 1);
  assert.equal(dead[0]?.data.toString(), '"poison"');
  assert.equal(dead[0]?.metadata.kind, 'bad');
  assert.equal(dead[0]?.deliveryCount, 3);
  assert.equal(dead[0]?.reason, 'MaxDeliveryCountExceeded: failed on delivery 3 of 3: the handler reported failure');
});

test('nats backend - a retry coming due as the pull waiting for it expires still reaches the handler, round after round', { timeout: 180_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  // retryBackoff 1s and 1 s pulls sent right after the nak: nats-server before 2.11 counts such a redelivery and drops
  // it when the pull has just expired (back only after ackWait). A few rounds, since the server's window is narrow.
  const b = await open(t, { maxDeliveryCount: '2', retryBackoff: '1s', ackWait: '20s' });
  for (let round = 0; round < 6; round++) {
    await b.send(Buffer.from(`"round ${round}"`), {});
    const counts: number[] = [];
    await receiveUntil(b, async (m) => (counts.push(m.deliveryCount), m.deliveryCount === 2), () => counts.length === 2);
    assert.deepEqual(counts, [1, 2], `round ${round}: the retry came as delivery 2`);
  }
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats backend - progress acks keep a message leased while the handler outlives ackWait', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t, { ackWait: '1s' });
  await b.send(Buffer.from('"slow"'), {});
  const seen: number[] = [];
  const ac = new AbortController();
  let other: Promise<void> | undefined;
  await receiveUntil(
    b,
    async (m) => {
      seen.push(m.deliveryCount);
      other = b.receive(async (m2) => (seen.push(m2.deliveryCount), true), { concurrency: 1, signal: ac.signal });
      await new Promise((r) => setTimeout(r, 2500));
      return true;
    },
    () => true,
  );
  ac.abort();
  await other;
  assert.deepEqual(seen, [1], 'delivered once although the handler outlived two ack waits');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats backend - aborting drains: the handler in progress finishes and its message is acked', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t);
  await b.send(Buffer.from('1'), {});
  await b.send(Buffer.from('2'), {});
  const ac = new AbortController();
  const handled: string[] = [];
  await b.receive(
    async (m) => {
      ac.abort();
      await new Promise((r) => setTimeout(r, 200));
      handled.push(m.data.toString());
      return true;
    },
    { concurrency: 1, signal: ac.signal },
  );
  assert.deepEqual(handled, ['1']);
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
});

test('nats backend - a server restart in the middle of the stream loses no message', { timeout: 120_000 }, async (t) => {
  const server = await TestNatsServer.start();
  t.after(() => server.stop());
  const b = await open(t, { ackWait: '3s' }, server.url);
  const total = 40;
  for (let i = 0; i < total / 2; i++) await b.send(Buffer.from(String(i)), {});
  const got = new Set<string>();
  let restarted = false;
  await receiveUntil(
    b,
    async (m) => {
      got.add(m.data.toString());
      if (got.size === 8 && !restarted) {
        restarted = true;
        await server.restart();
        for (let i = total / 2; i < total; i++) {
          // a publish right after the restart may meet the reconnect: the producer's sidecar would retry too
          for (let attempt = 0; ; attempt++) {
            try {
              await b.send(Buffer.from(String(i)), {});
              break;
            } catch (err) {
              if (attempt > 50) throw err;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }
      }
      return true;
    },
    () => got.size === total,
    2,
  );
  assert.ok(restarted);
  assert.equal(got.size, total);
  // An ack lost in the restart leaves its message in flight until JetStream delivers it again (at least once):
  // keep receiving until the queue is empty, and nothing is dead-lettered on the way.
  const ac = new AbortController();
  const draining = b.receive(async () => true, { concurrency: 2, signal: ac.signal });
  try {
    const end = Date.now() + 30_000;
    for (;;) {
      const d = await b.depth();
      if (d.ready === 0 && d.inFlight === 0) break;
      if (Date.now() > end) assert.fail(`the queue never emptied: ${JSON.stringify(d)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    ac.abort();
    await draining;
  }
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats backend - an unreachable server fails init naming the component and the server', { timeout: 120_000 }, async (t) => {
  const b = new NatsBackend(component({ natsURL: 'nats://127.0.0.1:1', stream: 'x' }, '  initTimeout: 2s\n'), ctx());
  t.after(() => b.close());
  const err = await b.init().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, /^component message-queue \(bindings\.qscale\.nats-jetstream\): cannot use NATS JetStream at nats:\/\/127\.0\.0\.1:1: /);
});

test('nats backend - wrong credentials fail init with the password redacted', { timeout: 120_000 }, async (t) => {
  const server = await TestNatsServer.start({ user: 'app', pass: 'right-one' });
  t.after(() => server.stop());
  const url = `nats://app:Wr0ngPass@127.0.0.1:${server.port}`;
  const b = new NatsBackend(component({ natsURL: url, stream: 'x' }, '  initTimeout: 2s\n'), ctx());
  t.after(() => b.close());
  const err = await b.init().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, new RegExp(`cannot use NATS JetStream at nats://app:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}: .*[Aa]uthorization`));
  assert.doesNotMatch(err.message, /Wr0ngPass/);
});

test('nats backend - a missing stream with createStream false is a clear error', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: LOCAL_NATS, stream, createStream: 'false' }), ctx());
  t.after(() => b.close());
  const err = await b.init().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, new RegExp(`component message-queue \\(bindings\\.qscale\\.nats-jetstream\\): stream '${stream}' not found`));
});

/** Polls until `check` holds; gives up (fails) after 30 s: guards a hang, never asserts a speed. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A connection of the test's own to the machine's server, closed when the test ends. */
async function natsFor(t: TestContext): Promise<NatsConnection> {
  const nc = await natsConnect({ servers: LOCAL_NATS });
  t.after(() => nc.close());
  return nc;
}

test('nats dead letters - one written before dead letters kept their times still lists, shows and requeues', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = await open(t, { stream });
  // The headers the previous version wrote: reason, count and origin, no times.
  const nc = await natsFor(t);
  const h = natsHeaders();
  h.set('kind', 'legacy');
  h.set('Qscale-Dead-Letter-Reason', 'handler failed 10 deliveries');
  h.set('Qscale-Delivery-Count', '10');
  h.set('Qscale-Original-Id', `${stream}:4`);
  await nc.jetstream().publish(`${stream}-dlq`, Buffer.from('{"old":true}'), { headers: h });
  const [dead, ...more] = await b.deadLetters(10);
  assert.deepEqual(more, []);
  assert.ok(dead);
  assert.equal(dead.id, '1', 'named by its sequence in the dead-letter stream');
  assert.equal(dead.data.toString(), '{"old":true}');
  assert.deepEqual(dead.metadata, { kind: 'legacy' });
  assert.equal(dead.deliveryCount, 10);
  assert.equal(dead.reason, 'handler failed 10 deliveries');
  assert.equal(dead.enqueuedAt, undefined, 'its enqueue time was never kept');
  assert.equal(typeof dead.deadLetteredAt, 'number', 'JetStream stored it at a known time');
  assert.deepEqual(await b.deadLetter('1'), dead);
  for (const bad of ['0', '01', 'abc', '1.5', '-1', `${stream}:4`]) assert.equal(await b.deadLetter(bad), undefined, bad);
  assert.equal(await b.purgeDeadLetters(['abc', '7']), 0, 'ids that name no dead letter delete nothing');
  assert.equal(await b.requeueDeadLetters(['1']), 1);
  assert.equal(await b.requeueDeadLetters(['1']), 0, 'a second requeue of the same id finds nothing');
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 1);
  assert.equal(got[0]?.data.toString(), '{"old":true}');
  assert.deepEqual(got[0]?.metadata, { kind: 'legacy' });
  assert.equal(got[0]?.deliveryCount, 1);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats dead letters - a multi-line failure is kept on one line, and the ack wait that ran out on the last delivery is the reason', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = await open(t, { stream, maxDeliveryCount: '1', ackWait: '1s' });
  await b.send(Buffer.from('"answered"'), {});
  let calls = 0;
  await receiveUntil(b, async () => (calls++, failed('app answered 500: {\n  "error": "no"\r\n}')), () => calls === 1);
  // A receiver that takes the next message and dies with it: its only delivery runs out of ack wait.
  await b.send(Buffer.from('"taken"'), {});
  const nc = await natsFor(t);
  const taker = await nc.jetstream().consumers.get(stream, `${stream}-consumer`);
  const taken = await taker.next({ expires: 5000 });
  assert.equal(taken?.string(), '"taken"');
  const ac = new AbortController();
  const running = b.receive(async () => (calls++, true), { concurrency: 1, signal: ac.signal });
  try {
    await until(async () => (await b.depth()).deadLettered === 2, 'the lost delivery dead-lettered');
  } finally {
    ac.abort();
    await running;
  }
  assert.equal(calls, 1, 'the handler never saw the message whose last delivery was lost');
  const dead = await b.deadLetters(10);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"answered"', '"taken"']);
  assert.equal(dead[0]?.reason, 'MaxDeliveryCountExceeded: failed on delivery 1 of 1: app answered 500: {   "error": "no" }');
  assert.equal(dead[1]?.reason, 'MaxDeliveryCountExceeded: failed on delivery 1 of 1: the ack wait (1 s) expired on the last delivery: its receiver stopped or hung');
  assert.equal(dead[1]?.deliveryCount, 1);
});

test('nats purge - takes only messages never delivered: one in a handler stays', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t);
  await b.send(Buffer.from('"held"'), {});
  for (let i = 0; i < 3; i++) await b.send(Buffer.from(`"ready ${i}"`), {});
  const ac = new AbortController();
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const running = b.receive(async (m) => {
    seen.push(`${m.data.toString()}#${m.deliveryCount}`);
    if (m.data.toString() === '"held"') await gate;
    return true;
  }, { concurrency: 1, signal: ac.signal });
  t.after(async () => {
    ac.abort();
    release();
    await running;
  });
  // "held" stays in its handler: the receiver takes nothing more.
  await until(async () => seen.includes('"held"#1'), 'a message in a handler');
  assert.deepEqual(await b.depth(), { ready: 3, inFlight: 1, deadLettered: 0 });
  assert.equal(await b.purge(), 3);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 1, deadLettered: 0 });
  release();
  await until(async () => (await b.depth()).inFlight === 0, 'the held message acked');
  ac.abort();
  await running;
  assert.deepEqual(seen, ['"held"#1'], 'the purged messages were never delivered');
  assert.equal(await b.purge(), 0);
});

test('nats purge - a retry due when the purge runs is given back, not purged', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const b = await open(t, { maxDeliveryCount: '5', retryBackoff: '0s' });
  await b.send(Buffer.from('"retry"'), {});
  let failures = 0;
  await receiveUntil(b, async () => (failures++, false), () => failures === 1);
  for (let i = 0; i < 2; i++) await b.send(Buffer.from(`"ready ${i}"`), {});
  assert.equal(await b.purge(), 2);
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 1);
  assert.equal(got[0]?.data.toString(), '"retry"');
  // The purge's pull took one delivery of it (documented in purge()): 1 failed, 1 taken by the purge, this one.
  assert.equal(got[0]?.deliveryCount, 3);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('nats purge - on a limits stream (createStream false) the messages are consumed for this consumer and stay for others', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const nc = await natsFor(t);
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [stream], retention: RetentionPolicy.Limits, storage: 'memory' as never });
  const b = await open(t, { stream, createStream: 'false' });
  for (let i = 0; i < 4; i++) await b.send(Buffer.from(String(i)), {});
  assert.equal(await b.purge(), 4);
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  assert.equal((await jsm.streams.info(stream)).state.messages, 4, 'the stream keeps them for its other consumers');
  await b.send(Buffer.from('"after"'), {});
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 1);
  assert.deepEqual(got.map((m) => m.data.toString()), ['"after"']);
});

test('nats backend - a message that reaches a pull while the process is busy past the pull\'s end is handled, not dropped', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  // Through a relay that shows when the receiver sends its pull request.
  const proxy = await startProxy(4222);
  t.after(() => proxy.close());
  const stream = streamName();
  const b = await open(t, { stream, ackWait: '3s' }, proxy.url('nats'));
  // A publisher on a raw socket: its write goes out at once, even while this process then stays busy.
  const raw = net.connect(4222, '127.0.0.1');
  t.after(() => raw.destroy());
  await once(raw, 'data');
  raw.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  const counts: number[] = [];
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), 30_000);
  const running = b.receive(async (m) => (counts.push(m.deliveryCount), ac.abort(), true), { concurrency: 1, signal: ac.signal });
  t.after(async () => {
    clearTimeout(giveUp);
    ac.abort();
    await running;
  });
  const pulls = (): number => proxy.sent().split(`CONSUMER.MSG.NEXT.${stream}.`).length - 1;
  const before = pulls();
  await until(async () => pulls() > before, 'a pull request sent');
  raw.write(`PUB ${stream} 4\r\n"go"\r\n`);
  // JetStream hands the message to the waiting pull at once; this process reads it only after 1.5 s of other work,
  // past the moment the client library would have ended that pull on its own clock (1.05 × its 1 s expiry).
  const busyUntil = Date.now() + 1500;
  while (Date.now() < busyUntil) {
    // busy
  }
  await running;
  assert.deepEqual(counts, [1], 'handled on its first delivery, not after its ack wait ran out');
});
