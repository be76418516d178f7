/**
 * The real-clock scale loop over a target and triggers the test controls: what it prints when a trigger fails or a
 * scale request fails, what status shows, and that later decisions still apply. Real timers, no wall-clock asserts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { loadScaledObjects } from '../../src/autoscaler/index.js';
import type { Scaler } from '../../src/autoscaler/scaler.js';
import { ScaleLoop, type ScaleTarget } from '../../src/supervisor/scaleloop.js';
import type { DecisionRecord } from '../../src/supervisor/state.js';

function config(extra = '', pollingInterval = 1) {
  const yaml = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker-scaler
spec:
  scaleTargetRef:
    name: worker
  pollingInterval: ${pollingInterval}
  minReplicaCount: 0
  maxReplicaCount: 10
${extra}  triggers:
  - type: rabbitmq
    metadata:
      queueName: jobs
      mode: QueueLength
      value: "5"
`;
  const scaling = loadScaledObjects(parseManifests(yaml, 'so.yaml'), { secrets: () => undefined, env: () => ({}) });
  return scaling.scaledObjects[0]!;
}

/** A trigger whose answer the test sets: a value, an error, or no answer at all. */
class FakeScaler implements Scaler {
  readonly metricName = 's0-rabbitmq-jobs';
  readonly metricType = 'AverageValue' as const;
  readonly target = 5;
  readonly activationTarget = 0;
  readonly describes = 'messages of queue jobs';
  reads = 0;
  answer: { value: number } | { error: string } | 'hang' = { value: 0 };
  onArrival: (() => void) | undefined;
  constructor(arrivals = false) {
    // Without arrivals the loop probes every second at zero, as for a broker that cannot announce work.
    if (!arrivals) (this as Partial<Scaler>).watchArrivals = undefined;
  }
  async metricAndActivity() {
    this.reads++;
    const a = this.answer;
    if (a === 'hang') return new Promise<never>(() => undefined);
    if ('error' in a) throw new Error(a.error);
    return { value: a.value, active: a.value > 0 };
  }
  watchArrivals(cb: () => void): () => void {
    this.onArrival = cb;
    return () => (this.onArrival = undefined);
  }
  async close() {}
}

/** A target that starts replicas at once, or fails the next `failures` requests (after taking the count, as a Deployment does). */
class FakeTarget implements ScaleTarget {
  readonly appId = 'worker';
  desiredReplicas = 0;
  current = 0;
  failures = 0;
  requests: number[] = [];
  get readyCount() {
    return this.current;
  }
  async scaleTo(n: number) {
    this.requests.push(n);
    this.desiredReplicas = n;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('spawn EAGAIN');
    }
    this.current = n;
  }
}

async function until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function harness(opts: { extra?: string; pollingInterval?: number; syncPeriodMs?: number; arrivals?: boolean; readTimeoutMs?: number; instant?: boolean } = {}) {
  const scaler = new FakeScaler(opts.arrivals);
  const target = new FakeTarget();
  const lines: string[] = [];
  const decisions: DecisionRecord[] = [];
  const loop = new ScaleLoop(config(opts.extra, opts.pollingInterval), target, [scaler], {
    syncPeriodMs: opts.syncPeriodMs ?? 200,
    downscaleStabilizationMs: 0,
    instantActivation: opts.instant ?? false,
    record: (d) => decisions.push(d),
    report: (l) => lines.push(l),
    readTimeoutMs: opts.readTimeoutMs,
  });
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  return { scaler, target, lines, decisions, loop, count };
}

