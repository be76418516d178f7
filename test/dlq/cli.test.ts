/**
 * `qscale dlq list|show|requeue|purge` and `qscale queue purge` as a user types them, over the embedded queue:
 * straight from the backends, and through a running supervisor's API when one runs for that folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createBackend } from '../../src/backends/registry.js';
import { startControlServer } from '../../src/supervisor/control.js';
import { writeSupervisorFile, type SystemStatus } from '../../src/supervisor/state.js';
import { DeadLetterService } from '../../src/dlq/service.js';
import type { DeadLetterView, DlqListing } from '../../src/dlq/view.js';
import { bindingsOf, depth, fakeBinding, plainBackend, poison, qscale, quiet, send, systemFolder } from './support.js';

/** The JSON a command printed, once it is known to have succeeded (else its own words are the failure). */
function listed(r: { code: number; stdout: string; stderr: string }): DlqListing {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DlqListing;
}

async function poisoned() {
  const sys = systemFolder({ orders: 'orders-cli', payments: 'payments-cli' });
  const bindings = await bindingsOf(sys.folder);
  const b = (name: string) => bindings.find((x) => x.name === name)!;
  await poison(b('orders'), sys.dataDir, ['{"order":1}', '{"order":2}'], { kind: 'poison' });
  await poison(b('payments'), sys.dataDir, ['{"pay":1}']);
  return { ...sys, b, dd: ['--data-dir', sys.dataDir] };
}

test('qscale dlq list - a table of binding, id, deliveries, when and why; --json the same as data', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  const r = await qscale(['dlq', 'list', s.folder, ...s.dd], s.folder);
  assert.equal(r.code, 0, r.stderr);
  const [head, ...rows] = r.stdout.trim().split('\n');
  assert.match(head ?? '', /^BINDING\s+ID\s+DELIVERIES\s+DEAD-LETTERED AT\s+REASON$/);
  assert.equal(rows.length, 3, r.stdout);
  assert.match(rows[0] ?? '', /^orders\s+\S+\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+.*app answered 500: \{"error":"cannot take \{"order":1\}"\}/);
  assert.match(rows[2] ?? '', /^payments\s/);
  assert.equal(r.stderr, '');

  const j = await qscale(['dlq', 'list', s.folder, ...s.dd, '--json', '--binding', 'orders'], s.folder);
  assert.equal(j.code, 0, j.stderr);
  const listing = JSON.parse(j.stdout) as DlqListing;
  assert.deepEqual(listing.bindings.map((b) => [b.binding, b.deadLetters.map((d) => d.body)]), [['orders', ['{"order":1}', '{"order":2}']]]);

  // PATH left out: the folder is the current one.
  const here = await qscale(['dlq', 'list', ...s.dd, '--limit', '1'], s.folder);
  assert.equal(here.code, 0, here.stderr);
  assert.match(here.stdout, /binding orders \(queue orders-cli\): showing 1 of 2 dead letters/);
});

