/**
 * The KEDA step, run every pollingInterval (kedacore/keda pkg/scaling/executor RequestScale + pkg/fallback):
 * 0 ↔ 1 (activation), cooldown to 0 or idleReplicaCount, minReplicaCount, fallback on scaler errors, pause.
 * 1 ↔ N is the HPA's job (hpa.ts). Pure: no clock, no I/O.
 */
import type { ScaledObjectSpec } from './scaledobject.js';
import { fmt, type AutoscalerState, type Observation, type ServedMetric, type StepResult, type TriggerTarget } from './state.js';

export type KedaSpec = Pick<
  ScaledObjectSpec,
  | 'cooldownPeriod'
  | 'initialCooldownPeriod'
  | 'minReplicaCount'
  | 'maxReplicaCount'
  | 'idleReplicaCount'
  | 'fallback'
  | 'paused'
  | 'pausedReplicas'
  | 'pausedScaleIn'
  | 'pausedScaleOut'
  | 'forceActivation'
>;

export interface Served {
  metrics: ServedMetric[];
  failures: number[];
  /** Labels of triggers above their activation value, with the comparison in words. */
  active: string[];
  /** "trigger queue: <error>" for triggers that failed without a fallback taking over. */
  errors: string[];
  fallbacks: string[];
}

/**
 * Readings → the metrics the HPA gets. A failing trigger with a fallback, once it failed more than
 * failureThreshold times in a row, serves target × fallback replicas and counts as active (as KEDA).
 */
export function serveMetrics(spec: KedaSpec, triggers: readonly TriggerTarget[], state: AutoscalerState, observations: readonly Observation[]): Served {
  const out: Served = { metrics: [], failures: [], active: [], errors: [], fallbacks: [] };
  triggers.forEach((t, i) => {
    const o = observations[i] ?? { error: 'no reading' };
    if ('value' in o) {
      out.failures.push(0);
      out.metrics.push({ value: o.value });
      if (o.value > t.activationTarget) out.active.push(`${t.label} ${fmt(o.value)} > activation ${fmt(t.activationTarget)}`);
      return;
    }
    const fb = spec.fallback;
    if (!fb) {
      out.failures.push(state.failures[i] ?? 0);
      out.metrics.push({ error: o.error });
      out.errors.push(`${t.label}: ${o.error}`);
      return;
    }
    const failures = (state.failures[i] ?? 0) + 1;
    out.failures.push(failures);
    if (failures <= fb.failureThreshold || fb.behavior === 'scalingModifiers') {
      out.metrics.push({ error: o.error });
      out.errors.push(`${t.label}: ${o.error} (failure ${failures} of failureThreshold ${fb.failureThreshold})`);
      return;
    }
    const current = state.replicas;
    const replicas =
      fb.behavior === 'currentReplicas' ? current
        : fb.behavior === 'currentReplicasIfHigher' ? Math.max(current, fb.replicas)
          : fb.behavior === 'currentReplicasIfLower' ? Math.min(current, fb.replicas)
            : fb.replicas;
    let value = t.target * replicas;
    if (t.metricType === 'Value') {
      // KEDA divides by the ready replicas for Value targets; with none ready it cannot fall back.
      if (current === 0) {
        out.metrics.push({ error: o.error });
        out.errors.push(`${t.label}: ${o.error} (no fallback for a Value metric at 0 replicas)`);
        return;
      }
      value = (t.target * replicas) / current;
    }
    out.metrics.push({ value, fallback: true });
    out.active.push(`${t.label} failing (${failures} > failureThreshold ${fb.failureThreshold}), fallback ${replicas} replicas`);
    out.fallbacks.push(`${t.label}: failed ${failures} times in a row (> failureThreshold ${fb.failureThreshold}): fallback serves ${fmt(value)} = ${replicas} × target ${fmt(t.target)}`);
  });
  return out;
}

