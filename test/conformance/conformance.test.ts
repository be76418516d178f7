/**
 * One suite over every backend of the table: what an app behind a sidecar would notice about delivery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import inspector from 'node:inspector';
import v8 from 'node:v8';
import vm from 'node:vm';
import { hasDeadLetters, type QueueMessage } from '../../src/backends/types.js';
import { SPACED_BACKOFF, rows } from './table.js';
import { GIVE_UP_MS, dataDir, receiveFor, receiveUntil, setup, until } from './harness.js';

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/**
 * How many promises are alive right now, after a full garbage collection: the inspector's queryObjects walks the heap
 * for every object whose prototype is Promise.prototype. A receive loop that retains something per message (a
 * reaction on a promise that never settles keeps the promise it would resolve) shows up here one per message.
 */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const inspectorSession = new inspector.Session();
inspectorSession.connect();
function inspect<T>(method: string, params: object): Promise<T> {
  return new Promise((resolve, reject) => {
    inspectorSession.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T)));
  });
}
async function livePromises(): Promise<number> {
  gc();
  gc();
  const proto = await inspect<{ result: { objectId: string } }>('Runtime.evaluate', { expression: 'Promise.prototype', objectGroup: 'count' });
  const found = await inspect<{ objects: { objectId: string } }>('Runtime.queryObjects', { prototypeObjectId: proto.result.objectId, objectGroup: 'count' });
  const n = await inspect<{ result: { value: number } }>('Runtime.callFunctionOn', {
    objectId: found.objects.objectId, functionDeclaration: 'function () { return this.length; }', returnByValue: true,
  });
  await inspect('Runtime.releaseObjectGroup', { objectGroup: 'count' });
  return n.result.value;
}

const json = (n: number): Buffer => Buffer.from(JSON.stringify({ n, text: 'héllo ✓' }));

