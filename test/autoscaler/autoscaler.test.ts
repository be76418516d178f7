import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { parseScaledObjects } from '../../src/autoscaler/scaledobject.js';
import { createAutoscaler } from '../../src/autoscaler/autoscaler.js';
import type { Decision } from '../../src/autoscaler/state.js';
import { SEED_SCALEDOBJECT } from './fixtures.js';

const T0 = 1_700_000_000_000;

test('autoscaler - the seed ScaledObject: activation, HPA scale-out, hold, cooldown to 0', { timeout: 60_000 }, () => {
  const spec = parseScaledObjects(parseManifests(SEED_SCALEDOBJECT, 'consumer-scaling.yaml')).scaledObjects[0]!;
  const a = createAutoscaler(spec, { triggers: [{ label: 'queue', metricType: 'AverageValue', target: 5, activationTarget: 0 }] }, T0);
  const decisions: Decision[] = [];
  let state = a.initial;
  const at = (sec: number) => T0 + sec * 1000;
  const poll = (sec: number, value: number) => {
    const r = a.poll(state, [{ value }], at(sec));
    state = r.state;
    if (r.decision) decisions.push(r.decision);
  };
  const sync = (sec: number) => {
    const r = a.sync(state, at(sec));
    state = r.state;
    if (r.decision) decisions.push(r.decision);
  };
  poll(0, 50);
  sync(15);
  poll(30, 40);
  sync(30);
  poll(60, 0);
  sync(60);
  for (let t = 75; t <= 400; t += 15) {
    if (t % 30 === 0) poll(t, 0);
    sync(t);
  }
  assert.deepEqual(
    decisions.map((d) => [d.kind, d.from, d.to, (d.at - T0) / 1000]),
    [['keda', 0, 1, 0], ['hpa', 1, 4, 15], ['hpa', 4, 8, 30], ['hpa', 8, 10, 60], ['hpa', 10, 8, 330], ['hpa', 8, 1, 345], ['keda', 1, 0, 360]],
  );
  assert.equal(decisions[0]!.reason, 'queue 50 > activation 0: 0 → 1');
  assert.equal(decisions[1]!.reason, 'ceil(50/5)=10, limited to 4 by the scale-up limit max(2×1, 4): 1 → 4');
  // The legacy path keeps the highest recommendation of 300 s, so the 10 wanted at 15 s is reached at 60 s.
  assert.equal(decisions[3]!.reason, 'ceil(0/5)=0, held at 10 by the highest recommendation of the last 300s (downscale stabilization): 8 → 10');
  assert.equal(decisions[6]!.reason, 'inactive for 330s (cooldownPeriod 300s): 1 → 0');
  assert.equal(a.pollingIntervalSeconds, 30);
  assert.deepEqual(a.nextDue(state), { poll: at(390 + 30), sync: at(390 + 15) });
});

test('autoscaler - sync with fresh readings uses them instead of the last poll', { timeout: 60_000 }, () => {
  const spec = parseScaledObjects(parseManifests(SEED_SCALEDOBJECT, 'x.yaml')).scaledObjects[0]!;
  const a = createAutoscaler(spec, { triggers: [{ label: 'queue', metricType: 'AverageValue', target: 5, activationTarget: 0 }], initialReplicas: 2 }, T0);
  const r = a.sync(a.initial, T0 + 1000, { observations: [{ value: 20 }] });
  assert.equal(r.desiredReplicas, 4);
});
