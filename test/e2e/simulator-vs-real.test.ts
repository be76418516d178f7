/**
 * The simulator predicts what `qscale up` does: the same ScaledObject and load, once on the virtual clock and once
 * with real processes. The replica timeline must follow the simulator's within one sync period, and drain times
 * must agree within 10 %.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'undici';
import { MAIN, startUp, tempFolder, writeFiles, runFile } from './harness.js';

const SCALED_OBJECT = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  pollingInterval: 1
  cooldownPeriod: 3
  minReplicaCount: 0
  maxReplicaCount: 5
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          policies:
          - {type: Pods, value: 10, periodSeconds: 1}
        scaleDown:
          stabilizationWindowSeconds: 0
          policies:
          - {type: Percent, value: 100, periodSeconds: 1}
  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      messageCount: "5"
`;

const COMPONENT = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
  - name: connectionString
    value: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=placeholder"
  - name: queueName
    value: msgqueue
`;

interface Row { t: number; queue: number; inFlight: number; desired: number; replicas: number; reason: string }

const MESSAGES = 40;
const WORK = 4000;
const SYNC = 1000;

test('simulate - the replica timeline of qscale up follows the simulator within one sync period, drain times within 10 %', { timeout: 240_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': SCALED_OBJECT, 'dapr.yaml': runFile({ WORK_MS: String(WORK) }) });

  const up = await startUp(folder, ['--embedded', '--hpa-sync-period', `${SYNC}ms`]);
  const real: Array<{ t: number; desired: number }> = [];
  let drainMs = 0;
  try {
    const s0 = await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && s.hpa[0]?.desired === 0, 60_000, 'producer ready, consumer at 0');
    // Measure how long a replica takes to start here, and tell the simulator (it models startup as one number).
    const res = await request(`${s0.producerUrl}/MessageProducer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count: MESSAGES, intervalMilliseconds: 0 }),
    });
    assert.equal(res.statusCode, 200, await res.body.text());
    // The model's "0s:40" has all messages in the queue at t=0: the real clock starts when the producer answers,
    // that is when the last message is stored (the first ones landed a fraction of a second earlier).
    const t0 = Date.now();
    // How long a replica takes to start here (process start → ready), measured, since the simulator models it as
    // one number: readiness seen on each consumer replica's first ready reading.
    const startupMs = new Map<string, number>();
    for (;;) {
      const s = await up.status();
      const now = Date.now();
      const t = now - t0;
      real.push({ t, desired: s.hpa[0]?.desired ?? -1 });
      for (const r of s.replicas) if (r.appId === 'consumer' && r.ready && !startupMs.has(r.name)) startupMs.set(r.name, now - r.startedAt);
      const q = s.queue;
      if (!drainMs && q && q.ready === 0 && q.inFlight === 0 && up.countLines(/Hello World -- Received at/) >= MESSAGES) drainMs = t;
      if (drainMs && (s.hpa[0]?.desired ?? 1) === 0) break;
      if (t > 180_000) assert.fail('the real run did not drain and return to 0 within 180 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(startupMs.size > 0);
    const startup = `${Math.round([...startupMs.values()].reduce((a, b) => a + b, 0) / startupMs.size)}ms`;
    const out = execFileSync(process.execPath, [
      MAIN, 'simulate', folder, '--load', `0s:${MESSAGES}`, '--work', `${WORK}ms`, '--startup', startup,
      '--sync-period', `${SYNC}ms`, '--duration', '5m', '--json',
    ], { encoding: 'utf8' });
    const sim = JSON.parse(out) as { timeline: Row[]; summary: { drainSeconds: number; peakReplicas: number } };
    const realSteps = real.filter((r, i) => i === 0 || real[i - 1]!.desired !== r.desired).map((r) => `${(r.t / 1000).toFixed(1)}s:${r.desired}`);
    const simSteps = sim.timeline.filter((r, i) => i === 0 || sim.timeline[i - 1]!.desired !== r.desired).map((r) => `${r.t}s:${r.desired}`);
    const decisions = (await up.status()).decisions.map((d) => `${((d.at - t0) / 1000).toFixed(1)}s ${d.kind} ${d.from}→${d.to}`);
    const context = `startup ${startup}; real desired ${realSteps.join(' ')}; real decisions ${decisions.join(', ')}; simulated ${simSteps.join(' ')}`;

    // Drain time: within 10 %.
    const simDrain = sim.summary.drainSeconds * 1000;
    const diff = Math.abs(drainMs - simDrain) / simDrain;
    assert.ok(diff <= 0.1, `drain: real ${drainMs} ms vs simulated ${simDrain} ms (${(diff * 100).toFixed(1)} % apart); ${context}`);
    assert.equal(Math.max(...real.map((r) => r.desired)), sim.summary.peakReplicas, 'the same peak');

    // Timeline: every step of the simulator's replica count is reached by the real run within one sync period of
    // its simulated time, and the real run changes its count only within one sync period of a simulated change.
    // (The producer spreads the messages over a fraction of a second where the model has them land at once, so
    // the real run may pass through an intermediate count on the way; the times are what must agree.)
    const simChanges = sim.timeline.filter((r, i) => i > 0 && sim.timeline[i - 1]!.desired !== r.desired).map((r) => ({ t: r.t * 1000, desired: r.desired }));
    if (sim.timeline[0] && sim.timeline[0].desired !== 0) simChanges.unshift({ t: sim.timeline[0].t * 1000, desired: sim.timeline[0].desired });
    // The real changes are the supervisor's decisions, with their own timestamps (status readings lag them).
    const realChanges = (await up.status()).decisions.map((d) => ({ t: d.at - t0, desired: d.to }));
    // The model gives every replica the same start-up time; real replicas started together become ready over a
    // measured spread, which shifts when their messages finish (and so the scale-down steps) by up to that spread.
    const startups = [...startupMs.values()];
    const window = SYNC + (Math.max(...startups) - Math.min(...startups));
    const unmatchedSim = simChanges.filter((c) => !realChanges.some((r) => r.desired === c.desired && Math.abs(r.t - c.t) <= window));
    const unmatchedReal = realChanges.filter((c) => !simChanges.some((sc) => Math.abs(sc.t - c.t) <= window));
    assert.deepEqual(unmatchedSim, [], `simulated steps the real run did not reach within ${window} ms (one sync period + the start-up spread); ${context}`);
    assert.deepEqual(unmatchedReal, [], `real changes with no simulated change within ${window} ms; ${context}`);
  } finally {
    await up.stop();
  }
});
