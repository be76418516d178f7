/**
 * What the dashboard's chart is drawn from: the ring of samples, the processed count summed over replicas that come,
 * restart and go, and one sample from a running system's parts (a test's stand-ins here, the real ones in
 * browser.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { History, ProcessedCounter, Sampler, type HistorySample, type SampleSource } from '../../src/supervisor/history.js';
import { LatencyLog, LatencyWindow, percentile, type LatencyFigures } from '../../src/supervisor/latency.js';
import type { ReplicaInfo } from '../../src/supervisor/replica.js';
import type { QueueState } from '../../src/supervisor/state.js';

const NO_LATENCY: LatencyFigures = { p50Ms: null, p95Ms: null, samples: 0, withoutEnqueueTime: [] };

function sample(at: number, processed = 0, name = 'so'): HistorySample {
  return {
    at,
    scaledObjects: [{ name, appId: 'consumer', desired: 1, actual: 1, ready: 1, queueReady: 0, queueInFlight: 0, deadLettered: 0, processed, processedPerSecond: null, latency: NO_LATENCY }],
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
      name: 'so', appId: 'consumer', desired: 3, actual: 2, ready: 1, queueReady: 15, queueInFlight: 2, deadLettered: 1, processed: 4, processedPerSecond: null, latency: NO_LATENCY,
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

/** A sidecar's metadata answer, as far as the latency goes: one input binding's report. */
function sidecarBindings(recorded: number, samplesMs: number[], withoutEnqueueTime = 0, type = 'bindings.qscale.embedded', name = 'message-queue'): unknown {
  return [{ name, type, state: 'reading', latency: { recorded, samplesMs, withoutEnqueueTime } }];
}

