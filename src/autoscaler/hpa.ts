/**
 * The HPA step, run every sync period (kubernetes pkg/controller/podautoscaler horizontal.go and
 * replica_calculator.go) over the external metrics KEDA serves: 1 ↔ N. Pure: no clock, no I/O.
 *
 * behavior unset (KEDA's default) takes the controller's legacy path: the highest recommendation of the downscale
 * stabilization window, then at most max(2 × current, 4). behavior set — even `{}` — takes the policy path with
 * the API defaults filled in. The two differ (a legacy scale-up from 10 wanting 50 stops at 20; the default
 * policies allow 20 too, but from 1 the legacy path allows 4 where Percent 100 allows 2 and Pods 4 allows 5).
 */
import type { ScaledObjectSpec } from './scaledobject.js';
import {
  describePolicy,
  fillBehavior,
  pruneEvents,
  scaleDownLimit,
  scaleUpLimit,
  stabilizeLegacy,
  stabilizeWithBehavior,
  DEFAULT_TOLERANCE,
  type FilledBehavior,
} from './behavior.js';
import { fmt, type AutoscalerState, type ServedMetric, type StepResult, type TriggerTarget } from './state.js';

export type HpaSpec = Pick<ScaledObjectSpec, 'minReplicaCount' | 'maxReplicaCount' | 'behavior' | 'paused' | 'pausedReplicas'>;

export interface HpaOptions {
  /** --horizontal-pod-autoscaler-downscale-stabilization (default 300 s). */
  downscaleStabilizationSeconds: number;
  /** --horizontal-pod-autoscaler-tolerance (default 0.1); behavior.*.tolerance overrides it per direction. */
  tolerance: number;
}

export const DEFAULT_HPA_OPTIONS: HpaOptions = { downscaleStabilizationSeconds: 300, tolerance: DEFAULT_TOLERANCE };

/** Pods as the HPA counts them: those that exist (status.replicas) and the ready ones; default: the spec count. */
export interface ObservedReplicas {
  replicas?: number;
  ready?: number;
}

interface Proposal {
  replicas: number;
  /** "ceil(23/5)=5" or "within tolerance: 5.2/5 (ratio 1.04 ≤ 1.1), keep 5". */
  text: string;
}

/** One metric → a replica count (replica_calculator.go, external metrics). */
export function proposeReplicas(t: TriggerTarget, value: number, specReplicas: number, observed: ObservedReplicas, tol: { up: number; down: number }): Proposal {
  const within = (ratio: number) => 1 - tol.down <= ratio && ratio <= 1 + tol.up;
  const bound = (ratio: number) => (ratio >= 1 ? `≤ ${fmt(1 + tol.up)}` : `≥ ${fmt(1 - tol.down)}`);
  if (t.metricType === 'AverageValue') {
    const status = observed.replicas ?? specReplicas;
    const ratio = value / (t.target * status);
    if (within(ratio)) {
      return { replicas: status, text: `within tolerance: ${fmt(value / status)}/${fmt(t.target)} (ratio ${fmt(ratio)} ${bound(ratio)}), keep ${status}` };
    }
    const n = Math.ceil(value / t.target);
    return { replicas: n, text: `ceil(${fmt(value)}/${fmt(t.target)})=${n}` };
  }
  const ratio = value / t.target;
  if (specReplicas === 0) {
    const n = Math.ceil(ratio);
    return { replicas: n, text: `ceil(${fmt(value)}/${fmt(t.target)})=${n}` };
  }
  if (within(ratio)) return { replicas: specReplicas, text: `within tolerance: ${fmt(value)}/${fmt(t.target)} (ratio ${fmt(ratio)} ${bound(ratio)}), keep ${specReplicas}` };
  const ready = observed.ready ?? specReplicas;
  const n = Math.ceil(ratio * ready);
  return { replicas: n, text: `ceil(${fmt(value)}/${fmt(t.target)} × ${ready} ready)=${n}` };
}