test('qscale dlq show - reason, deliveries, times, metadata and body; an unknown ID is one line, exit 3', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  const listing = listed(await qscale(['dlq', 'list', s.folder, ...s.dd, '--json', '--binding', 'orders'], s.folder));
  const id = listing.bindings[0]!.deadLetters[1]!.id;
  const r = await qscale(['dlq', 'show', s.folder, id, ...s.dd], s.folder);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^id: +${id}$`, 'm'));
  assert.match(r.stdout, /^binding: +orders \(queue orders-cli\)$/m);
  assert.match(r.stdout, /^deliveries: +1$/m);
  assert.match(r.stdout, /^reason: +.*app answered 500: \{"error":"cannot take \{"order":2\}"\}$/m);
  assert.match(r.stdout, /^ {2}kind: poison$/m);
  assert.match(r.stdout, /^body \(11 bytes\):\n\{"order":2\}$/m);
  const j = await qscale(['dlq', 'show', id, ...s.dd, '--json'], s.folder);
  assert.equal((JSON.parse(j.stdout) as DeadLetterView).body, '{"order":2}', 'PATH left out, the first word is the ID');
  const missing = await qscale(['dlq', 'show', s.folder, 'no-such-id', ...s.dd], s.folder);
  assert.equal(missing.code, 3);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /^qscale: no dead letter with id no-such-id .*\n$/);
});

test('qscale dlq requeue|purge - refuse without IDs or --all, with the way out; act on the IDs named or --all', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  for (const action of ['requeue', 'purge']) {
    const r = await qscale(['dlq', action, s.folder, ...s.dd], s.folder);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `qscale: no dead letters named: give dead-letter IDs to ${action} those, or --all to ${action} every one\n`);
  }
  const listing = listed(await qscale(['dlq', 'list', s.folder, ...s.dd, '--json'], s.folder));
  const [o1, o2] = listing.bindings[0]!.deadLetters;
  assert.ok(o1 && o2);
  const p = await qscale(['dlq', 'purge', s.folder, o1.id, ...s.dd], s.folder);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stdout, 'purged 1 dead letter of binding orders (queue orders-cli)\n');
  const q = await qscale(['dlq', 'requeue', s.folder, '--all', ...s.dd], s.folder);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout, 'requeued 2 dead letters: orders 1, payments 1\n');
  assert.deepEqual(await depth(s.b('orders'), s.dataDir), { ready: 1, inFlight: 0, deadLettered: 0 });
  const none = await qscale(['dlq', 'requeue', s.folder, o2.id, ...s.dd], s.folder);
  assert.equal(none.code, 3, 'already requeued');
  assert.match(none.stderr, /^qscale: no dead letter with id /);
  const bad = await qscale(['dlq', 'requeue', s.folder, '--all', '--binding', 'nope', ...s.dd], s.folder);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "qscale: no queue binding named 'nope' in this system (its input bindings: orders, payments)\n");
});

test('qscale queue purge - the ready messages of the binding named (the only one needs no name)', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  await send(s.b('orders'), s.dataDir, ['1', '2', '3']);
  const ask = await qscale(['queue', 'purge', s.folder, ...s.dd], s.folder);
  assert.equal(ask.code, 2);
  assert.equal(ask.stderr, 'qscale: this system has 2 queue bindings (orders, payments): name the one to purge with --binding\n');
  const r = await qscale(['queue', 'purge', s.folder, '--binding', 'orders', ...s.dd], s.folder);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'purged 3 ready messages of binding orders (queue orders-cli)\n');
  assert.deepEqual(await depth(s.b('orders'), s.dataDir), { ready: 0, inFlight: 0, deadLettered: 2 });
});

test('qscale dlq - PATH may be the run file; a broken folder is refused as `qscale up` refuses it', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  const runFile = path.join(s.folder, 'dapr.yaml');
  writeFileSync(runFile, `version: 1\napps:\n  - appID: consumer\n    appDirPath: .\n    command: ["node", "consumer.js"]\n`);
  const r = await qscale(['dlq', 'list', runFile, ...s.dd, '--json'], s.folder);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as DlqListing).bindings.map((b) => [b.binding, b.deadLetters.length]), [['orders', 2], ['payments', 1]]);
  writeFileSync(path.join(s.folder, 'broken.yaml'), 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: broken\nspec:\n  type: bindings.qscale.embedded\n  version: v1\n  metadata: []\n');
  const broken = await qscale(['dlq', 'list', s.folder, ...s.dd], s.folder);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /^qscale: .*broken\.yaml:\d+: component broken .*queueName/);
});

test('qscale dlq - while `qscale up` runs for the folder, its API answers (a binding it cannot browse says so)', { timeout: 120_000 }, async () => {
  const s = await poisoned();
  const real = await bindingsOf(s.folder);
  const legacy = fakeBinding('legacy', 'bindings.rabbitmq');
  const svc = new DeadLetterService([...real, legacy], {
    embedded: false, dataDir: s.dataDir, logger: quiet,
    createBackend: (b, ctx) => (b === legacy ? plainBackend(b.name, b.type) : createBackend(b.component, ctx, { embedded: false })),
  });
  let calls = 0;
  const counted = new Proxy(svc, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const control = await startControlServer(async () => ({}) as SystemStatus, 0, undefined, counted);
  await writeSupervisorFile(s.dataDir, { pid: process.pid, controlUrl: control.url, producerUrl: undefined, startedAt: Date.now(), folder: s.folder });
  try {
    const r = await qscale(['dlq', 'list', s.folder, ...s.dd], s.folder);
    assert.equal(r.code, 0, 'a backend without dead letters is said, not a failure of the whole list');
    assert.ok(calls > 0, 'went through the supervisor');
    assert.match(r.stdout, /^orders\s/m);
    assert.equal(r.stderr, 'qscale: dead letters of binding legacy (bindings.rabbitmq) cannot be browsed: its backend does not offer list, show, requeue and purge of dead letters yet (they still count in `qscale status`)\n');
    const named = await qscale(['dlq', 'list', s.folder, ...s.dd, '--binding', 'legacy'], s.folder);
    assert.equal(named.code, 3, 'the binding named cannot: exit 3');
    const requeue = await qscale(['dlq', 'requeue', s.folder, '--all', '--binding', 'legacy', ...s.dd], s.folder);
    assert.equal(requeue.code, 3);
    assert.match(requeue.stderr, /^qscale: dead letters of binding legacy \(bindings\.rabbitmq\) cannot be browsed/);
    const listing = listed(await qscale(['dlq', 'list', s.folder, ...s.dd, '--json', '--binding', 'payments'], s.folder));
    const id = listing.bindings[0]!.deadLetters[0]!.id;
    const shown = await qscale(['dlq', 'show', s.folder, id, ...s.dd], s.folder);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^body \(9 bytes\):\n\{"pay":1\}$/m);
    const q = await qscale(['dlq', 'requeue', s.folder, id, ...s.dd], s.folder);
    assert.equal(q.stdout, 'requeued 1 dead letter of binding payments (queue payments-cli)\n', q.stderr);
  } finally {
    await control.server.close();
    await svc.close();
  }
  // Once it stopped (its file left behind, its pid another's), the backends are read directly again.
  await writeSupervisorFile(s.dataDir, { pid: 2 ** 22 + 7, controlUrl: control.url, producerUrl: undefined, startedAt: Date.now(), folder: s.folder });
  const direct = await qscale(['dlq', 'list', s.folder, ...s.dd, '--json'], s.folder);
  assert.equal(direct.code, 0, direct.stderr);
  assert.deepEqual((JSON.parse(direct.stdout) as DlqListing).bindings.map((b) => b.binding), ['orders', 'payments']);
});