describe('scale loop', { timeout: 120_000 }, () => {
  test('scale loop - a failed scale request is printed once, tried again at the next step, and later decisions apply', async () => {
    const h = harness();
    h.target.failures = 2;
    h.scaler.answer = { value: 3 };
    h.loop.start();
    try {
      // 0 → 1 fails twice (the first request and its retry); the retry after that brings it up, with nothing new decided.
      await until(() => h.target.current === 1, 'the failed 0 → 1 applied by a retry');
      assert.equal(h.count(/ScaledObject worker-scaler: scaling worker to 1 replicas failed: spawn EAGAIN; tried again at the next step/), 1, h.lines.join('\n'));
      assert.equal(h.count(/worker scaled to 1 replicas \(the earlier request had failed\)/), 1, h.lines.join('\n'));
      // A later decision still applies.
      h.scaler.answer = { value: 20 };
      await until(() => h.target.current === 4, 'the HPA decision 1 → 4');
      assert.ok(h.decisions.some((d) => d.kind === 'hpa' && d.from === 1 && d.to === 4), JSON.stringify(h.decisions));
      assert.equal(h.count(/replicas failed:/), 1, h.lines.join('\n'));
    } finally {
      await h.loop.stop();
    }
  });

  test('scale loop - a failing trigger: one line per cause naming ScaledObject and trigger, one on recovery; Ready False meanwhile', async () => {
    const h = harness();
    h.scaler.answer = { error: 'connect ECONNREFUSED 127.0.0.1:1' };
    h.loop.start();
    try {
      await until(() => h.scaler.reads >= 4, 'four failed reads');
      assert.equal(h.count(/^ScaledObject worker-scaler trigger 0 \(rabbitmq\): cannot read the metric: connect ECONNREFUSED 127\.0\.0\.1:1; no scaling on it until it reads again .*\(the trigger: so\.yaml:\d+\)$/), 1, h.lines.join('\n'));
      assert.equal(h.lines.length, 1, h.lines.join('\n'));
      let so = h.loop.status();
      assert.equal(so.conditions.ready.status, 'False');
      assert.equal(so.conditions.ready.reason, 'TriggerError');
      assert.match(so.conditions.ready.message, /trigger 0 \(rabbitmq\): connect ECONNREFUSED 127\.0\.0\.1:1/);
      assert.equal(so.triggers[0]!.error, 'connect ECONNREFUSED 127.0.0.1:1');
      assert.match(h.loop.hpaLine().targets, /^<unknown>\/5 \(avg\)$/);

      const seen = h.scaler.reads;
      h.scaler.answer = { error: 'ACCESS_REFUSED' };
      await until(() => h.scaler.reads >= seen + 3, 'three reads with the new cause');
      assert.equal(h.count(/trigger 0 \(rabbitmq\): still cannot read the metric, now: ACCESS_REFUSED$/), 1, h.lines.join('\n'));

      const again = h.scaler.reads;
      h.scaler.answer = { value: 7 };
      await until(() => h.scaler.reads >= again + 3, 'three good reads');
      assert.equal(h.count(/trigger 0 \(rabbitmq\): reads again \(value 7\) after failing for \d+s; scaling on it resumes$/), 1, h.lines.join('\n'));
      assert.equal(h.lines.length, 3, h.lines.join('\n'));
      so = h.loop.status();
      assert.equal(so.conditions.ready.status, 'True');
      assert.equal(so.triggers[0]!.value, 7);
      assert.equal(so.triggers[0]!.error, undefined);
      await until(() => h.target.current >= 1, 'scaling resumed');
    } finally {
      await h.loop.stop();
    }
  });

  test('scale loop - a read that never answers is bounded and printed; stop() still returns', async () => {
    const h = harness({ readTimeoutMs: 200 });
    h.scaler.answer = 'hang';
    h.loop.start();
    await until(() => h.lines.length > 0, 'the timeout line');
    assert.match(h.lines[0]!, /trigger 0 \(rabbitmq\): cannot read the metric: no answer within 200 ms/);
    await h.loop.stop();
  });

  test('scale loop - fallback: past failureThreshold the target goes to fallback.replicas, said once, Fallback True', async () => {
    const h = harness({ extra: '  fallback:\n    failureThreshold: 2\n    replicas: 3\n' });
    h.scaler.answer = { error: 'connect ECONNREFUSED 127.0.0.1:1' };
    h.loop.start();
    try {
      await until(() => h.target.current === 3, 'the fallback replicas');
      assert.equal(h.count(/cannot read the metric: .*after 2 failed reads in a row its fallback of 3 replicas applies/), 1, h.lines.join('\n'));
      assert.equal(h.count(/ScaledObject worker-scaler: fallback on: /), 1, h.lines.join('\n'));
      const so = h.loop.status();
      assert.equal(so.conditions.fallback.status, 'True');
      assert.equal(so.conditions.fallback.reason, 'FallbackExists');
      assert.ok(so.triggers[0]!.failures > 2);
      h.scaler.answer = { value: 0 };
      await until(() => h.count(/fallback off: every trigger reads again/) === 1, 'fallback off');
      assert.equal(h.loop.status().conditions.fallback.status, 'False');
    } finally {
      await h.loop.stop();
    }
  });

  test('scale loop - activation on arrival: the reason states the value read, not that the queue was empty', async () => {
    const h = harness({ pollingInterval: 300, arrivals: true, instant: true });
    h.loop.start();
    try {
      await until(() => h.scaler.reads >= 1 && h.scaler.onArrival !== undefined, 'the first poll');
      h.scaler.answer = { value: 40 };
      h.scaler.onArrival!();
      await until(() => h.decisions.length > 0, 'the activation');
      const reason = h.decisions[0]!.reason;
      assert.match(reason, /^queue 40 > activation 0: 0 → 1 \(read at once: work arrived at 0 replicas, ahead of the 300s pollingInterval\)$/);
      assert.doesNotMatch(reason, /empty/);
    } finally {
      await h.loop.stop();
    }
  });

  test('scale loop - status reads the trigger now, not the value of the last poll', async () => {
    // Neither a poll nor an HPA sync comes again during the test: only the status read can see the new value.
    const h = harness({ pollingInterval: 300, syncPeriodMs: 300_000 });
    h.scaler.answer = { value: 1 };
    h.loop.start();
    try {
      await until(() => h.target.current === 1, 'activation on the first poll');
      h.scaler.answer = { value: 49 };
      await new Promise((r) => setTimeout(r, 1100));
      await h.loop.refresh(1000);
      assert.equal(h.loop.status().triggers[0]!.value, 49);
      assert.equal(h.loop.hpaLine().targets, '49/5 (avg)');
    } finally {
      await h.loop.stop();
    }
  });
});
