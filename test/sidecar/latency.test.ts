/**
 * Enqueue → ack latency in the sidecar: each message the app accepts gives one sample (now − the broker's enqueue
 * time), listed under qscale.inputBindings[].latency in GET /v1.0/metadata for the supervisor's dashboard. The ring
 * keeps the last samples with a running count, so a reader takes each sample once.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyRing, type LatencyReport } from '../../src/sidecar/latency.js';
import { requireBroker } from '../support/brokers.js';
import { dropQueue, tableName } from '../backends/postgresql/support.js';
import { call, componentYaml, sidecarFor, startApp, tempDir, waitFor, writeComponents } from './support.js';

describe('sidecar latency - the ring of samples', { timeout: 30_000 }, () => {
  test('latency ring - lists the last samples oldest first, with how many were ever recorded', () => {
    const r = new LatencyRing(3);
    assert.deepEqual(r.report(), { recorded: 0, samplesMs: [], withoutEnqueueTime: 0 });
    for (const [enq, now] of [[1000, 1010], [1000, 1020], [1000, 1030], [1000, 1040], [1000, 1050]] as const) r.acked(enq, now);
    assert.deepEqual(r.report(), { recorded: 5, samplesMs: [30, 40, 50], withoutEnqueueTime: 0 });
  });

  test('latency ring - a reader keeping the count it saw takes every sample once, and knows what it missed', () => {
    const r = new LatencyRing(4);
    let cursor = 0;
    const taken: number[] = [];
    const read = (): number => {
      const rep = r.report();
      const fresh = rep.recorded - cursor;
      if (fresh > 0) taken.push(...rep.samplesMs.slice(rep.samplesMs.length - Math.min(fresh, rep.samplesMs.length)));
      const missed = Math.max(0, fresh - rep.samplesMs.length);
      cursor = rep.recorded;
      return missed;
    };
    r.acked(0, 1);
    r.acked(0, 2);
    assert.equal(read(), 0);
    assert.equal(read(), 0, 'a second read adds nothing');
    for (let ms = 3; ms <= 6; ms++) r.acked(0, ms);
    assert.equal(read(), 0, 'exactly a ring full between reads: nothing lost');
    for (let ms = 7; ms <= 12; ms++) r.acked(0, ms);
    assert.equal(read(), 2, 'the ring wrapped: the 2 oldest are known to be missed');
    assert.deepEqual(taken, [1, 2, 3, 4, 5, 6, 9, 10, 11, 12]);
  });

  test('latency ring - no enqueue time gives no sample but is counted; a broker clock ahead gives 0, not a negative', () => {
    const r = new LatencyRing();
    r.acked(undefined, 5000);
    r.acked(Number.NaN, 5000);
    r.acked(6000, 5000);
    assert.deepEqual(r.report(), { recorded: 1, samplesMs: [0], withoutEnqueueTime: 2 });
    assert.deepEqual(JSON.parse(JSON.stringify({ latency: r })), { latency: r.report() }, 'written into JSON as its report');
  });

  test('latency ring - a size that is not a whole number ≥ 1 is refused by name', () => {
    assert.throws(() => new LatencyRing(0), /latency ring size must be a whole number ≥ 1, got 0/);
  });
});

interface MetaBinding { name: string; type: string; delivered: number; succeeded: number; failed: number; latency: LatencyReport }

/** The brokers whose backend records enqueue time: the embedded queue always, PostgreSQL when it is there. */
const BROKERS: Array<{ name: string; type: string; broker?: 'postgresql'; metadata(queue: string): Record<string, string>; cleanup?(queue: string): Promise<void> }> = [
  { name: 'embedded queue', type: 'bindings.qscale.embedded', metadata: (q) => ({ queueName: q, retryBackoff: '0s' }) },
  {
    name: 'PostgreSQL', type: 'bindings.qscale.postgresql', broker: 'postgresql',
    metadata: (q) => ({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', queueName: q, table: q, pollInterval: '200ms', retryBackoff: '0s' }),
    cleanup: (q) => dropQueue(q),
  },
];

describe('sidecar latency - in GET /v1.0/metadata', { timeout: 180_000 }, () => {
  for (const b of BROKERS) {
    test(`latency - ${b.name}: one sample per message the app accepted, none for a failed delivery`, { timeout: 60_000 }, async (t) => {
      if (b.broker && !(await requireBroker(t, b.broker))) return;
      const dir = tempDir();
      const queue = tableName();
      const HOLD_MS = 300;
      let posts = 0;
      // Each delivery is held HOLD_MS; the very first one is refused (500) and comes back.
      const app = await startApp(async (r) => {
        if (r.method !== 'POST') return 200;
        const first = ++posts === 1;
        await new Promise((res) => setTimeout(res, HOLD_MS));
        return first ? 500 : 200;
      });
      writeComponents(dir, { 'q.yaml': componentYaml('message-queue', b.metadata(queue), b.type) });
      const sc = await sidecarFor(dir, { appPort: app.port });
      try {
        for (let i = 0; i < 4; i++) {
          const sent = await call(sc.port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: { i } }));
          assert.equal(sent.status, 204, sent.text);
        }
        const meta = async (): Promise<MetaBinding> => ((await call(sc.port, 'GET', '/v1.0/metadata')).json() as { qscale: { inputBindings: MetaBinding[] } }).qscale.inputBindings[0]!;
        const done = await waitFor('4 messages acked', async () => {
          const m = await meta();
          return m.succeeded === 4 && m;
        }, 45_000);
        assert.equal(done.type, b.type, 'the binding says which broker its latency comes from');
        assert.equal(done.failed, 1, 'the refused delivery');
        assert.equal(done.latency.recorded, 4, 'one sample per accepted message, none for the refused delivery');
        assert.equal(done.latency.withoutEnqueueTime, 0, `${b.name} gives every message its enqueue time`);
        assert.equal(done.latency.samplesMs.length, 4);
        // A message is in the broker's hands at least while the app holds it: a lower bound, not a speed.
        for (const ms of done.latency.samplesMs) assert.ok(ms >= HOLD_MS - 5, `latency ${ms} ms covers the ${HOLD_MS} ms the app held it`);
        // The refused message was held twice before its ack.
        assert.ok(Math.max(...done.latency.samplesMs) >= 2 * HOLD_MS - 5, `the redelivered message's latency counts from its first enqueue: ${done.latency.samplesMs.join(', ')}`);
      } finally {
        await sc.close();
        await app.close();
        await b.cleanup?.(queue);
      }
    });
  }
});
