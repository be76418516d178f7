/**
 * "What comes next" in status and on the dashboard: the countdown to KEDA's scale to zero, checked against the KEDA
 * step itself on a virtual clock, and the backlog's estimate at the current rate.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { createAutoscaler, loadScaledObjects } from '../../src/autoscaler/index.js';
import type { AutoscalerState } from '../../src/autoscaler/state.js';
import { backlogOutlook, cooldownOutlook, formatSeconds, type SystemStatus } from '../../src/supervisor/state.js';
import { renderStatus } from '../../src/cli/status/run.js';
import { consumerScaledObject } from '../supervisor/up-support.js';

function spec() {
  const yaml = consumerScaledObject('type: rabbitmq\n    metadata:\n      queueName: jobs\n      mode: QueueLength\n      value: "5"\n',
    `  pollingInterval: 30\n  cooldownPeriod: 300\n  minReplicaCount: 0\n  maxReplicaCount: 10\n`);
  return loadScaledObjects(parseManifests(yaml, 'so.yaml'), { secrets: () => undefined, env: () => ({}) }).scaledObjects[0]!.spec;
}

const TRIGGERS = [{ label: 'queue', metricType: 'AverageValue' as const, target: 5, activationTarget: 0 }];

/** Polls every pollingInterval on a virtual clock from t0 with the values given, then with 0 until KEDA scales to 0. */
function run(s: ReturnType<typeof spec>, values: number[]) {
  const t0 = 1_000_000;
  const a = createAutoscaler(s, { triggers: TRIGGERS }, t0);
  let state: AutoscalerState = a.initial;
  let t = t0;
  const every = s.pollingInterval * 1000;
  for (const v of values) {
    state = a.poll(state, [{ value: v }], t).state;
    t += every;
  }
  return { a, state, t, every };
}

describe('status - the countdown to scale to zero', { timeout: 30_000 }, () => {
  test('cooldown - ends at the very poll at which KEDA scales to 0, and counts down between polls', () => {
    const s = spec();
    // Active for three polls (work arrives at 0 replicas: 0 → 1), then the queue is empty.
    let { a, state, t, every } = run(s, [12, 8, 3]);
    const lastActive = state.lastActiveTime!;
    const countdowns: number[] = [];
    let scaledAt: number | undefined;
    let predicted: number | undefined;
    for (let i = 0; i < 20 && scaledAt === undefined; i++) {
      const r = a.poll(state, [{ value: 0 }], t);
      if (r.decision && r.decision.to === 0) scaledAt = t;
      state = r.state;
      const o = cooldownOutlook({ spec: s, state }, t + 5000);
      if (o?.dueAt !== undefined) {
        predicted ??= o.dueAt;
        assert.equal(o.dueAt, predicted, 'the due time does not move while nothing is active');
        countdowns.push(o.inSeconds!);
      }
      t += every;
    }
    assert.equal(scaledAt, predicted, 'the countdown ends at the poll that scales to 0');
    assert.ok(predicted! > lastActive + s.cooldownPeriod * 1000, 'strictly after the cooldown, as KEDA compares');
    assert.deepEqual(countdowns, [...countdowns].sort((x, y) => y - x), 'it only counts down');
    assert.equal(cooldownOutlook({ spec: s, state }, t), undefined, 'at 0 there is nothing to count down');
  });

  test('cooldown - says it in words: "scale to 0 in 4m55s (inactive for 35s of cooldownPeriod 300s)"', () => {
    const s = spec();
    const { state } = run(s, [12, 0]);
    // Last active at t0; the last poll at t0 + 30 s; the first poll after t0 + 300 s is t0 + 330 s.
    const o = cooldownOutlook({ spec: s, state }, state.lastActiveTime! + 35_000);
    assert.equal(o?.text, 'scale to 0 in 4m55s (inactive for 35s of cooldownPeriod 300s)');
    assert.equal(o?.to, 0);
    assert.equal(o?.dueAt, state.lastActiveTime! + 330_000);
  });

  test('cooldown - while the scaler is active there is no countdown', () => {
    const s = spec();
    const { state } = run(s, [12, 8]);
    assert.equal(state.active, true);
    assert.equal(cooldownOutlook({ spec: s, state }, state.lastPollAt! + 1000), undefined);
  });

  test('cooldown - a trigger that cannot be read holds the scale to 0 back, and the line says why', () => {
    const s = spec();
    let { a, state, t } = run(s, [12]);
    state = a.poll(state, [{ error: 'connect ECONNREFUSED 127.0.0.1:5672' }], t).state;
    const o = cooldownOutlook({ spec: s, state }, t + 1000);
    assert.equal(o?.dueAt, undefined);
    assert.equal(o?.text, 'no scale to 0 while a trigger cannot be read');
  });

  test('cooldown - idleReplicaCount is the target when set, and paused scale-in says so', () => {
    const s = spec();
    const { state } = run(s, [12, 0]);
    const paused = { ...s, pausedScaleIn: true };
    assert.equal(cooldownOutlook({ spec: paused, state }, state.lastPollAt!)?.text, 'no scale to 0: scale-in is paused (autoscaling.keda.sh/paused-scale-in)');
    const withIdle = { ...s, idleReplicaCount: 1, minReplicaCount: 3 };
    const o = cooldownOutlook({ spec: withIdle, state: { ...state, replicas: 4 } }, state.lastPollAt!);
    assert.match(o?.text ?? '', /^scale to 1 \(idleReplicaCount\) in \d/);
  });

  test('cooldown - never active since start: initialCooldownPeriod from the start', () => {
    const s = { ...spec(), initialCooldownPeriod: 60 };
    const a = createAutoscaler(s, { triggers: TRIGGERS, initialReplicas: 2 }, 0);
    const state = a.poll(a.initial, [{ value: 0 }], 0).state;
    const o = cooldownOutlook({ spec: s, state }, 10_000);
    assert.equal(o?.dueAt, 90_000, 'the first poll strictly after 60 s');
    assert.equal(o?.text, 'scale to 0 in 1m20s (inactive since start, initialCooldownPeriod 60s)');
  });
});

