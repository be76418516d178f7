/**
 * The supervisor's dead-letter API next to /status, over the embedded queue: what the dashboard and `qscale dlq`
 * get, and the 400 / 404 a bad call gets, each with a code and the field named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createBackend } from '../../src/backends/registry.js';
import { startControlServer } from '../../src/supervisor/control.js';
import type { SystemStatus } from '../../src/supervisor/state.js';
import { DeadLetterService } from '../../src/dlq/service.js';
import type { ActionResult, DeadLetterView, DlqListing } from '../../src/dlq/view.js';
import { bindingsOf, depth, fakeBinding, plainBackend, poison, quiet, send, silentBackend, systemFolder } from './support.js';

async function server() {
  const sys = systemFolder({ orders: 'orders-api', payments: 'payments-api' });
  const real = await bindingsOf(sys.folder);
  const legacy = fakeBinding('legacy', 'bindings.rabbitmq');
  const stuck = fakeBinding('stuck', 'bindings.nats');
  const svc = new DeadLetterService([...real, legacy, stuck], {
    embedded: false,
    dataDir: sys.dataDir,
    logger: quiet,
    opTimeoutMs: 300,
    createBackend: (b, ctx) => (b === legacy ? plainBackend(b.name, b.type) : b === stuck ? silentBackend(b.name, b.type) : createBackend(b.component, ctx, { embedded: false })),
  });
  const control = await startControlServer(async () => ({}) as SystemStatus, 0, undefined, svc);
  // The fake broker that does not answer holds no socket: this stands in for one.
  const socketLike = setInterval(() => undefined, 1000);
  const call = async (method: 'GET' | 'POST', path: string, body?: string | object, headers: Record<string, string> = {}) => {
    const res = await request(`${control.url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown> };
  };
  return {
    ...sys,
    call,
    binding: (name: string) => real.find((b) => b.name === name)!,
    close: async () => {
      clearInterval(socketLike);
      await control.server.close();
      await svc.close();
    },
  };
}

test('GET /dlq - every binding: its dead letters, or its own error (not offered, no answer); never a 500', { timeout: 60_000 }, async () => {
  const s = await server();
  try {
    await poison(s.binding('orders'), s.dataDir, ['{"order":1}'], { kind: 'k' });
    const r = await s.call('GET', '/dlq');
    assert.equal(r.status, 200);
    const { bindings } = r.json as unknown as DlqListing;
    const by = Object.fromEntries(bindings.map((b) => [b.binding, b]));
    assert.deepEqual(bindings.map((b) => b.binding), ['orders', 'payments', 'legacy', 'stuck']);
    const [d] = by.orders!.deadLetters;
    assert.equal(d?.body, '{"order":1}');
    assert.match(d?.reason ?? '', /app answered 500/);
    assert.equal(typeof d?.deadLetteredAt, 'string');
    assert.deepEqual(by.payments!.deadLetters, []);
    assert.equal(by.legacy!.error?.code, 'ERR_DLQ_UNSUPPORTED');
    assert.match(by.legacy!.error?.message ?? '', /dead letters of binding legacy \(bindings\.rabbitmq\) cannot be browsed/);
    assert.equal(by.stuck!.error?.code, 'ERR_DLQ_BROKER');

    const one = await s.call('GET', '/dlq?binding=orders&limit=0');
    assert.equal(one.status, 200);
    assert.deepEqual((one.json as unknown as DlqListing).bindings.map((b) => [b.binding, b.deadLetters.length, b.total]), [['orders', 0, 1]]);
  } finally {
    await s.close();
  }
});

test('GET /dlq/{binding}/{id} - one dead letter in full; an unknown id or binding is a 404 with its code', { timeout: 60_000 }, async () => {
  const s = await server();
  try {
    await poison(s.binding('payments'), s.dataDir, ['{"pay":2}'], { 'x-trace': 'abc' });
    const [d] = ((await s.call('GET', '/dlq?binding=payments')).json as unknown as DlqListing).bindings[0]!.deadLetters;
    assert.ok(d);
    const shown = await s.call('GET', `/dlq/payments/${encodeURIComponent(d.id)}`);
    assert.equal(shown.status, 200);
    const v = shown.json as unknown as DeadLetterView;
    assert.deepEqual([v.id, v.body, v.metadata['x-trace'], v.binding, v.queue], [d.id, '{"pay":2}', 'abc', 'payments', 'payments-api']);
    const noId = await s.call('GET', `/dlq/payments/nope-${d.id}`);
    assert.deepEqual([noId.status, noId.json.errorCode], [404, 'ERR_DLQ_NOT_FOUND']);
    const noBinding = await s.call('GET', `/dlq/nope/${d.id}`);
    assert.deepEqual([noBinding.status, noBinding.json.errorCode], [404, 'ERR_DLQ_BINDING']);
    assert.match(String(noBinding.json.message), /no queue binding named 'nope'.*orders, payments, legacy, stuck/);
    const unsupported = await s.call('GET', `/dlq/legacy/${d.id}`);
    assert.deepEqual([unsupported.status, unsupported.json.errorCode], [501, 'ERR_DLQ_UNSUPPORTED']);
  } finally {
    await s.close();
  }
});

test('POST /dlq/requeue and /dlq/purge - by ids or all, in one binding or all; the result per binding', { timeout: 60_000 }, async () => {
  const s = await server();
  try {
    const orders = s.binding('orders');
    await poison(orders, s.dataDir, ['"a"', '"b"', '"c"']);
    const [a, b] = ((await s.call('GET', '/dlq?binding=orders')).json as unknown as DlqListing).bindings[0]!.deadLetters;
    assert.ok(a && b);
    const r1 = await s.call('POST', '/dlq/requeue', { binding: 'orders', ids: [a.id] });
    assert.equal(r1.status, 200);
    assert.deepEqual([(r1.json as unknown as ActionResult).count, (r1.json as unknown as ActionResult).notFound], [1, []]);
    const r2 = await s.call('POST', '/dlq/purge', { ids: [b.id, 'missing'] });
    assert.equal(r2.status, 200);
    assert.deepEqual([(r2.json as unknown as ActionResult).count, (r2.json as unknown as ActionResult).notFound], [1, ['missing']]);
    const r3 = await s.call('POST', '/dlq/requeue', { all: true });
    assert.equal(r3.status, 200, 'one binding that cannot does not fail the others');
    const res = r3.json as unknown as ActionResult;
    assert.deepEqual(res.bindings.map((x) => [x.binding, x.count, x.error?.code]), [['orders', 1, undefined], ['payments', 0, undefined], ['legacy', 0, 'ERR_DLQ_UNSUPPORTED'], ['stuck', 0, 'ERR_DLQ_BROKER']]);
    assert.deepEqual(await depth(orders, s.dataDir), { ready: 2, inFlight: 0, deadLettered: 0 });
    const gone = await s.call('POST', '/dlq/requeue', { ids: ['missing'] });
    assert.deepEqual([gone.status, gone.json.errorCode], [404, 'ERR_DLQ_NOT_FOUND']);
  } finally {
    await s.close();
  }
});

test('POST /queue/purge - the ready messages of the binding named', { timeout: 60_000 }, async () => {
  const s = await server();
  try {
    const orders = s.binding('orders');
    await send(orders, s.dataDir, ['1', '2']);
    const r = await s.call('POST', '/queue/purge', { binding: 'orders' });
    assert.equal(r.status, 200);
    assert.equal((r.json as unknown as ActionResult).count, 2);
    assert.equal((await depth(orders, s.dataDir)).ready, 0);
    const unknown = await s.call('POST', '/queue/purge', { binding: 'nope' });
    assert.deepEqual([unknown.status, unknown.json.errorCode], [404, 'ERR_DLQ_BINDING']);
  } finally {
    await s.close();
  }
});

test('dead-letter API - bad input is a 400 naming the field; a foreign page is refused', { timeout: 60_000 }, async () => {
  const s = await server();
  try {
    const cases: Array<[string, string, string | object | undefined, string]> = [
      ['POST', '/dlq/requeue', {}, 'ids'],
      ['POST', '/dlq/requeue', undefined, 'ids'],
      ['POST', '/dlq/requeue', { ids: 'abc' }, 'ids'],
      ['POST', '/dlq/requeue', { ids: [''] }, 'ids'],
      ['POST', '/dlq/purge', { all: 'yes' }, 'all'],
      ['POST', '/dlq/purge', { all: true, ids: ['1'] }, 'all'],
      ['POST', '/dlq/purge', { binding: 7, all: true }, 'binding'],
      ['POST', '/dlq/purge', { al: true }, 'al'],
      ['POST', '/dlq/purge', '[1,2]', 'body'],
      ['POST', '/dlq/purge', '{"all": tru', 'body'],
      ['POST', '/queue/purge', {}, 'binding'],
      ['GET', '/dlq?limit=abc', undefined, 'limit'],
      ['GET', '/dlq?limit=5000', undefined, 'limit'],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await s.call(method as 'GET' | 'POST', path, body);
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.errorCode, 'ERR_BAD_REQUEST');
      assert.equal(r.json.field, field, `${method} ${path} ${JSON.stringify(body)} names ${field}`);
      assert.match(String(r.json.message), new RegExp(`^${field}: `));
    }
    const foreign = await s.call('POST', '/dlq/purge', { all: true }, { origin: 'http://evil.example' });
    assert.deepEqual([foreign.status, foreign.json.errorCode], [403, 'ERR_FORBIDDEN']);
    // Still serving after all of that.
    assert.equal((await s.call('GET', '/dlq?binding=orders')).status, 200);
  } finally {
    await s.close();
  }
});
