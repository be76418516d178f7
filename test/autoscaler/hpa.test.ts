/**
 * HPA step tables. The cases come from kubernetes pkg/controller/podautoscaler: replica_calculator_test.go
 * (external metrics, AverageValue and Value), horizontal_test.go TestScalingWithRules (policies, events) and
 * TestNormalizeDesiredReplicas (legacy stabilization). Metric values there are milli-units; here, units.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hpaStep, type HpaSpec } from '../../src/autoscaler/hpa.js';
import { initialState, type AutoscalerState, type TriggerTarget } from '../../src/autoscaler/state.js';
import type { ScalingRules, ScaleEvent, Recommendation } from '../../src/autoscaler/behavior.js';

const NOW = 1_000_000_000;

function state(replicas: number, extra: Partial<AutoscalerState> = {}): AutoscalerState {
  return { ...initialState(0, replicas, 1), hpaSeen: true, recommendations: [], ...extra };
}

const avg = (target: number): TriggerTarget => ({ label: 'queue', metricType: 'AverageValue', target, activationTarget: 0 });
const val = (target: number): TriggerTarget => ({ label: 'queue', metricType: 'Value', target, activationTarget: 0 });

function spec(min: number, max: number, behavior?: HpaSpec['behavior']): HpaSpec {
  return { minReplicaCount: min, maxReplicaCount: max, behavior, paused: false, pausedReplicas: undefined };
}

// replica_calculator_test.go, external metrics.
const CALC: Array<[string, TriggerTarget, number, number, number, { replicas?: number; ready?: number }?]> = [
  ['AverageValue 3 replicas, 8.6 at 2.15 each scales up to 4', avg(2.15), 3, 8.6, 4],
  ['AverageValue 5 replicas, 8.6 at 2.867 each scales down to 3', avg(2.867), 5, 8.6, 3],
  ['AverageValue 3 replicas, 8.6 at 2.9 each stays 3 (within tolerance)', avg(2.9), 3, 8.6, 3],
  ['Value 1 replica, 8.6 against 4.4 scales up to 2', val(4.4), 1, 8.6, 2],
  ['Value 5 replicas, 8.6 against 14.334 scales down to 3', val(14.334), 5, 8.6, 3],
  ['Value 3 replicas, 8.6 against 8.888 stays 3 (within tolerance)', val(8.888), 3, 8.6, 3],
  ['Value counts only ready pods: 3 replicas, 1 ready, 8.6 against 4.4 gives 2', val(4.4), 3, 8.6, 2, { ready: 1 }],
];

for (const [name, trigger, current, value, expected, observed] of CALC) {
  test(`hpa - ${name}`, { timeout: 60_000 }, () => {
    const r = hpaStep(spec(1, 100), [trigger], state(current), [{ value }], NOW, undefined, observed);
    assert.equal(r.desiredReplicas, expected, r.note);
  });
}

test('hpa - the reason names the computation: ceil(23/5)=5', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 10), [avg(5)], state(4), [{ value: 23 }], NOW);
  assert.equal(r.decision?.reason, 'ceil(23/5)=5: 4 → 5');
});

test('hpa - within tolerance the reason says so: 5.2/5 (ratio 1.04 ≤ 1.1), keep 5', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 10), [avg(5)], state(5), [{ value: 26 }], NOW);
  assert.equal(r.decision, undefined);
  assert.equal(r.note, 'within tolerance: 5.2/5 (ratio 1.04 ≤ 1.1), keep 5');
});

test('hpa - several triggers: the highest proposal wins', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 100), [avg(5), { ...avg(10), label: 'orders' }], state(2), [{ value: 20 }, { value: 90 }], NOW);
  assert.equal(r.desiredReplicas, 4, 'legacy limit max(2×2, 4) = 4 caps the 9 that orders wants');
  assert.match(r.decision!.reason, /^max\(queue: ceil\(20\/5\)=4, orders: ceil\(90\/10\)=9\)/);
});

test('hpa - at 0 replicas the HPA does nothing (KEDA activates)', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(0, 10), [avg(5)], state(0), [{ value: 100 }], NOW);
  assert.equal(r.desiredReplicas, 0);
  assert.equal(r.decision, undefined);
});

test('hpa - HPA minimum is max(minReplicaCount, 1): an empty queue keeps 1', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(0, 10), [avg(5)], state(3), [{ value: 0 }], NOW);
  assert.equal(r.desiredReplicas, 1);
});

test('hpa - a failing trigger blocks scale-down but not scale-up', { timeout: 60_000 }, () => {
  const two = [avg(5), { ...avg(5), label: 'orders' }];
  const down = hpaStep(spec(1, 10), two, state(4), [{ value: 0 }, { error: 'connection refused' }], NOW);
  assert.equal(down.desiredReplicas, 4);
  assert.match(down.note, /not scaling down while orders: connection refused/);
  const up = hpaStep(spec(1, 10), two, state(4), [{ value: 40 }, { error: 'connection refused' }], NOW);
  assert.equal(up.desiredReplicas, 8);
  const none = hpaStep(spec(1, 10), [avg(5)], state(4), [{ error: 'timeout' }], NOW);
  assert.equal(none.desiredReplicas, 4);
  assert.match(none.note, /metrics unavailable/);
});

test('hpa - above maxReplicaCount goes straight to max', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 5), [avg(5)], state(8), [{ value: 100 }], NOW);
  assert.equal(r.desiredReplicas, 5);
  assert.equal(r.decision?.reason, 'above maxReplicaCount 5: 8 → 5');
});

// Legacy path (behavior unset), horizontal_test.go TestNormalizeDesiredReplicas and the scale-up limit.
const ago = (minutes: number) => NOW - minutes * 60_000;
const LEGACY: Array<[string, Recommendation[], number, number]> = [
  ['empty history: 5 stays 5', [], 5, 5],
  ['stabilize: 4 (2 min ago), 5 (1 min ago), wants 3 → 5', [{ replicas: 4, at: ago(2) }, { replicas: 5, at: ago(1) }], 3, 5],
  ['no stabilize: 1, 2 in the window, wants 3 → 3', [{ replicas: 1, at: ago(2) }, { replicas: 2, at: ago(1) }], 3, 3],
  ['old recommendations (9, 10 min ago) are ignored: wants 3 → 3', [{ replicas: 10, at: ago(10) }, { replicas: 9, at: ago(9) }], 3, 3],
  ['mixed: 10 and 9 too old, 4 and 5 recent, wants 3 → 5', [{ replicas: 10, at: ago(10) }, { replicas: 4, at: ago(1) }, { replicas: 5, at: ago(2) }, { replicas: 9, at: ago(9) }], 3, 5],
];

for (const [name, recs, desired, expected] of LEGACY) {
  test(`hpa - legacy downscale stabilization, ${name}`, { timeout: 60_000 }, () => {
    const r = hpaStep(spec(1, 100), [avg(1)], state(5, { recommendations: recs }), [{ value: desired }], NOW);
    assert.equal(r.desiredReplicas, expected, r.note);
  });
}

test('hpa - legacy scale-up limit: 10 replicas wanting 50 get 20 (max(2×10, 4))', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 1000), [avg(1)], state(10), [{ value: 50 }], NOW);
  assert.equal(r.desiredReplicas, 20);
  assert.equal(r.decision?.reason, 'ceil(50/1)=50, limited to 20 by the scale-up limit max(2×10, 4): 10 → 20');
});

test('hpa - legacy scale-up limit: 1 replica wanting 10 gets 4; maxReplicaCount below that wins', { timeout: 60_000 }, () => {
  assert.equal(hpaStep(spec(1, 10), [avg(5)], state(1), [{ value: 48 }], NOW).desiredReplicas, 4);
  const r = hpaStep(spec(1, 3), [avg(5)], state(1), [{ value: 48 }], NOW);
  assert.equal(r.desiredReplicas, 3);
  assert.match(r.decision!.reason, /limited to 3 by maxReplicaCount/);
});

test('hpa - legacy scale-down is held by the highest recommendation of the last 300 s, then follows', { timeout: 60_000 }, () => {
  let s = state(10);
  let r = hpaStep(spec(1, 10), [avg(5)], s, [{ value: 50 }], NOW);
  s = r.state;
  r = hpaStep(spec(1, 10), [avg(5)], s, [{ value: 0 }], NOW + 15_000);
  assert.equal(r.desiredReplicas, 10);
  assert.match(r.note, /held at 10 by the highest recommendation of the last 300s/);
  r = hpaStep(spec(1, 10), [avg(5)], r.state, [{ value: 0 }], NOW + 301_000);
  assert.equal(r.desiredReplicas, 1);
});

test('hpa - the downscale stabilization window is a parameter (--stabilization)', { timeout: 60_000 }, () => {
  let r = hpaStep(spec(1, 10), [avg(5)], state(10), [{ value: 50 }], NOW);
  r = hpaStep(spec(1, 10), [avg(5)], r.state, [{ value: 0 }], NOW + 61_000, { downscaleStabilizationSeconds: 60, tolerance: 0.1 });
  assert.equal(r.desiredReplicas, 1);
});

// horizontal_test.go TestScalingWithRules: policies and past scale events.
function rules(pods: number, podsPeriod: number, percent: number, percentPeriod: number, window: number): ScalingRules {
  const policies: NonNullable<ScalingRules['policies']> = [];
  if (pods) policies.push({ type: 'Pods', value: pods, periodSeconds: podsPeriod });
  if (percent) policies.push({ type: 'Percent', value: percent, periodSeconds: percentPeriod });
  return { stabilizationWindowSeconds: window, selectPolicy: 'Max', policies };
}
/** Events spread evenly over the last `period` seconds, each in the middle of its slot (as upstream). */
function spread(changes: number[], period: number): ScaleEvent[] {
  const slot = period / changes.length;
  return changes.map((change, i) => ({ change, at: NOW - (period - slot * (i + 1) + slot / 2) * 1000 }));
}

