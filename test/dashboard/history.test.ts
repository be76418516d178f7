/**
 * What the dashboard's chart is drawn from: the ring of samples, the processed count summed over replicas that come,
 * restart and go, and one sample from a running system's parts (a test's stand-ins here, the real ones in
 * browser.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { History, ProcessedCounter, Sampler, type HistorySample, type SampleSource } from '../../src/supervisor/history.js';
import type { ReplicaInfo } from '../../src/supervisor/replica.js';
import type { QueueState } from '../../src/supervisor/state.js';

function sample(at: number, processed = 0, name = 'so'): HistorySample {
  return {
    at,
    scaledObjects: [{ name, appId: 'consumer', desired: 1, actual: 1, ready: 1, queueReady: 0, queueInFlight: 0, deadLettered: 0, processed, processedPerSecond: null }],
  };
}

describe('history - the ring of samples', { timeout: 30_000 }, () => {
  test('history - keeps the newest `capacity` samples, oldest first, once it wraps', () => {
    const h = new History(3);
    for (let i = 1; i <= 5; i++) h.push(sample(i * 1000));
    assert.equal(h.size, 3);
    assert.deepEqual(h.all().map((s) => s.at), [3000, 4000, 5000]);
    assert.equal(h.latest()?.at, 5000);
  });

  test('history - since(t) gives only the samples after t, so a page polling with its newest "at" gets each once', () => {
    const h = new History(4);
    for (let i = 1; i <= 6; i++) h.push(sample(i * 1000));
    assert.deepEqual(h.since(4000).map((s) => s.at), [5000, 6000]);
    assert.deepEqual(h.since(6000), []);
    assert.deepEqual(h.since(-Infinity).map((s) => s.at), [3000, 4000, 5000, 6000], 'from the start: what the ring still holds');
  });

  test('history - rate is messages processed over the window, from the sample at or before its start', () => {
    const h = new History(100);
    // 2 messages a second for 20 s, then nothing for 10 s.
    for (let t = 0; t <= 20; t++) h.push(sample(t * 1000, t * 2));
    const busy = h.rate('so', 20_000, 10_000);
    assert.deepEqual(busy, { perSecond: 2, overMs: 10_000 });
    // Then nothing: half the window idle is half the rate, a whole idle window is 0.
    for (let t = 21; t <= 25; t++) h.push(sample(t * 1000, 40));
    assert.deepEqual(h.rate('so', 25_000, 10_000), { perSecond: 1, overMs: 10_000 });
    for (let t = 26; t <= 30; t++) h.push(sample(t * 1000, 40));
    assert.deepEqual(h.rate('so', 30_000, 10_000), { perSecond: 0, overMs: 10_000 });
  });

  test('history - rate is unknown with one sample, or for a ScaledObject it never sampled', () => {
    const h = new History(10);
    assert.equal(h.rate('so', 0), undefined);
    h.push(sample(1000, 5));
    assert.equal(h.rate('so', 1000), undefined);
    h.push(sample(2000, 6));
    assert.equal(h.rate('other', 2000), undefined);
    assert.deepEqual(h.rate('so', 2000), { perSecond: 1, overMs: 1000 });
  });

  test('history - a capacity that is not a whole number ≥ 1 is refused by name', () => {
    assert.throws(() => new History(0), /history capacity must be a whole number ≥ 1, got 0/);
  });
});

type Rep = Pick<ReplicaInfo, 'name' | 'runningSince' | 'processed'>;

describe('history - messages processed across replicas', { timeout: 30_000 }, () => {
  test('processed - adds what each replica gained since the last reading', () => {
    const c = new ProcessedCounter();
    assert.equal(c.observe([{ name: 'a', runningSince: 1, processed: 3 }, { name: 'b', runningSince: 1, processed: 2 }]), 5);
    assert.equal(c.observe([{ name: 'a', runningSince: 1, processed: 4 }, { name: 'b', runningSince: 1, processed: 2 }]), 6);
  });

  test('processed - a restarted replica (new app + sidecar pair) counts from 0 again without losing the total', () => {
    const c = new ProcessedCounter();
    c.observe([{ name: 'a', runningSince: 1, processed: 10 }]);
    // Between pairs: nothing runs, nothing changes.
    assert.equal(c.observe([{ name: 'a', runningSince: undefined, processed: 10 }]), 10);
    // The new pair acked 3 before the first reading: all 3 count.
    assert.equal(c.observe([{ name: 'a', runningSince: 2, processed: 3 }]), 13);
    assert.equal(c.observe([{ name: 'a', runningSince: 2, processed: 5 }]), 15);
  });

  test('processed - a replica that went away keeps what it processed in the total; a new one adds to it', () => {
    const c = new ProcessedCounter();
    c.observe([{ name: 'a', runningSince: 1, processed: 7 }]);
    assert.equal(c.observe([]), 7);
    const reps: Rep[] = [{ name: 'b', runningSince: 5, processed: 1 }];
    assert.equal(c.observe(reps), 8);
  });
});

describe('history - one sample of a system', { timeout: 30_000 }, () => {
  const replica = (name: string, appId: string, processed: number): ReplicaInfo => ({
    name, appId, status: 'Running', ready: true, restarts: 0, startedAt: 0, runningSince: 1, appPort: 1, sidecarPort: 2, inFlight: 0, processed, pids: { app: 1, sidecar: 2 },
  });
  const queue = (ready: number, inFlight: number, deadLettered: number, error?: string): QueueState => ({ binding: 'b', queue: 'q', ready, inFlight, deadLettered, ...(error ? { error } : {}) });

  test('sampler - sums the app\'s input queues and its replicas\' processed counts, per ScaledObject', async () => {
    let processed = 4;
    const source: SampleSource = {
      scaledObjects: () => [{ name: 'so', appId: 'consumer', desired: 3, actual: 2, ready: 1 }],
      queues: async () => [{ appId: 'consumer', state: queue(10, 2, 1) }, { appId: 'consumer', state: queue(5, 0, 0) }, { appId: 'other', state: queue(99, 99, 99) }],
      replicas: async () => [replica('c1', 'consumer', processed), replica('p1', 'producer', 50)],
    };
    const h = new History();
    const s = new Sampler(source, h);
    const first = await s.take(1000);
    assert.deepEqual(first.scaledObjects[0], {
      name: 'so', appId: 'consumer', desired: 3, actual: 2, ready: 1, queueReady: 15, queueInFlight: 2, deadLettered: 1, processed: 4, processedPerSecond: null,
    });
    processed = 10;
    const second = await s.take(3000);
    assert.equal(second.scaledObjects[0]!.processed, 10);
    assert.equal(second.scaledObjects[0]!.processedPerSecond, 3, '6 messages in 2 s');
    assert.equal(h.size, 2);
  });

  test('sampler - a queue whose depth cannot be read leaves a gap (null), not a zero', async () => {
    const source: SampleSource = {
      scaledObjects: () => [{ name: 'so', appId: 'consumer', desired: 1, actual: 1, ready: 1 }],
      queues: async () => [{ appId: 'consumer', state: queue(0, 0, 0, 'connect ECONNREFUSED 127.0.0.1:5672') }],
      replicas: async () => [],
    };
    const s = await new Sampler(source, new History()).take(1000);
    assert.equal(s.scaledObjects[0]!.queueReady, null);
    assert.equal(s.scaledObjects[0]!.queueInFlight, null);
    assert.equal(s.scaledObjects[0]!.deadLettered, null);
  });

  test('sampler - start takes samples on its own until stopped, and a failing read does not stop it', async () => {
    let calls = 0;
    const source: SampleSource = {
      scaledObjects: () => [],
      queues: async () => {
        calls += 1;
        if (calls === 1) throw new Error('broker blip');
        return [];
      },
      replicas: async () => [],
    };
    const h = new History();
    const s = new Sampler(source, h, 10);
    s.start();
    while (h.size < 3) await new Promise((r) => setTimeout(r, 10));
    await s.stop();
    const n = h.size;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.size, n, 'no sample after stop');
    assert.ok(calls >= 4, 'the failed read was followed by more');
  });
});
