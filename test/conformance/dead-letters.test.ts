/**
 * Dead letters a user can browse and replay, on every backend that claims them: what `qscale dlq list|show|requeue|
 * purge` and `qscale queue purge` stand on. Each case poisons real messages on a real broker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failed, hasDeadLetters, isPurgeable, type Backend, type DeadLetter, type DeadLetterReader } from '../../src/backends/types.js';
import { rows } from './table.js';
import { receiveFor, receiveUntil, setup, until } from './harness.js';

const MAX_DELIVERIES = 2;

/** Sends `bodies` and fails every delivery with the app's answer until each one is dead-lettered. */
async function poison(b: Backend & DeadLetterReader, bodies: string[], metadata: Record<string, string>): Promise<DeadLetter[]> {
  for (const body of bodies) await b.send(Buffer.from(body), metadata);
  let failures = 0;
  await receiveUntil(b, async (m) => {
    failures++;
    return failed(`app answered 500: {"error":"cannot take ${m.data.toString()}"}`);
  }, () => failures === bodies.length * MAX_DELIVERIES, 2);
  await until(async () => (await b.depth()).deadLettered === bodies.length, `${bodies.length} dead letters counted`);
  return b.deadLetters(100);
}

for (const row of rows) {
  if (!row.claims.deadLetter) continue;
  const name = (what: string): string => `dead letters ${row.name} - ${what}`;

  test(name('a dead letter keeps the app\'s answer, its body, metadata, delivery count and times'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row, MAX_DELIVERIES);
    if (!s) return;
    const b = await s.open();
    assert.ok(hasDeadLetters(b), `${row.name} offers list, show, requeue and purge of dead letters`);
    const before = Date.now();
    const [dead, ...more] = await poison(b, ['{"order":7}'], { kind: 'poison', 'x-trace': 'trace-7' });
    assert.deepEqual(more, []);
    assert.ok(dead);
    assert.equal(dead.data.toString(), '{"order":7}');
    assert.equal(dead.metadata.kind, 'poison');
    assert.equal(dead.metadata['x-trace'], 'trace-7');
    assert.equal(dead.deliveryCount, MAX_DELIVERIES);
    assert.match(dead.reason, /app answered 500/, 'the reason carries the app\'s status');
    assert.match(dead.reason, /cannot take \{"order":7\}/, 'and the first bytes of its answer');
    // Times as the broker recorded them: a loose window (broker clocks are this machine's), never a speed.
    assert.equal(typeof dead.enqueuedAt, 'number', 'enqueue time known');
    assert.equal(typeof dead.deadLetteredAt, 'number', 'dead-letter time known');
    assert.ok((dead.enqueuedAt ?? 0) >= before - 60_000 && (dead.enqueuedAt ?? 0) <= Date.now() + 60_000, `enqueuedAt ${dead.enqueuedAt} is this test's`);
    assert.ok((dead.deadLetteredAt ?? 0) >= (dead.enqueuedAt ?? 0) - 1000, 'dead-lettered after it was enqueued');

    const shown = await b.deadLetter(dead.id);
    assert.equal(shown?.id, dead.id, 'deadLetter(id) shows the one listed');
    assert.equal(shown?.data.toString(), '{"order":7}');
    assert.equal(shown?.reason, dead.reason);
    assert.equal(await b.deadLetter(`${dead.id}-no-such`), undefined, 'an unknown id shows nothing');
  });

  test(name('a handler that throws leaves its error as the reason'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row, MAX_DELIVERIES);
    if (!s) return;
    const b = await s.open();
    assert.ok(hasDeadLetters(b));
    await b.send(Buffer.from('"boom"'), {});
    let failures = 0;
    await receiveUntil(b, async () => {
      failures++;
      throw new Error('connect ECONNREFUSED 127.0.0.1:3000');
    }, () => failures === MAX_DELIVERIES);
    await until(async () => (await b.depth()).deadLettered === 1, 'dead letter counted');
    const [dead] = await b.deadLetters(10);
    assert.match(dead?.reason ?? '', /ECONNREFUSED 127\.0\.0\.1:3000/);
  });

  test(name('requeue keeps body and metadata, resets the delivery count, and the message is then processed'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row, MAX_DELIVERIES);
    if (!s) return;
    const b = await s.open();
    assert.ok(hasDeadLetters(b));
    // Values without URL-reserved characters: Service Bus hands application properties to the app URL-escaped, as daprd does.
    const [dead] = await poison(b, ['{"order":8}'], { kind: 'poison', 'x-format': 'order-v1' });
    assert.ok(dead);
    assert.equal(await b.requeueDeadLetters([dead.id]), 1);
    await until(async () => (await b.depth()).deadLettered === 0, 'the dead letter left the dead-letter queue');
    assert.deepEqual(await b.deadLetters(10), []);
    const got: Array<{ data: string; kind?: string; type?: string; count: number }> = [];
    await receiveUntil(b, async (m) => {
      got.push({ data: m.data.toString(), kind: m.metadata.kind, type: m.metadata['x-format'], count: m.deliveryCount });
      return true;
    }, () => got.length === 1);
    assert.deepEqual(got, [{ data: '{"order":8}', kind: 'poison', type: 'order-v1', count: 1 }]);
    await until(async () => {
      const d = await b.depth();
      return d.ready + d.inFlight + d.deadLettered === 0;
    }, 'the processed message is gone');
    assert.deepEqual(await receiveFor(b, 300), [], 'processed once, not again');
  });

  test(name('requeue and purge by id touch only the named dead letters; all takes the rest'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row, MAX_DELIVERIES);
    if (!s) return;
    const b = await s.open();
    assert.ok(hasDeadLetters(b));
    const dead = await poison(b, ['"a"', '"b"', '"c"'], {});
    assert.equal(dead.length, 3);
    const [first, second] = dead;
    assert.ok(first && second);
    assert.equal(await b.purgeDeadLetters([first.id]), 1);
    assert.equal(await b.deadLetter(first.id), undefined);
    assert.equal(await b.requeueDeadLetters([`${first.id}-no-such`]), 0, 'an unknown id moves nothing');
    assert.equal(await b.requeueDeadLetters([second.id]), 1);
    const left = await b.deadLetters(10);
    assert.equal(left.length, 1);
    assert.notEqual(left[0]?.data.toString(), first.data.toString());
    assert.notEqual(left[0]?.data.toString(), second.data.toString());
    assert.equal(await b.purgeDeadLetters('all'), 1);
    assert.equal(await b.requeueDeadLetters('all'), 0);
    await until(async () => (await b.depth()).deadLettered === 0, 'no dead letters left');
    const got: string[] = [];
    await receiveUntil(b, async (m) => (got.push(m.data.toString()), true), () => got.length === 1);
    assert.deepEqual(got, [second.data.toString()], 'only the requeued one comes back');
  });

  test(name('queue purge deletes the ready messages and leaves dead letters alone'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row, MAX_DELIVERIES);
    if (!s) return;
    const b = await s.open();
    assert.ok(hasDeadLetters(b));
    assert.ok(isPurgeable(b), `${row.name} can purge a queue`);
    await poison(b, ['"dead"'], {});
    for (let i = 0; i < 5; i++) await b.send(Buffer.from(`{"n":${i}}`), {});
    await until(async () => (await b.depth()).ready === 5, '5 ready');
    assert.equal(await b.purge(), 5);
    await until(async () => (await b.depth()).ready === 0, 'ready purged');
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
    assert.deepEqual(await receiveFor(b, 300), []);
    assert.equal(await b.purge(), 0, 'purging an empty queue is harmless');
  });
}
