/**
 * The dead-letter module over the embedded queue: what `qscale dlq` and GET /dlq show and do, binding by binding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/backends/registry.js';
import { DeadLetterService } from '../../src/dlq/service.js';
import { DlqError } from '../../src/dlq/view.js';
import { bindingsOf, depth, fakeBinding, plainBackend, poison, quiet, send, silentBackend, systemFolder } from './support.js';

async function service(bindings: Record<string, string>, extra: Array<{ binding: ReturnType<typeof fakeBinding>; backend: 'plain' | 'silent' }> = [], opTimeoutMs?: number) {
  const sys = systemFolder(bindings);
  const real = await bindingsOf(sys.folder);
  const fakes = new Map(extra.map((e) => [e.binding.name, e.backend]));
  const svc = new DeadLetterService([...real, ...extra.map((e) => e.binding)], {
    embedded: false,
    dataDir: sys.dataDir,
    logger: quiet,
    opTimeoutMs,
    createBackend: (b, ctx) => {
      const kind = fakes.get(b.name);
      if (kind === 'plain') return plainBackend(b.name, b.type);
      if (kind === 'silent') return silentBackend(b.name, b.type);
      return createBackend(b.component, ctx, { embedded: false });
    },
  });
  const binding = (name: string) => real.find((b) => b.name === name)!;
  return { ...sys, svc, binding };
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DlqError, `a DlqError, not ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('dlq list - each dead letter with its binding, queue, reason, deliveries, times, metadata and body', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-q', payments: 'payments-q' });
  try {
    const before = Date.now();
    await poison(s.binding('orders'), s.dataDir, ['{"order":7}'], { kind: 'poison' });
    await poison(s.binding('payments'), s.dataDir, [Buffer.from([0xff, 0x00, 0xfe])]);
    const { bindings } = await s.svc.list({ limit: 10 });
    assert.deepEqual(bindings.map((b) => [b.binding, b.queue, b.supported, b.deadLetters.length, b.total, b.more, b.error]), [
      ['orders', 'orders-q', true, 1, 1, false, undefined],
      ['payments', 'payments-q', true, 1, 1, false, undefined],
    ]);
    const [order] = bindings[0]!.deadLetters;
    assert.ok(order);
    assert.equal(order.binding, 'orders');
    assert.equal(order.queue, 'orders-q');
    assert.equal(order.body, '{"order":7}');
    assert.equal(order.encoding, 'utf8');
    assert.equal(order.bytes, 11);
    assert.equal(order.metadata.kind, 'poison');
    assert.equal(order.deliveryCount, 1);
    assert.match(order.reason, /app answered 500: \{"error":"cannot take \{"order":7\}"\}/);
    for (const t of [order.enqueuedAt, order.deadLetteredAt]) {
      assert.match(t ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'an ISO time');
      assert.ok(Date.parse(t!) >= before - 60_000, 'this test\'s time');
    }
    const [bin] = bindings[1]!.deadLetters;
    assert.equal(bin?.encoding, 'base64', 'a body that is not UTF-8 comes as base64');
    assert.deepEqual(Buffer.from(bin?.body ?? '', 'base64'), Buffer.from([0xff, 0x00, 0xfe]));

    const one = await s.svc.list({ binding: 'payments', limit: 10 });
    assert.deepEqual(one.bindings.map((b) => b.binding), ['payments']);
  } finally {
    await s.svc.close();
  }
});

test('dlq list - a limit shows the oldest and says there are more', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-limit' });
  try {
    await poison(s.binding('orders'), s.dataDir, ['"a"', '"b"', '"c"']);
    const { bindings: [b] } = await s.svc.list({ limit: 2 });
    assert.deepEqual(b?.deadLetters.map((d) => d.body), ['"a"', '"b"']);
    assert.equal(b?.more, true);
    assert.equal(b?.total, 3);
  } finally {
    await s.svc.close();
  }
});

test('dlq - a binding whose backend offers no dead letters, or whose broker does not answer, shows its own error; the others answer', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-mixed' }, [
    { binding: fakeBinding('legacy', 'bindings.rabbitmq'), backend: 'plain' },
    { binding: fakeBinding('stuck', 'bindings.redis'), backend: 'silent' },
  ], 300);
  // A broker that does not answer holds a socket open; the fake holds this instead, so the bound is what ends the wait.
  const socketLike = setInterval(() => undefined, 1000);
  try {
    await poison(s.binding('orders'), s.dataDir, ['"x"']);
    const { bindings } = await s.svc.list({ limit: 10 });
    const by = Object.fromEntries(bindings.map((b) => [b.binding, b]));
    assert.equal(by.orders?.deadLetters.length, 1);
    assert.equal(by.legacy?.supported, false);
    assert.equal(by.legacy?.error?.code, 'ERR_DLQ_UNSUPPORTED');
    assert.match(by.legacy?.error?.message ?? '', /^dead letters of binding legacy \(bindings\.rabbitmq\) cannot be browsed: /);
    assert.equal(by.stuck?.supported, true);
    assert.equal(by.stuck?.error?.code, 'ERR_DLQ_BROKER');
    assert.match(by.stuck?.error?.message ?? '', /binding stuck \(bindings\.redis\), queue stuck: cannot read its dead letters: no answer within \d+ ms/);

    // requeue --all over every binding: the one that works does; the others say why.
    const r = await s.svc.requeue({ all: true });
    assert.equal(r.count, 1);
    assert.deepEqual(r.bindings.map((b) => [b.binding, b.count, b.error?.code]), [['orders', 1, undefined], ['legacy', 0, 'ERR_DLQ_UNSUPPORTED'], ['stuck', 0, 'ERR_DLQ_BROKER']]);
    // Named outright, the binding's own error is the answer.
    await rejects(s.svc.purge({ binding: 'legacy', all: true }), 'ERR_DLQ_UNSUPPORTED', /binding legacy \(bindings\.rabbitmq\) cannot be browsed/);
    await rejects(s.svc.purgeQueue('legacy'), 'ERR_DLQ_UNSUPPORTED', /^the queue of binding legacy \(bindings\.rabbitmq\) cannot be purged/);
  } finally {
    clearInterval(socketLike);
    await s.svc.close();
  }
});

test('dlq show - by id, in any binding or the one named; an unknown id or binding is refused by name', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-show', payments: 'payments-show' });
  try {
    await poison(s.binding('payments'), s.dataDir, ['{"pay":1}'], { 'x-trace': 't-1' });
    const [d] = (await s.svc.list({ binding: 'payments', limit: 1 })).bindings[0]!.deadLetters;
    assert.ok(d);
    const shown = await s.svc.show(d.id);
    assert.deepEqual(shown, d);
    assert.deepEqual(await s.svc.show(d.id, 'payments'), d);
    await rejects(s.svc.show(`${d.id}9999`), 'ERR_DLQ_NOT_FOUND', /no dead letter with id \S+9999/);
    await rejects(s.svc.show(d.id, 'nope'), 'ERR_DLQ_BINDING', /no queue binding named 'nope' in this system \(its input bindings: orders, payments\)/);
  } finally {
    await s.svc.close();
  }
});

test('dlq requeue - by id sends that one back with a fresh delivery count; all the rest; unknown ids are reported', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-requeue' });
  try {
    const orders = s.binding('orders');
    await poison(orders, s.dataDir, ['"a"', '"b"', '"c"']);
    const [a, b] = (await s.svc.list({ limit: 10 })).bindings[0]!.deadLetters;
    assert.ok(a && b);
    const one = await s.svc.requeue({ ids: [a.id, 'no-such-id'] });
    assert.equal(one.count, 1);
    assert.deepEqual(one.notFound, ['no-such-id']);
    assert.deepEqual(await depth(orders, s.dataDir), { ready: 1, inFlight: 0, deadLettered: 2 });
    await rejects(s.svc.requeue({ ids: ['no-such-id'] }), 'ERR_DLQ_NOT_FOUND', /no dead letter with id no-such-id/);
    const purged = await s.svc.purge({ ids: [b.id] });
    assert.equal(purged.count, 1);
    assert.equal((await s.svc.requeue({ binding: 'orders', all: true })).count, 1);
    assert.deepEqual(await depth(orders, s.dataDir), { ready: 2, inFlight: 0, deadLettered: 0 });
    assert.equal((await s.svc.purge({ all: true })).count, 0, 'nothing left to purge');
  } finally {
    await s.svc.close();
  }
});

test('dlq - a requeue or purge that names no dead letters, or names them and says all, is refused', { timeout: 30_000 }, async () => {
  const s = await service({ orders: 'orders-sel' });
  try {
    await rejects(s.svc.requeue({}), 'ERR_DLQ_SELECTION', /no dead letters named: give ids to requeue those, or all: true to requeue every one/);
    await rejects(s.svc.purge({ ids: ['1'], all: true }), 'ERR_DLQ_SELECTION', /both given/);
    await rejects(s.svc.purge({ binding: 'x', all: true }), 'ERR_DLQ_BINDING', /no queue binding named 'x'/);
  } finally {
    await s.svc.close();
  }
});

test('queue purge - deletes the ready messages and leaves the dead letters', { timeout: 60_000 }, async () => {
  const s = await service({ orders: 'orders-purge' });
  try {
    const orders = s.binding('orders');
    await poison(orders, s.dataDir, ['"dead"']);
    await send(orders, s.dataDir, ['1', '2', '3']);
    const r = await s.svc.purgeQueue('orders');
    assert.deepEqual([r.action, r.count, r.bindings.map((b) => b.queue)], ['queue-purge', 3, ['orders-purge']]);
    assert.deepEqual(await depth(orders, s.dataDir), { ready: 0, inFlight: 0, deadLettered: 1 });
  } finally {
    await s.svc.close();
  }
});
