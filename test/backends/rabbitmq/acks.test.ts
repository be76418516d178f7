/**
 * The consumer's acks: answers of one event-loop turn go out together (one `multiple` ack for the finished front of
 * the line), a lone answer at once, and an ack is never held back behind a message still in its handler.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from 'amqplib';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { rabbitmqBackend } from '../../../src/backends/rabbitmq/index.js';
import { AckBatch } from '../../../src/backends/rabbitmq/backend.js';
import type { Backend } from '../../../src/backends/types.js';
import { AMQP_URL, component, ctx, deleteQueues, eventually } from './helpers.js';

function queueFor(t: TestContext, prefix: string): string {
  const q = uniqueName(prefix);
  t.after(() => deleteQueues(q, `${q}-dlq`).catch(() => undefined));
  return q;
}

function backend(queue: string, extra: Record<string, string> = {}): Backend {
  return rabbitmqBackend.create(component({ host: AMQP_URL, queueName: queue, durable: 'true', reconnectWaitInSeconds: '1', ...extra }), ctx);
}

/** A delivery of the given tag, as amqplib hands it over. */
function msg(tag: number): Message {
  return { fields: { deliveryTag: tag }, properties: {}, content: Buffer.alloc(0) } as unknown as Message;
}

/** A channel that records the acks it is asked to send: [tag, multiple]. */
function recorder(): { ch: { ack(m: Message, multiple?: boolean): void }; sent: Array<[number, boolean]> } {
  const sent: Array<[number, boolean]> = [];
  return { sent, ch: { ack: (m, multiple) => void sent.push([m.fields.deliveryTag, multiple === true]) } };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('rabbitmq acks - one answer with no other handler working is acked at once', { timeout: 10_000 }, () => {
  const { ch, sent } = recorder();
  const acks = new AckBatch(ch);
  const m = msg(1);
  acks.delivered(m);
  acks.done(m);
  assert.deepEqual(sent, [[1, false]]);
  assert.equal(acks.unacked, 0);
});

test('rabbitmq acks - answers of one turn at the front of the line go out as one multiple ack', { timeout: 10_000 }, async () => {
  const { ch, sent } = recorder();
  const acks = new AckBatch(ch);
  const ms = [1, 2, 3, 4].map(msg);
  for (const m of ms) acks.delivered(m);
  acks.done(ms[2]!);
  acks.done(ms[0]!);
  acks.done(ms[1]!);
  assert.deepEqual(sent, [], 'nothing is sent before the turn ends while another handler works');
  await turn();
  assert.deepEqual(sent, [[3, true]]);
  acks.done(ms[3]!);
  assert.deepEqual(sent, [[3, true], [4, false]]);
  assert.equal(acks.unacked, 0);
});

test('rabbitmq acks - an answer behind a message still in its handler is acked alone, never with it', { timeout: 10_000 }, async () => {
  const { ch, sent } = recorder();
  const acks = new AckBatch(ch);
  const ms = [1, 2, 3, 4, 5].map(msg);
  for (const m of ms) acks.delivered(m);
  acks.done(ms[0]!);
  acks.done(ms[2]!);
  acks.done(ms[3]!);
  await turn();
  assert.deepEqual(sent, [[1, false], [3, false], [4, false]]);
  // 2's outcome could not be applied: it stays unacked, and 5's ack does not reach over it.
  acks.abandoned(ms[1]!);
  acks.done(ms[4]!);
  assert.deepEqual(sent, [[1, false], [3, false], [4, false], [5, false]]);
  acks.done(ms[1]!);
  await turn();
  assert.equal(sent.length, 4, 'an abandoned message is never acked');
  assert.equal(acks.unacked, 1);
});

test('rabbitmq acks - a slow handler does not hold back the acks of the others (their prefetch slots come back)', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-acks-slow');
  const b = backend(q);
  t.after(() => b.close());
  await b.init();
  await b.send(Buffer.from('slow'), {});
  for (let i = 0; i < 6; i++) await b.send(Buffer.from(`fast-${i}`), {});
  const ac = new AbortController();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const fast = new Set<string>();
  const run = b.receive(async (m) => {
    const text = m.data.toString();
    if (text === 'slow') await gate;
    else fast.add(text);
    return true;
  }, { concurrency: 2, signal: ac.signal });
  // With prefetch 2 and 'slow' holding one slot, each fast message gets the other slot only once the one before is acked.
  await eventually(async () => fast.size, (n) => n === 6, 300, 100);
  assert.equal(fast.size, 6, 'every fast message is delivered while the slow one is still in its handler');
  release();
  ac.abort();
  await run;
  const after = await eventually(() => b.depth(), (d) => d.inFlight === 0 && d.ready === 0);
  assert.deepEqual(after, { ready: 0, inFlight: 0, deadLettered: 0 });
});

test('rabbitmq acks - mixed outcomes at 16 in flight: each message succeeds exactly once, none stays behind', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const q = queueFor(t, 'rmq-acks-mixed');
  const b = backend(q, { retryBackoff: '0s' });
  t.after(() => b.close());
  await b.init();
  const N = 300;
  await Promise.all(Array.from({ length: N }, (_, i) => b.send(Buffer.from(String(i)), {})));
  const ac = new AbortController();
  const succeeded = new Map<string, number>();
  let failedOnce = 0;
  const run = b.receive(async (m) => {
    const i = Number(m.data.toString());
    // Every 7th fails its first delivery; some answers take a moment, so tags finish out of order.
    if (i % 5 === 0) await new Promise((r) => setTimeout(r, i % 3));
    if (i % 7 === 0 && m.deliveryCount === 1) {
      failedOnce++;
      return false;
    }
    succeeded.set(String(i), (succeeded.get(String(i)) ?? 0) + 1);
    return true;
  }, { concurrency: 16, signal: ac.signal });
  await eventually(async () => succeeded.size, (n) => n === N, 300, 100);
  ac.abort();
  await run;
  assert.equal(succeeded.size, N, 'every message succeeded');
  assert.deepEqual([...succeeded].filter(([, n]) => n !== 1), [], 'no message was delivered again after it succeeded');
  assert.equal(failedOnce, Math.ceil(N / 7));
  const after = await eventually(() => b.depth(), (d) => d.inFlight === 0 && d.ready === 0);
  assert.deepEqual(after, { ready: 0, inFlight: 0, deadLettered: 0 });
});