describe('status - how long the backlog takes at the current rate', { timeout: 30_000 }, () => {
  test('backlog - messages over the measured rate: "backlog 40 messages, ~32s at 1.25 msg/s"', () => {
    const b = backlogOutlook(40, { perSecond: 1.25, overMs: 10_000 });
    assert.equal(b.text, 'backlog 40 messages, ~32s at 1.25 msg/s');
    assert.equal(b.etaSeconds, 32);
  });

  test('backlog - nothing processed: no estimate, and says so', () => {
    assert.equal(backlogOutlook(40, { perSecond: 0, overMs: 10_000 }).text, 'backlog 40 messages; none processed in the last 10s, so no estimate');
    assert.equal(backlogOutlook(40, undefined).text, 'backlog 40 messages; the processing rate is not measured yet');
    assert.equal(backlogOutlook(40, { perSecond: 0, overMs: 10_000 }).etaSeconds, undefined);
  });

  test('backlog - an empty queue is no backlog', () => {
    assert.equal(backlogOutlook(0, { perSecond: 3, overMs: 10_000 }).text, 'no backlog (3 msg/s over the last 10s)');
    assert.equal(backlogOutlook(1, { perSecond: 0.5, overMs: 10_000 }).text, 'backlog 1 message, ~2s at 0.5 msg/s');
  });

  test('durations - seconds, minutes and seconds, hours and minutes', () => {
    assert.deepEqual([0.4, 32, 59.6, 130, 3599, 3600, 3725].map(formatSeconds), ['0s', '32s', '1m00s', '2m10s', '59m59s', '1h00m', '1h02m']);
  });

  test('status text - NEXT says the backlog estimate and the countdown, one line per ScaledObject', () => {
    const s: SystemStatus = {
      pid: 1, startedAt: 0, embedded: true, dataDir: '.qscale', producerUrl: undefined, swaggerUrl: undefined,
      replicas: [], hpa: [], scaledObjects: [], queue: undefined, queues: [], decisions: [],
      outlook: [{
        scaledObject: 'consumer-scaler',
        backlog: backlogOutlook(40, { perSecond: 1.25, overMs: 10_000 }),
        cooldown: { to: 0, text: 'no scale to 0 while a trigger cannot be read' },
      }],
    };
    assert.match(renderStatus(s), /^NEXT consumer-scaler: backlog 40 messages, ~32s at 1\.25 msg\/s; no scale to 0 while a trigger cannot be read$/m);
  });
});