describe('history - enqueue → ack latency', { timeout: 30_000 }, () => {
  test('latency - p50 and p95 are nearest-rank: values that were measured', () => {
    const oneToTwenty = Array.from({ length: 20 }, (_, i) => i + 1);
    assert.equal(percentile(oneToTwenty, 50), 10);
    assert.equal(percentile(oneToTwenty, 95), 19);
    assert.equal(percentile([42], 50), 42);
    assert.equal(percentile([42], 95), 42);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 95), 100, '95% of 10 samples is the 10th');
    assert.equal(percentile([], 50), undefined);
  });

  test('latency - a replica\'s log takes each sidecar sample once: a repeated or older answer adds nothing, a new pair counts from 0', () => {
    const log = new LatencyLog();
    log.read(1, sidecarBindings(2, [100, 200]));
    log.read(1, sidecarBindings(2, [100, 200]));
    log.read(1, sidecarBindings(4, [100, 200, 300, 400]));
    log.read(1, sidecarBindings(3, [100, 200, 300]));
    assert.deepEqual(log.since(0), [100, 200, 300, 400]);
    // The sidecar's ring wrapped between two reads: what it still lists is taken.
    log.read(1, sidecarBindings(9, [600, 700, 800, 900]));
    assert.deepEqual(log.since(4), [600, 700, 800, 900]);
    // A new app + sidecar pair: its sidecar counts from 0 again.
    log.read(2, sidecarBindings(1, [50]));
    assert.deepEqual(log.since(8), [50]);
    assert.equal(log.count, 9);
  });

  test('latency - a log counts messages without an enqueue time by broker, and ignores what is not a latency report', () => {
    const log = new LatencyLog();
    log.read(1, sidecarBindings(0, [], 3, 'bindings.rabbitmq'));
    log.read(1, sidecarBindings(0, [], 5, 'bindings.rabbitmq'));
    log.read(1, [{ name: 'old-sidecar', state: 'reading' }, { name: 'bad', latency: { recorded: 2, samplesMs: ['x', 1] } }, null]);
    log.read(1, undefined);
    assert.equal(log.count, 0);
    assert.deepEqual(JSON.parse(JSON.stringify(log)), { samples: 0, withoutEnqueueTime: { 'bindings.rabbitmq': 5 } }, 'in /status: counts, not samples');
  });

  test('latency - the window is the acks seen in the last windowMs: p50/p95 exact, null once it is empty', () => {
    const w = new LatencyWindow(10_000);
    // 1 s: 20 samples 1..20 ms; 6 s: 10 samples of 1000 ms.
    for (let ms = 1; ms <= 20; ms++) w.push(1000, ms);
    assert.deepEqual(w.figures(1000), { p50Ms: 10, p95Ms: 19, samples: 20, withoutEnqueueTime: [] });
    for (let i = 0; i < 10; i++) w.push(6000, 1000);
    // 30 samples: the 15th is 15, the 29th (ceil 28.5) is 1000.
    assert.deepEqual(w.figures(6000), { p50Ms: 15, p95Ms: 1000, samples: 30, withoutEnqueueTime: [] });
    // At 11 s the samples of 1 s have left the window (it is (now − 10 s, now]).
    assert.deepEqual(w.figures(11_000), { p50Ms: 1000, p95Ms: 1000, samples: 10, withoutEnqueueTime: [] });
    assert.deepEqual(w.figures(16_000), { p50Ms: null, p95Ms: null, samples: 0, withoutEnqueueTime: [] });
  });

  test('latency - a window holds at most its cap of the newest samples', () => {
    const w = new LatencyWindow(10_000, 4);
    for (let ms = 1; ms <= 11; ms++) w.push(1000, ms);
    assert.deepEqual(w.figures(1000), { p50Ms: 9, p95Ms: 11, samples: 4, withoutEnqueueTime: [] });
  });

  test('sampler - p50/p95 per sample over every replica of the app, including one that went away, and the brokers without enqueue time', async () => {
    const a = new LatencyLog();
    const b = new LatencyLog();
    const p = new LatencyLog();
    const rep = (name: string, appId: string, latency: LatencyLog): ReplicaInfo => ({
      name, appId, status: 'Running', ready: true, restarts: 0, startedAt: 0, runningSince: 1, appPort: 1, sidecarPort: 2, inFlight: 0, processed: 0, latency, pids: { app: 1, sidecar: 2 },
    });
    let replicas = [rep('c1', 'consumer', a), rep('c2', 'consumer', b), rep('p1', 'producer', p)];
    const source: SampleSource = {
      scaledObjects: () => [{ name: 'so', appId: 'consumer', desired: 2, actual: 2, ready: 2 }],
      queues: async () => [],
      replicas: async () => replicas,
    };
    const s = new Sampler(source, new History());
    a.read(1, sidecarBindings(3, [3000, 1000, 2000]));
    b.read(1, sidecarBindings(2, [4000, 5000]));
    p.read(1, sidecarBindings(1, [999_999]));
    // 1000..5000: p50 is the 3rd, p95 the 5th.
    assert.deepEqual((await s.take(1_000)).scaledObjects[0]!.latency, { p50Ms: 3000, p95Ms: 5000, samples: 5, withoutEnqueueTime: [] });
    // Nothing new: the same figures, nothing counted twice.
    assert.deepEqual((await s.take(2_000)).scaledObjects[0]!.latency, { p50Ms: 3000, p95Ms: 5000, samples: 5, withoutEnqueueTime: [] });
    // c2 goes away (its samples stay in the window); c1 acks 5 more, 2 of them from a broker without enqueue time.
    replicas = [rep('c1', 'consumer', a)];
    a.read(1, [
      { name: 'message-queue', type: 'bindings.qscale.embedded', latency: { recorded: 8, samplesMs: [3000, 1000, 2000, 6000, 7000, 8000, 9000, 10_000], withoutEnqueueTime: 0 } },
      { name: 'jobs', type: 'bindings.rabbitmq', latency: { recorded: 0, samplesMs: [], withoutEnqueueTime: 2 } },
    ]);
    // 1000..10000 in steps of 1000: p50 the 5th, p95 the 10th (ceil 9.5).
    const third = (await s.take(3_000)).scaledObjects[0]!.latency;
    assert.deepEqual(third, { p50Ms: 5000, p95Ms: 10_000, samples: 10, withoutEnqueueTime: [{ broker: 'bindings.rabbitmq', messages: 2 }] });
    // 30 s after the last acks, the window is empty again.
    assert.deepEqual((await s.take(33_000)).scaledObjects[0]!.latency, NO_LATENCY);
  });
});