/** One HPA sync over the metrics KEDA serves (state.metrics unless `metrics` is given). */
export function hpaStep(
  spec: HpaSpec,
  triggers: readonly TriggerTarget[],
  state: AutoscalerState,
  metrics: readonly ServedMetric[] = state.metrics,
  now: number,
  options: HpaOptions = DEFAULT_HPA_OPTIONS,
  observed: ObservedReplicas = {},
): StepResult {
  const current = state.replicas;
  const keep = (s: AutoscalerState, note: string): StepResult => ({ state: s, desiredReplicas: s.replicas, note });
  let s: AutoscalerState = { ...state, lastSyncAt: now };
  // KEDA removes the HPA while a ScaledObject is paused.
  if (spec.paused || spec.pausedReplicas !== undefined) return keep(s, 'paused: no HPA');
  if (!s.hpaSeen) s = { ...s, hpaSeen: true, recommendations: [{ at: now, replicas: current }] };
  if (current === 0) return keep(s, 'scaling disabled: the target has 0 replicas (KEDA activates it)');

  const min = Math.max(spec.minReplicaCount, 1);
  const max = spec.maxReplicaCount;
  const behavior = spec.behavior ? fillBehavior(spec.behavior, options.downscaleStabilizationSeconds, options.tolerance) : undefined;
  const change = (next: AutoscalerState, to: number, reason: string): StepResult => {
    let n = { ...next, replicas: to };
    if (behavior && to !== current) n = recordEvent(n, behavior, current, to, now);
    if (to === current) return keep(n, reason);
    return { state: n, desiredReplicas: to, decision: { at: now, kind: 'hpa', from: current, to, reason: `${reason}: ${current} → ${to}` }, note: reason };
  };

  if (current > max) return change(s, max, `above maxReplicaCount ${max}`);
  if (current < min) return change(s, min, `below the HPA minimum ${min}`);

  const tol = { up: behavior?.scaleUp.tolerance ?? options.tolerance, down: behavior?.scaleDown.tolerance ?? options.tolerance };
  let best: Proposal | undefined;
  const failing: string[] = [];
  const texts: string[] = [];
  triggers.forEach((t, i) => {
    const m = metrics[i];
    if (!m || 'error' in m) {
      failing.push(`${t.label}: ${m && 'error' in m ? m.error : 'no metric'}`);
      return;
    }
    const p = proposeReplicas(t, m.value, current, observed, tol);
    const text = (triggers.length > 1 ? `${t.label}: ` : '') + (m.fallback ? 'fallback ' : '') + p.text;
    texts.push(text);
    if (!best || p.replicas > best.replicas) best = { replicas: p.replicas, text };
  });
  if (failing.length === triggers.length) return keep(s, `metrics unavailable (${failing.join('; ')}): keep ${current}`);
  const proposal = best!;
  if (failing.length > 0 && proposal.replicas < current) {
    return keep(s, `${proposal.text}, but not scaling down while ${failing.join('; ')}: keep ${current}`);
  }
  const head = texts.length > 1 ? `max(${texts.join(', ')})` : proposal.text;
  if (!behavior) return legacy(s, proposal.replicas, head, current, min, max, now, options, change);
  return withBehavior(s, proposal.replicas, head, current, min, max, now, behavior, change);
}

type Change = (s: AutoscalerState, to: number, reason: string) => StepResult;

function legacy(s: AutoscalerState, desired: number, head: string, current: number, min: number, max: number, now: number, o: HpaOptions, change: Change): StepResult {
  const st = stabilizeLegacy(s.recommendations, desired, now, o.downscaleStabilizationSeconds);
  const next = { ...s, recommendations: st.recs };
  let reason = head;
  if (st.recommendation !== desired) {
    reason += `, held at ${st.recommendation} by the highest recommendation of the last ${o.downscaleStabilizationSeconds}s (downscale stabilization)`;
  }
  const upLimit = Math.max(2 * current, 4);
  const ceiling = Math.min(max, upLimit);
  let to = st.recommendation;
  if (to < min) {
    to = min;
    reason += `, raised to ${min} by minReplicaCount`;
  } else if (to > ceiling) {
    to = ceiling;
    reason += max <= upLimit ? `, limited to ${max} by maxReplicaCount` : `, limited to ${upLimit} by the scale-up limit max(2×${current}, 4)`;
  }
  return change(next, to, reason);
}

function withBehavior(s: AutoscalerState, desired: number, head: string, current: number, min: number, max: number, now: number, b: FilledBehavior, change: Change): StepResult {
  const st = stabilizeWithBehavior(s.recommendations, desired, current, now, b);
  const next = { ...s, recommendations: st.recs, upEvents: pruneEvents(s.upEvents, b, now), downEvents: pruneEvents(s.downEvents, b, now) };
  let reason = head;
  let to = st.recommendation;
  if (to !== desired) {
    reason += desired > current
      ? `, held at ${to} by the lowest recommendation of the last ${b.scaleUp.stabilizationWindowSeconds}s (scaleUp stabilization)`
      : `, held at ${to} by the highest recommendation of the last ${b.scaleDown.stabilizationWindowSeconds}s (scaleDown stabilization)`;
  }
  if (to > current) {
    const lim = scaleUpLimit(current, next.upEvents, next.downEvents, b.scaleUp, now);
    const limit = Math.max(lim.replicas, current);
    if (max > limit && to > limit) {
      reason += lim.disabled ? `, scale-up disabled (selectPolicy Disabled)` : `, limited to ${limit} by scaleUp policy ${describePolicy(lim.policy!)}`;
      to = limit;
    } else if (to > max) {
      reason += `, limited to ${max} by maxReplicaCount`;
      to = max;
    }
  } else if (to < current) {
    const lim = scaleDownLimit(current, next.upEvents, next.downEvents, b.scaleDown, now);
    const limit = Math.min(lim.replicas, current);
    if (min < limit && to < limit) {
      reason += lim.disabled ? `, scale-down disabled (selectPolicy Disabled)` : `, limited to ${limit} by scaleDown policy ${describePolicy(lim.policy!)}`;
      to = limit;
    } else if (to < min) {
      reason += `, raised to ${min} by minReplicaCount`;
      to = min;
    }
  }
  return change(next, to, reason);
}

function recordEvent(s: AutoscalerState, b: FilledBehavior, from: number, to: number, now: number): AutoscalerState {
  if (to > from) return { ...s, upEvents: [...pruneEvents(s.upEvents, b, now), { at: now, change: to - from }] };
  return { ...s, downEvents: [...pruneEvents(s.downEvents, b, now), { at: now, change: from - to }] };
}