for (const row of rows) {
  const name = (what: string): string => `conformance ${row.name} - ${what}`;

  test(name('round trip keeps the payload bytes and the metadata'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    const payload = Buffer.from('{"order":42,"note":"naïve café ✓","raw":"\\u0000"}');
    await b.send(payload, { 'content-type': 'application/json', 'x-trace': 'abc-123' });
    const got: QueueMessage[] = [];
    await receiveUntil(b, async (m) => (got.push(m), true), () => got.length === 1);
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]?.data, payload);
    assert.equal(got[0]?.metadata['x-trace'], 'abc-123');
    assert.equal(got[0]?.deliveryCount, 1);
  });

  test(name('a message acked with true is gone: not delivered again'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    await b.send(json(1), {});
    let n = 0;
    await receiveUntil(b, async () => (n++, true), () => n === 1);
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
    assert.equal((await receiveFor(b, 300)).length, 0);
  });

  test(name('a failed message is delivered again with a higher delivery count'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    await b.send(json(7), {});
    const seen: Array<{ count: number; data: string }> = [];
    await receiveUntil(b, async (m) => {
      seen.push({ count: m.deliveryCount, data: m.data.toString() });
      if (seen.length === 1) throw new Error('app answered 500');
      return seen.length > 2;
    }, () => seen.length === 3);
    assert.deepEqual(seen.map((x) => x.count), [1, 2, 3]);
    assert.ok(seen.every((x) => x.data === json(7).toString()));
    assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
  });

  if (row.heldFor) {
    const heldFor = row.heldFor;
    test(name('a failed message is held back by the broker for the redelivery backoff, doubling with each failure'), { timeout: 180_000 }, async (t) => {
      const s = await setup(t, row, 4, SPACED_BACKOFF);
      if (!s) return;
      const b = await s.open();
      await b.send(json(5), {});
      const deliveries: number[] = [];
      const held: number[] = [];
      const receiving = receiveUntil(b, async (m) => {
        deliveries.push(m.deliveryCount);
        return m.deliveryCount >= 3;
      }, () => deliveries.length === 3);
      for (const failed of [1, 2]) {
        await until(() => deliveries.length >= failed, `delivery ${failed}`);
        let h: number | undefined;
        await until(async () => (h = await heldFor(s.queue, dataDir, failed)) !== undefined || deliveries.length > failed,
          `the broker holding the message back after failure ${failed}`);
        assert.equal(deliveries.length, failed, `read while the message waits out failure ${failed}'s backoff`);
        held.push(h ?? NaN);
      }
      await receiving;
      assert.deepEqual(deliveries, [1, 2, 3]);
      // 2s then 4s (retryBackoff 2s doubling, capped at retryBackoffMax 4s); read a moment after each failure.
      assert.ok(held[0]! > 0 && held[0]! <= 2000, `held ${held[0]} ms after the first failure`);
      assert.ok(held[1]! > 2000 && held[1]! <= 4000, `held ${held[1]} ms after the second failure`);
      assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
    });
  }

  if (row.claims.deadLetter) {
    test(name('a message failing maxDeliveryCount times is dead-lettered and the next one still flows'), { timeout: 180_000 }, async (t) => {
      const s = await setup(t, row, 3);
      if (!s) return;
      const b = await s.open();
      await b.send(Buffer.from('"poison"'), { kind: 'poison' });
      await b.send(json(2), { kind: 'good' });
      const seen: string[] = [];
      let good = 0;
      await receiveUntil(b, async (m) => {
        seen.push(`${m.metadata.kind}:${m.deliveryCount}`);
        if (m.metadata.kind === 'good') return (good++, true);
        return false;
      }, () => good === 1 && seen.filter((x) => x.startsWith('poison')).length === 3);
      assert.deepEqual(seen.filter((x) => x.startsWith('poison')), ['poison:1', 'poison:2', 'poison:3']);
      await until(async () => (await b.depth()).deadLettered === 1, 'dead letter counted');
      assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
      assert.ok(hasDeadLetters(b), 'the backend offers deadLetters()');
      const dead = await b.deadLetters(10);
      assert.equal(dead.length, 1);
      assert.equal(dead[0]?.data.toString(), '"poison"');
      assert.ok((dead[0]?.reason ?? '').length > 0, 'a dead letter says why');
      assert.equal((await receiveFor(b, 300)).length, 0);
    });
  }

  test(name('every message handled successfully is delivered exactly once, with 4 handlers at a time'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    const total = 60;
    for (let i = 0; i < total; i++) await b.send(json(i), {});
    const counts = new Map<string, number>();
    await receiveUntil(b, async (m) => {
      counts.set(m.data.toString(), (counts.get(m.data.toString()) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 1));
      return true;
    }, () => counts.size === total, 4);
    assert.equal(counts.size, total);
    assert.deepEqual([...counts.values()].filter((c) => c !== 1), []);
    assert.equal((await receiveFor(b, 300)).length, 0);
  });

  if (row.claims.fifo) {
    test(name('one receiver at a time gets messages in send order'), { timeout: 180_000 }, async (t) => {
      const s = await setup(t, row);
      if (!s) return;
      const b = await s.open();
      for (let i = 0; i < 25; i++) await b.send(json(i), {});
      const order: number[] = [];
      await receiveUntil(b, async (m) => (order.push((JSON.parse(m.data.toString()) as { n: number }).n), true), () => order.length === 25);
      assert.deepEqual(order, Array.from({ length: 25 }, (_, i) => i));
    });
  }

  test(name('depth counts ready messages, and in-flight ones where claimed'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    for (let i = 0; i < 5; i++) await b.send(json(i), {});
    await until(async () => (await b.depth()).ready === 5, 'five ready');
    assert.deepEqual(await b.depth(), { ready: 5, inFlight: 0, deadLettered: 0 });
    const held = gate();
    let inHandler = 0;
    const ac = new AbortController();
    const receiving = b.receive(async () => {
      inHandler++;
      await held.wait;
      return true;
    }, { concurrency: 2, signal: ac.signal });
    await until(() => inHandler === 2, 'two messages in handlers');
    if (row.claims.depthInFlight) {
      await until(async () => (await b.depth()).inFlight === 2, 'two in flight');
      assert.deepEqual(await b.depth(), { ready: 3, inFlight: 2, deadLettered: 0 });
    } else {
      assert.equal((await b.depth()).ready, 3);
    }
    ac.abort();
    held.open();
    await receiving;
    assert.deepEqual(await b.depth(), { ready: 3, inFlight: 0, deadLettered: 0 });
  });

  test(name('two receivers on one queue share the work, nothing twice'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const a = await s.open();
    const b = await s.open();
    const total = 40;
    for (let i = 0; i < total; i++) await a.send(json(i), {});
    const byReceiver = { a: 0, b: 0 };
    const seen = new Map<string, number>();
    const handler = (who: 'a' | 'b') => async (m: QueueMessage): Promise<boolean> => {
      byReceiver[who]++;
      seen.set(m.data.toString(), (seen.get(m.data.toString()) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 5));
      return true;
    };
    await Promise.all([
      receiveUntil(a, handler('a'), () => seen.size === total),
      receiveUntil(b, handler('b'), () => seen.size === total),
    ]);
    assert.equal(seen.size, total);
    assert.deepEqual([...seen.values()].filter((c) => c !== 1), []);
    assert.ok(byReceiver.a > 0 && byReceiver.b > 0, `both receivers got work (a ${byReceiver.a}, b ${byReceiver.b})`);
  });

  if (row.dropConnection) {
    const drop = row.dropConnection;
    test(name('a dropped broker connection is survived with nothing lost'), { timeout: 180_000 }, async (t) => {
      const s = await setup(t, row);
      if (!s) return;
      const b = await s.open();
      for (let i = 0; i < 10; i++) await b.send(json(i), {});
      const seen = new Set<string>();
      let dropped = false;
      const ac = new AbortController();
      const receiving = b.receive(async (m) => {
        seen.add(m.data.toString());
        return true;
      }, { concurrency: 1, signal: ac.signal });
      await until(() => seen.size >= 3, 'first messages received');
      await drop(s.queue);
      dropped = true;
      // Sends right after the drop may meet the broken connection: retried as a producer would after an error.
      for (let i = 10; i < 20; i++) {
        await until(async () => b.send(json(i), {}).then(() => true, () => false), `send ${i} after the drop`);
      }
      await until(() => seen.size === 20, `all 20 messages received after the drop (have ${seen.size})`);
      ac.abort();
      await receiving.catch(() => undefined);
      assert.ok(dropped);
      assert.equal(seen.size, 20);
    });
  }

  test(name('receiving at concurrency 1 keeps nothing per message: no promise or abort listener piles up'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    const total = 1500;
    const warmup = 300;
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < total) {
        next += 1;
        await b.send(json(next), {});
      }
    }));
    const ac = new AbortController();
    const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS * 2);
    let atWarmup = 0;
    let atEnd = 0;
    let listeners = 0;
    let seen = 0;
    try {
      await b.receive(async () => {
        seen += 1;
        listeners = Math.max(listeners, getEventListeners(ac.signal, 'abort').length);
        if (seen === warmup) atWarmup = await livePromises();
        if (seen === total) {
          atEnd = await livePromises();
          ac.abort();
        }
        return true;
      }, { concurrency: 1, signal: ac.signal });
    } finally {
      clearTimeout(giveUp);
    }
    assert.equal(seen, total);
    const kept = atEnd - atWarmup;
    assert.ok(kept < (total - warmup) / 10, `${kept} more promises alive after ${total - warmup} more messages (${atWarmup} → ${atEnd})`);
    assert.ok(listeners <= 4, `${listeners} abort listeners on the receive signal at once`);
  });

  test(name('close twice is harmless'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const b = await s.open();
    await b.send(json(1), {});
    await b.close();
    await b.close();
  });

  test(name('aborting receive finishes the work in handlers: nothing lost, nothing twice'), { timeout: 180_000 }, async (t) => {
    const s = await setup(t, row);
    if (!s) return;
    const first = await s.open();
    const total = 8;
    for (let i = 0; i < total; i++) await first.send(json(i), {});
    const held = gate();
    const done: string[] = [];
    let inHandler = 0;
    const ac = new AbortController();
    let settled = false;
    const receiving = first.receive(async (m) => {
      inHandler++;
      await held.wait;
      done.push(m.data.toString());
      return true;
    }, { concurrency: 3, signal: ac.signal }).then(() => (settled = true));
    await until(() => inHandler === 3, 'three in handlers');
    ac.abort();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, 'receive waits for the handlers still working');
    held.open();
    await receiving;
    assert.equal(done.length, 3);
    await first.close();

    const second = await s.open();
    const rest: string[] = [];
    await receiveUntil(second, async (m) => (rest.push(m.data.toString()), true), () => rest.length === total - 3, 2);
    assert.equal(rest.length, total - 3);
    assert.deepEqual(new Set([...done, ...rest]).size, total, 'every message once');
    assert.equal((await receiveFor(second, 300)).length, 0);
  });
}