interface RuleCase {
  min: number;
  max: number;
  up?: ScalingRules;
  down?: ScalingRules;
  upEvents?: ScaleEvent[];
  downEvents?: ScaleEvent[];
  current: number;
  desired: number;
  expected: number;
}

const RULES: Array<[string, RuleCase]> = [
  ['desired within range: 5 → 7 (min 3, max 8)', { min: 3, max: 8, current: 5, desired: 7, expected: 7 }],
  ['desired below min: 3 → 1 gives 2 (min 2)', { min: 2, max: 8, current: 3, desired: 1, expected: 2 }],
  ['maxReplicas below the policy limit: 20 → 1000 gives 10', { min: 1, max: 10, current: 20, desired: 1000, expected: 10 }],
  ['desired above max: 100 → 1000 gives 150', { min: 100, max: 150, current: 100, desired: 1000, expected: 150 }],
  ['scale-up policy Percent 1/60s limits 3 → 1000 to 4', { min: 1, max: 2000, up: rules(0, 0, 1, 60, 0), current: 3, desired: 1000, expected: 4 }],
  ['default behavior limits 10 → 50 to 20', { min: 1, max: 1000, current: 10, desired: 50, expected: 20 }],
  ['scale-up Pods 100/60s over Percent 100/60s: 10 → 500 gives 110', { min: 1, max: 1000, up: rules(100, 60, 100, 60, 0), current: 10, desired: 500, expected: 110 }],
  ['scale-up Percent 100/60s over Pods 2/60s: 10 → 500 gives 20', { min: 1, max: 1000, up: rules(2, 60, 100, 60, 0), current: 10, desired: 500, expected: 20 }],
  ['scale-up Pods 100/60s allows 10 → 50 in full', { min: 1, max: 1000, up: rules(100, 60, 0, 0, 0), current: 10, desired: 50, expected: 50 }],
  ['scale-up Percent 10000/60s allows 10 → 50 in full', { min: 1, max: 1000, up: rules(0, 0, 10000, 60, 0), current: 10, desired: 50, expected: 50 }],
  ['scale-up policy Pods 30/60s limits 10 → 50 to 40', { min: 1, max: 1000, up: rules(30, 60, 0, 0, 0), current: 10, desired: 50, expected: 40 }],
  ['scale-up policy Percent 200/60s limits 10 → 50 to 30', { min: 1, max: 1000, up: rules(0, 0, 200, 60, 0), current: 10, desired: 50, expected: 30 }],
  ['scale-down Percent 1/60s over Pods 20/60s: 100 → 2 gives 80', { min: 1, max: 1000, down: rules(20, 60, 1, 60, 300), current: 100, desired: 2, expected: 80 }],
  ['scale-down Pods 2/60s over Percent 1/60s: 100 → 2 gives 98', { min: 1, max: 1000, down: rules(2, 60, 1, 60, 300), current: 100, desired: 2, expected: 98 }],
  ['scale-down Pods 100/60s stops at min 1: 10 → 0 gives 1', { min: 1, max: 1000, down: rules(100, 60, 0, 0, 300), current: 10, desired: 0, expected: 1 }],
  ['scale-down Percent 100/60s stops at min 5: 10 → 2 gives 5', { min: 5, max: 1000, down: rules(0, 0, 100, 60, 300), current: 10, desired: 2, expected: 5 }],
  ['scale-down policy Pods 5/60s limits 10 → 2 to 5', { min: 1, max: 1000, down: rules(5, 60, 0, 0, 300), current: 10, desired: 2, expected: 5 }],
  ['scale-down Percent 50/60s allows 10 → 5', { min: 1, max: 1000, down: rules(0, 0, 50, 60, 300), current: 10, desired: 5, expected: 5 }],
  ['scale-up to max 200 despite events (Pods 300/60s)', { min: 1, max: 200, up: rules(300, 60, 0, 0, 0), upEvents: spread([1, 5, 9], 120), current: 100, desired: 500, expected: 200 }],
  ['scale-up to max 200 despite events (Percent 10000/60s)', { min: 1, max: 200, up: rules(0, 0, 10000, 60, 0), upEvents: spread([1, 5, 9], 120), current: 100, desired: 500, expected: 200 }],
  ['no scale-up after many recent scale-ups (Pods 5/120s, +15 in 120 s)', { min: 1, max: 1000, up: rules(5, 120, 0, 0, 0), upEvents: spread([1, 5, 9], 120), current: 100, desired: 500, expected: 100 }],
  ['scale-up Pods 150/120s counts from the period start: 100 - 15 + 150 = 235', { min: 1, max: 1000, up: rules(150, 120, 0, 0, 0), upEvents: spread([1, 5, 9], 120), current: 100, desired: 500, expected: 235 }],
  ['scale-up Percent 200/120s counts from the period start: (100 - 15) × 3 = 255', { min: 1, max: 1000, up: rules(0, 0, 200, 120, 0), upEvents: spread([1, 5, 9], 120), current: 100, desired: 500, expected: 255 }],
  ['scale-up Percent 300/300s after +4 and -2: 6 → 24 gives 16', { min: 1, max: 1000, up: rules(0, 0, 300, 300, 0), upEvents: spread([4], 120), downEvents: spread([2], 120), current: 6, desired: 24, expected: 16 }],
  ['scale-down default behavior ignores past events: 10 → 5', { min: 1, max: 1000, downEvents: spread([1, 5, 9], 120), current: 10, desired: 5, expected: 5 }],
  ['scale-down Pods 115/120s stops at min 1', { min: 1, max: 1000, down: rules(115, 120, 0, 0, 300), downEvents: spread([1, 5, 9], 120), current: 100, desired: 0, expected: 1 }],
  ['scale-down Pods 130/120s stops at min 5', { min: 5, max: 1000, down: rules(130, 120, 0, 0, 300), downEvents: spread([1, 5, 9], 120), current: 100, desired: 0, expected: 5 }],
  ['scale-down Percent 100/120s stops at min 5', { min: 5, max: 1000, down: rules(0, 0, 100, 120, 300), downEvents: spread([1, 5, 9], 120), current: 100, desired: 2, expected: 5 }],
  ['no scale-down after recent scale-downs (Pods 5/120s, -15 in 120 s)', { min: 1, max: 1000, down: rules(5, 120, 0, 0, 300), downEvents: spread([1, 5, 9], 120), current: 100, desired: 2, expected: 100 }],
  ['scale-down Percent 50/120s from the period start: (100 + 12) / 2 = 56', { min: 1, max: 1000, down: rules(0, 0, 50, 120, 300), downEvents: spread([2, 4, 6], 120), current: 100, desired: 0, expected: 56 }],
  ['scale-down Percent 50/180s after +2 and -4: 10 → 1 gives 6', { min: 1, max: 1000, down: rules(0, 0, 50, 180, 0), upEvents: spread([2], 120), downEvents: spread([4], 120), current: 10, desired: 1, expected: 6 }],
  ['scale-down Percent 10/120s after -30 keeps 100', { min: 1, max: 1000, down: rules(0, 0, 10, 120, 300), downEvents: spread([10, 10, 10], 120), current: 100, desired: 0, expected: 100 }],
  ['scale-down Percent 1000/120s after -30 still allows 10 → 5', { min: 1, max: 1000, down: rules(0, 0, 1000, 120, 300), downEvents: spread([10, 10, 10], 120), current: 10, desired: 5, expected: 5 }],
  ['scale-up Pods 1000/60s: events of the last 60 s only, 100 → 200', { min: 1, max: 1000, up: rules(1000, 60, 0, 0, 0), upEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 200, expected: 200 }],
  ['scale-up Pods 1000/120s + Percent 100/60s: 100 → 200', { min: 1, max: 1000, up: rules(1000, 120, 100, 60, 0), upEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 200, expected: 200 }],
  ['scale-up Pods 1000/30s + Percent 100/60s: 100 → 200', { min: 1, max: 1000, up: rules(1000, 30, 100, 60, 0), upEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 200, expected: 200 }],
  ['scale-down Pods 1000/60s: 100 → 5', { min: 1, max: 1000, down: rules(1000, 60, 0, 0, 300), downEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 5, expected: 5 }],
  ['scale-down Pods 1000/120s + Percent 100/60s: 100 → 5', { min: 1, max: 1000, down: rules(1000, 120, 100, 60, 300), downEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 5, expected: 5 }],
  ['scale-down Pods 1000/30s + Percent 100/60s: 100 → 5', { min: 1, max: 1000, down: rules(1000, 30, 100, 60, 300), downEvents: spread([8, 12, 9, 11], 120), current: 100, desired: 5, expected: 5 }],
];

