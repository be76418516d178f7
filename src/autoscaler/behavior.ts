/**
 * The HPA's memory between syncs, as pure functions: stabilization over past recommendations and rate limits over
 * past scale events (kubernetes pkg/controller/podautoscaler/horizontal.go). Times are milliseconds; the spec's
 * durations are seconds, as in the YAML.
 */

export type PolicyType = 'Pods' | 'Percent';
export type SelectPolicy = 'Max' | 'Min' | 'Disabled';

export interface ScalingPolicy {
  type: PolicyType;
  value: number;
  periodSeconds: number;
}

/** autoscaling/v2 HPAScalingRules as written in the YAML: every field optional. */
export interface ScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: SelectPolicy;
  policies?: ScalingPolicy[];
  /** Fraction (0.1 = 10 %); the HPA's configurable tolerance. */
  tolerance?: number;
}

/** spec.advanced.horizontalPodAutoscalerConfig.behavior. Absent (undefined) is not the same as {}: see hpa.ts. */
export interface HpaBehavior {
  scaleUp?: ScalingRules;
  scaleDown?: ScalingRules;
}

export interface FilledRules {
  stabilizationWindowSeconds: number;
  selectPolicy: SelectPolicy;
  policies: ScalingPolicy[];
  tolerance: number;
}

export interface FilledBehavior {
  scaleUp: FilledRules;
  scaleDown: FilledRules;
}

export const DEFAULT_TOLERANCE = 0.1;

/**
 * The API server's defaults for a behavior that is set, field by field; scaleDown's window, when not given, is the
 * controller's downscale stabilization (300 s unless the controller flag says otherwise).
 */
export function fillBehavior(b: HpaBehavior, downscaleStabilizationSeconds: number, tolerance = DEFAULT_TOLERANCE): FilledBehavior {
  return {
    scaleUp: {
      stabilizationWindowSeconds: b.scaleUp?.stabilizationWindowSeconds ?? 0,
      selectPolicy: b.scaleUp?.selectPolicy ?? 'Max',
      policies: b.scaleUp?.policies ?? [
        { type: 'Pods', value: 4, periodSeconds: 15 },
        { type: 'Percent', value: 100, periodSeconds: 15 },
      ],
      tolerance: b.scaleUp?.tolerance ?? tolerance,
    },
    scaleDown: {
      stabilizationWindowSeconds: b.scaleDown?.stabilizationWindowSeconds ?? downscaleStabilizationSeconds,
      selectPolicy: b.scaleDown?.selectPolicy ?? 'Max',
      policies: b.scaleDown?.policies ?? [{ type: 'Percent', value: 100, periodSeconds: 15 }],
      tolerance: b.scaleDown?.tolerance ?? tolerance,
    },
  };
}

export interface Recommendation {
  at: number;
  replicas: number;
}

export interface ScaleEvent {
  at: number;
  /** Always positive: replicas added (up events) or removed (down events). */
  change: number;
}

/** Legacy path (behavior nil): the highest recommendation of the last window, the new one included. */
export function stabilizeLegacy(recs: readonly Recommendation[], desired: number, now: number, windowSeconds: number): {
  recommendation: number;
  recs: Recommendation[];
} {
  const cutoff = now - windowSeconds * 1000;
  let best = desired;
  // A sample exactly at the cutoff still counts, as in the controller (it drops only those before it).
  for (const r of recs) if (r.at >= cutoff && r.replicas > best) best = r.replicas;
  const kept = recs.filter((r) => r.at >= cutoff);
  kept.push({ at: now, replicas: desired });
  return { recommendation: best, recs: kept };
}

/**
 * Behavior path: scale-up follows the lowest recommendation of the up window, scale-down the highest of the down
 * window; the current count stays when it lies between the two.
 */
export function stabilizeWithBehavior(
  recs: readonly Recommendation[],
  desired: number,
  current: number,
  now: number,
  b: FilledBehavior,
): { recommendation: number; recs: Recommendation[]; upBound: number; downBound: number } {
  const upCutoff = now - b.scaleUp.stabilizationWindowSeconds * 1000;
  const downCutoff = now - b.scaleDown.stabilizationWindowSeconds * 1000;
  let up = desired;
  let down = desired;
  for (const r of recs) {
    if (r.at > upCutoff) up = Math.min(up, r.replicas);
    if (r.at > downCutoff) down = Math.max(down, r.replicas);
  }
  let recommendation = current;
  if (recommendation < up) recommendation = up;
  if (recommendation > down) recommendation = down;
  const oldest = Math.min(upCutoff, downCutoff);
  const kept = recs.filter((r) => r.at > oldest);
  kept.push({ at: now, replicas: desired });
  return { recommendation, recs: kept, upBound: up, downBound: down };
}

function changeWithin(events: readonly ScaleEvent[], periodSeconds: number, now: number): number {
  const cutoff = now - periodSeconds * 1000;
  let sum = 0;
  for (const e of events) if (e.at > cutoff) sum += e.change;
  return sum;
}

export interface Limit {
  replicas: number;
  /** The policy that set the limit, for the decision's reason. */
  policy?: ScalingPolicy;
  disabled?: boolean;
}

/** The most replicas the scaleUp policies allow now, counted from each policy's period start. */
export function scaleUpLimit(current: number, upEvents: readonly ScaleEvent[], downEvents: readonly ScaleEvent[], rules: FilledRules, now: number): Limit {
  if (rules.selectPolicy === 'Disabled') return { replicas: current, disabled: true };
  let result: Limit | undefined;
  for (const p of rules.policies) {
    const start = current - changeWithin(upEvents, p.periodSeconds, now) + changeWithin(downEvents, p.periodSeconds, now);
    // Rounded up: a small percentage of a small count must still allow one more replica.
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    const better = rules.selectPolicy === 'Min' ? proposed < (result?.replicas ?? Infinity) : proposed > (result?.replicas ?? -Infinity);
    if (better) result = { replicas: proposed, policy: p };
  }
  return result ?? { replicas: current };
}

/** The fewest replicas the scaleDown policies allow now. */
export function scaleDownLimit(current: number, upEvents: readonly ScaleEvent[], downEvents: readonly ScaleEvent[], rules: FilledRules, now: number): Limit {
  if (rules.selectPolicy === 'Disabled') return { replicas: current, disabled: true };
  let result: Limit | undefined;
  for (const p of rules.policies) {
    const start = current - changeWithin(upEvents, p.periodSeconds, now) + changeWithin(downEvents, p.periodSeconds, now);
    const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
    const better = rules.selectPolicy === 'Min' ? proposed > (result?.replicas ?? -Infinity) : proposed < (result?.replicas ?? Infinity);
    if (better) result = { replicas: proposed, policy: p };
  }
  return result ?? { replicas: current };
}

/** Events older than every policy's period (up and down: both kinds count in both limits) limit nothing. */
export function pruneEvents(events: readonly ScaleEvent[], b: FilledBehavior, now: number): ScaleEvent[] {
  const longest = Math.max(0, ...[...b.scaleUp.policies, ...b.scaleDown.policies].map((p) => p.periodSeconds));
  return events.filter((e) => e.at > now - longest * 1000);
}

export function describePolicy(p: ScalingPolicy): string {
  return `${p.type} ${p.value}${p.type === 'Percent' ? '%' : ''}/${p.periodSeconds}s`;
}
