/**
 * KEDA step tables, after kedacore/keda pkg/scaling/executor/scale_scaledobjects_test.go (RequestScale) and
 * pkg/fallback/fallback_test.go, plus the activation and cooldown rules of keda-semantics.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kedaStep, type KedaSpec } from '../../src/autoscaler/keda.js';
import { initialState, type AutoscalerState, type Observation, type TriggerTarget } from '../../src/autoscaler/state.js';

const T0 = 1_700_000_000_000;
const s = (n: number) => T0 + n * 1000;

function spec(extra: Partial<KedaSpec> = {}): KedaSpec {
  return {
    cooldownPeriod: 300,
    initialCooldownPeriod: 0,
    minReplicaCount: 0,
    maxReplicaCount: 10,
    paused: false,
    pausedScaleIn: false,
    pausedScaleOut: false,
    forceActivation: false,
    ...extra,
  };
}

const queue: TriggerTarget = { label: 'queue', metricType: 'AverageValue', target: 5, activationTarget: 0 };

function at(replicas: number, extra: Partial<AutoscalerState> = {}): AutoscalerState {
  return { ...initialState(T0, replicas, 1), ...extra };
}

function step(sp: KedaSpec, st: AutoscalerState, obs: Observation, now = s(1), triggers = [queue]) {
  return kedaStep(sp, triggers, st, [obs], now);
}

test('keda - queue 23 > activation 0: 0 → 1, and the reason says so', { timeout: 60_000 }, () => {
  const r = step(spec(), at(0), { value: 23 });
  assert.equal(r.desiredReplicas, 1);
  assert.equal(r.decision?.reason, 'queue 23 > activation 0: 0 → 1');
  assert.equal(r.state.lastActiveTime, s(1));
});

test('keda - activation is strictly greater: a queue equal to the activation value stays at 0', { timeout: 60_000 }, () => {
  const r = step(spec(), at(0), { value: 3 }, s(1), [{ ...queue, activationTarget: 3 }]);
  assert.equal(r.desiredReplicas, 0);
  assert.equal(r.decision, undefined);
});

test('keda - from 0 it scales to max(minReplicaCount, 1)', { timeout: 60_000 }, () => {
  assert.equal(step(spec({ minReplicaCount: 3, idleReplicaCount: 0 }), at(0), { value: 1 }).desiredReplicas, 3);
});

test('keda - from idleReplicaCount it scales to minReplicaCount when active', { timeout: 60_000 }, () => {
  const r = step(spec({ minReplicaCount: 5, idleReplicaCount: 0 }), at(0), { value: 1 });
  assert.equal(r.desiredReplicas, 5);
  const fromIdle = step(spec({ minReplicaCount: 5, idleReplicaCount: 2 }), at(2), { value: 1 });
  assert.equal(fromIdle.desiredReplicas, 5);
});

test('keda - active at N replicas leaves N to the HPA and renews lastActiveTime', { timeout: 60_000 }, () => {
  const r = step(spec(), at(4, { lastActiveTime: s(0) }), { value: 30 }, s(50));
  assert.equal(r.desiredReplicas, 4);
  assert.equal(r.state.lastActiveTime, s(50));
});

test('keda - inactive 10 replicas with min 0 and no lastActiveTime scale to 0 at once (initialCooldownPeriod 0)', { timeout: 60_000 }, () => {
  const r = step(spec(), at(10), { value: 0 });
  assert.equal(r.desiredReplicas, 0);
  assert.match(r.decision!.reason, /initialCooldownPeriod 0s over: 10 → 0$/);
});

test('keda - initialCooldownPeriod keeps replicas after creation until it is over', { timeout: 60_000 }, () => {
  const sp = spec({ initialCooldownPeriod: 120 });
  assert.equal(step(sp, at(2), { value: 0 }, s(60)).desiredReplicas, 2);
  assert.equal(step(sp, at(2), { value: 0 }, s(121)).desiredReplicas, 0);
});

test('keda - cooldownPeriod counts from the last active poll; scaling to 0 only once it is over', { timeout: 60_000 }, () => {
  const st = at(1, { lastActiveTime: s(0) });
  const early = step(spec(), st, { value: 0 }, s(300));
  assert.equal(early.desiredReplicas, 1, 'lastActiveTime + cooldown must be strictly before now');
  assert.equal(early.note, 'cooling down: inactive for 300s of cooldownPeriod 300s');
  const late = step(spec(), st, { value: 0 }, s(301));
  assert.equal(late.desiredReplicas, 0);
  assert.equal(late.decision?.reason, 'inactive for 301s (cooldownPeriod 300s): 1 → 0');
});

test('keda - inactive scales to idleReplicaCount, not to 0', { timeout: 60_000 }, () => {
  const r = step(spec({ minReplicaCount: 5, idleReplicaCount: 1 }), at(5, { lastActiveTime: s(0) }), { value: 0 }, s(400));
  assert.equal(r.desiredReplicas, 1);
  assert.match(r.decision!.reason, /to idleReplicaCount: 5 → 1$/);
});

test('keda - below minReplicaCount (no idle) it raises to min even when inactive', { timeout: 60_000 }, () => {
  const r = step(spec({ minReplicaCount: 2 }), at(1), { value: 0 });
  assert.equal(r.desiredReplicas, 2);
  assert.equal(r.decision?.reason, 'below minReplicaCount 2: 1 → 2');
});

test('keda - with min > 0 and no idle, an inactive target stays at min (1 ↔ N is the HPA\'s job)', { timeout: 60_000 }, () => {
  assert.equal(step(spec({ minReplicaCount: 2 }), at(4, { lastActiveTime: s(0) }), { value: 0 }, s(1000)).desiredReplicas, 4);
});

test('keda - an erroring trigger without fallback never scales to zero', { timeout: 60_000 }, () => {
  const r = step(spec(), at(3, { lastActiveTime: s(0) }), { error: 'connection refused' }, s(1000));
  assert.equal(r.desiredReplicas, 3);
  assert.match(r.note, /queue: connection refused; not scaling to zero while a trigger fails/);
});

test('keda - fallback: failureThreshold consecutive failures, then fallback.replicas through the metric, active', { timeout: 60_000 }, () => {
  const sp = spec({ fallback: { failureThreshold: 2, replicas: 6, behavior: 'static' } });
  let st = at(1, { lastActiveTime: s(0) });
  for (const n of [1, 2]) {
    const r = step(sp, st, { error: 'timeout' }, s(n));
    assert.ok('error' in r.state.metrics[0]!, `failure ${n} is still an error`);
    st = r.state;
  }
  const r = step(sp, st, { error: 'timeout' }, s(3));
  assert.deepEqual(r.state.metrics[0], { value: 30, fallback: true }, 'target 5 × 6 replicas');
  assert.equal(r.state.active, true);
  const ok = step(sp, r.state, { value: 0 }, s(4));
  assert.equal(ok.state.failures[0], 0, 'a good reading resets the count');
});

test('keda - fallback at 0 replicas activates the target', { timeout: 60_000 }, () => {
  const sp = spec({ fallback: { failureThreshold: 0, replicas: 4, behavior: 'static' } });
  const r = step(sp, at(0), { error: 'timeout' });
  assert.equal(r.desiredReplicas, 1);
  assert.match(r.decision!.reason, /queue failing \(1 > failureThreshold 0\), fallback 4 replicas: 0 → 1/);
});

const FALLBACK_BEHAVIORS: Array<['static' | 'currentReplicas' | 'currentReplicasIfHigher' | 'currentReplicasIfLower', number, number]> = [
  ['static', 3, 6],
  ['currentReplicas', 3, 3],
  ['currentReplicasIfHigher', 3, 6],
  ['currentReplicasIfHigher', 8, 8],
  ['currentReplicasIfLower', 3, 3],
  ['currentReplicasIfLower', 8, 6],
];
for (const [behavior, current, replicas] of FALLBACK_BEHAVIORS) {
  test(`keda - fallback behavior ${behavior} at ${current} replicas serves ${replicas} × target`, { timeout: 60_000 }, () => {
    const sp = spec({ fallback: { failureThreshold: 0, replicas: 6, behavior } });
    const r = step(sp, at(current, { lastActiveTime: s(0) }), { error: 'timeout' });
    assert.deepEqual(r.state.metrics[0], { value: replicas * 5, fallback: true });
  });
}

test('keda - paused-replicas pins the count; paused freezes it', { timeout: 60_000 }, () => {
  const pinned = step(spec({ paused: true, pausedReplicas: 3 }), at(7), { value: 100 });
  assert.equal(pinned.desiredReplicas, 3);
  assert.equal(pinned.decision?.reason, 'paused at autoscaling.keda.sh/paused-replicas: 7 → 3');
  const frozen = step(spec({ paused: true }), at(7, { lastActiveTime: s(0) }), { value: 0 }, s(10_000));
  assert.equal(frozen.desiredReplicas, 7);
});

test('keda - paused-scale-in keeps an inactive target up; paused-scale-out keeps it at 0', { timeout: 60_000 }, () => {
  assert.equal(step(spec({ pausedScaleIn: true }), at(2, { lastActiveTime: s(0) }), { value: 0 }, s(1000)).desiredReplicas, 2);
  assert.equal(step(spec({ pausedScaleOut: true }), at(0), { value: 50 }).desiredReplicas, 0);
});

test('keda - force-activation activates an empty queue', { timeout: 60_000 }, () => {
  assert.equal(step(spec({ forceActivation: true }), at(0), { value: 0 }).desiredReplicas, 1);
});

test('keda - with two triggers, one active is enough, and a failing one does not renew the cooldown', { timeout: 60_000 }, () => {
  const two = [queue, { ...queue, label: 'orders' }];
  const r = kedaStep(spec(), two, at(0), [{ value: 0 }, { value: 2 }], s(1));
  assert.equal(r.desiredReplicas, 1);
  assert.equal(r.decision?.reason, 'orders 2 > activation 0: 0 → 1');
  const held = kedaStep(spec(), two, { ...r.state, lastActiveTime: s(0) }, [{ error: 'down' }, { value: 2 }], s(500));
  assert.equal(held.state.lastActiveTime, s(0));
});