for (const [name, c] of RULES) {
  test(`hpa - ${name}`, { timeout: 60_000 }, () => {
    const behavior = { scaleUp: c.up, scaleDown: c.down };
    const s = state(c.current, { upEvents: c.upEvents ?? [], downEvents: c.downEvents ?? [] });
    const r = hpaStep(spec(c.min, c.max, behavior), [avg(1)], s, [{ value: c.desired }], NOW);
    assert.equal(r.desiredReplicas, c.expected, r.note);
  });
}

test('hpa - scale-up policy Pods 4/15s limits 10 → 50 to 14, and says which policy', { timeout: 60_000 }, () => {
  const r = hpaStep(spec(1, 100, { scaleUp: { policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }] } }), [avg(5)], state(10), [{ value: 250 }], NOW);
  assert.equal(r.desiredReplicas, 14);
  assert.equal(r.decision?.reason, 'ceil(250/5)=50, limited to 14 by scaleUp policy Pods 4/15s: 10 → 14');
});

test('hpa - selectPolicy Min picks the smaller limit; Disabled blocks the direction', { timeout: 60_000 }, () => {
  const min = hpaStep(spec(1, 1000, { scaleUp: { ...rules(2, 60, 50, 60, 0), selectPolicy: 'Min' } }), [avg(1)], state(1), [{ value: 100 }], NOW);
  assert.equal(min.desiredReplicas, 2, 'min(1 + 2, ceil(1 × 1.5)) = 2');
  const minDown = hpaStep(spec(1, 1000, { scaleDown: { ...rules(2, 60, 50, 60, 0), selectPolicy: 'Min' } }), [avg(1)], state(5), [{ value: 0 }], NOW);
  assert.equal(minDown.desiredReplicas, 3, 'max(5 - 2, floor(5 × 0.5)) = 3');
  const disabled = hpaStep(spec(1, 1000, { scaleDown: { selectPolicy: 'Disabled' } }), [avg(1)], state(5), [{ value: 0 }], NOW);
  assert.equal(disabled.desiredReplicas, 5);
  assert.match(disabled.note, /scale-down disabled/);
});