/** One KEDA poll: observations are the triggers' readings now, in spec.triggers order. */
export function kedaStep(spec: KedaSpec, triggers: readonly TriggerTarget[], state: AutoscalerState, observations: readonly Observation[], now: number): StepResult {
  const from = state.replicas;
  const change = (next: AutoscalerState, to: number, reason: string): StepResult => {
    const s = { ...next, replicas: to };
    return { state: s, desiredReplicas: to, decision: { at: now, kind: 'keda', from, to, reason: `${reason}: ${from} → ${to}` }, note: reason };
  };
  const keep = (next: AutoscalerState, note: string): StepResult => ({ state: next, desiredReplicas: next.replicas, note });

  if (spec.pausedReplicas !== undefined) {
    const s = { ...state, lastPollAt: now };
    if (from !== spec.pausedReplicas) return change(s, spec.pausedReplicas, 'paused at autoscaling.keda.sh/paused-replicas');
    return keep(s, `paused at ${spec.pausedReplicas} replicas (autoscaling.keda.sh/paused-replicas)`);
  }
  if (spec.paused) return keep({ ...state, lastPollAt: now }, 'paused (autoscaling.keda.sh/paused)');

  const served = serveMetrics(spec, triggers, state, observations);
  const isActive = served.active.length > 0 || spec.forceActivation;
  const isError = served.errors.length > 0;
  let s: AutoscalerState = { ...state, metrics: served.metrics, failures: served.failures, active: isActive, lastPollAt: now };
  const min = spec.minReplicaCount;
  const idle = spec.idleReplicaCount;
  const why = served.active.join(', ') || 'force-activation annotation';

  if (isActive) {
    if ((idle !== undefined && from < min) || from === 0) {
      if (spec.pausedScaleOut) return keep(s, `${why}, but scale-out is paused (autoscaling.keda.sh/paused-scale-out)`);
      s = { ...s, lastActiveTime: now };
      return change(s, Math.max(min, 1), why);
    }
    // A failing trigger next to an active one keeps the target up without renewing the cooldown (as KEDA).
    if (isError) return keep(s, `active (${why}); ${served.errors.join('; ')}`);
    return keep({ ...s, lastActiveTime: now }, `active: ${why}`);
  }

  if (isError && spec.fallback && spec.fallback.replicas !== 0) {
    return keep(s, `${served.errors.join('; ')}; fallback after failureThreshold ${spec.fallback.failureThreshold}`);
  }
  if (isError && !spec.fallback) {
    return keep(s, `${served.errors.join('; ')}; not scaling to zero while a trigger fails`);
  }
  const inactive = triggers.map((t, i) => {
    const m = served.metrics[i];
    return m && 'value' in m ? `${t.label} ${fmt(m.value)} ≤ activation ${fmt(t.activationTarget)}` : `${t.label} failing`;
  }).join(', ');
  if ((idle !== undefined && from > idle) || (from > 0 && min === 0)) {
    if (spec.pausedScaleIn) return keep(s, `inactive (${inactive}), but scale-in is paused (autoscaling.keda.sh/paused-scale-in)`);
    const to = idle ?? min;
    if (s.lastActiveTime === undefined) {
      const since = s.createdAt + spec.initialCooldownPeriod * 1000;
      if (since < now) return change(s, to, `inactive (${inactive}) since start, initialCooldownPeriod ${spec.initialCooldownPeriod}s over`);
      return keep(s, `inactive (${inactive}); initialCooldownPeriod ${spec.initialCooldownPeriod}s not over`);
    }
    const idleFor = (now - s.lastActiveTime) / 1000;
    if (s.lastActiveTime + spec.cooldownPeriod * 1000 < now) {
      return change(s, to, `inactive for ${fmt(Math.round(idleFor))}s (cooldownPeriod ${spec.cooldownPeriod}s)${idle !== undefined ? ', to idleReplicaCount' : ''}`);
    }
    return keep(s, `cooling down: inactive for ${fmt(Math.round(idleFor))}s of cooldownPeriod ${spec.cooldownPeriod}s`);
  }
  if (idle === undefined && from < min) return change(s, min, `below minReplicaCount ${min}`);
  return keep(s, `inactive (${inactive})`);
}
