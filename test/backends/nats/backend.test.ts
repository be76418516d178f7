import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../../src/errors.js';
import { NatsBackend } from '../../../src/backends/nats/backend.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { needBroker } from '../../support/brokers.js';
import { component, ctx, deleteNatsStreams, LOCAL_NATS, streamName } from './support.js';
import { TestNatsServer } from './server.js';

async function open(t: TestContext, extra: Record<string, string> = {}, url = LOCAL_NATS): Promise<NatsBackend> {
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: url, stream, ...extra }), ctx());
  await b.init();
  t.after(async () => {
    await b.close();
    await deleteNatsStreams(stream, url).catch(() => undefined);
  });
  return b;
}

async function receiveUntil(b: NatsBackend, handler: (m: QueueMessage) => Promise<boolean>, until: () => boolean, concurrency = 1): Promise<void> {
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
  for (let i = 0; i < 5; i++) await b.send(Buffer.from(JSON.stringify({ n: i })), { 'content-type': 'application/json', n: String(i) });
  assert.deepEqual(await b.depth(), { ready: 5, inFlight: 0, deadLettered: 0 });
  const got: QueueMessage[] = [];
  await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 5);
  assert.deepEqual(got.map((m) => m.data.toString()), [0, 1, 2, 3, 4].map((n) => JSON.stringify({ n })));
  assert.deepEqual(got.map((m) => m.metadata.n), ['0', '1', '2', '3', '4']);
  assert.equal(got[0]?.metadata['content-type'], 'application/json');
  assert.ok(got.every((m) => m.deliveryCount === 1));
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
  assert.match(dead[0]?.reason ?? '', /handler failed 3 deliveries/);
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