test('hpa - behavior scaleDown window: the highest recommendation of the window holds, then it scales down', { timeout: 60_000 }, () => {
  const b = { scaleDown: { stabilizationWindowSeconds: 60 } };
  let r = hpaStep(spec(1, 10, b), [avg(5)], state(8), [{ value: 40 }], NOW);
  r = hpaStep(spec(1, 10, b), [avg(5)], r.state, [{ value: 5 }], NOW + 30_000);
  assert.equal(r.desiredReplicas, 8);
  assert.match(r.note, /held at 8 by the highest recommendation of the last 60s \(scaleDown stabilization\)/);
  r = hpaStep(spec(1, 10, b), [avg(5)], r.state, [{ value: 5 }], NOW + 61_000);
  assert.equal(r.desiredReplicas, 1);
});

test('hpa - behavior scaleUp window: the lowest recommendation of the window holds', { timeout: 60_000 }, () => {
  const b = { scaleUp: { stabilizationWindowSeconds: 60 } };
  let r = hpaStep(spec(1, 10, b), [avg(5)], state(2), [{ value: 10 }], NOW);
  r = hpaStep(spec(1, 10, b), [avg(5)], r.state, [{ value: 30 }], NOW + 15_000);
  assert.equal(r.desiredReplicas, 2);
  assert.match(r.note, /held at 2 by the lowest recommendation of the last 60s \(scaleUp stabilization\)/);
});

test('hpa - behavior tolerance per direction replaces the default 0.1', { timeout: 60_000 }, () => {
  const b = { scaleUp: { tolerance: 0.5 } };
  const r = hpaStep(spec(1, 10, b), [avg(5)], state(4), [{ value: 28 }], NOW);
  assert.equal(r.desiredReplicas, 4, 'ratio 1.4 is within an up tolerance of 0.5');
  const d = hpaStep(spec(1, 10, b), [avg(5)], state(4), [{ value: 14 }], NOW);
  assert.equal(d.desiredReplicas, 3, 'ratio 0.7 is outside the default down tolerance of 0.1');
});
