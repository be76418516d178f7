/**
 * What the KEDA and HPA steps remember between calls, and what they return. Plain data: the real-clock loop can
 * print or persist it, the simulator copies it freely. Times are milliseconds on the caller's clock.
 */
import type { MetricType } from './scaler.js';
import type { Recommendation, ScaleEvent } from './behavior.js';

/** One trigger as the steps see it: its target and activation (from the Scaler), and a label for reasons. */
export interface TriggerTarget {
  /** Used in reasons: "queue 23 > activation 0". */
  label: string;
  metricType: MetricType;
  target: number;
  activationTarget: number;
}

/** A reading of one trigger: its metric, or why it could not be read. */
export type Observation = { value: number } | { error: string };

/** The metric served to the HPA for one trigger after fallback, or the error it gets instead. */
export type ServedMetric = { value: number; fallback?: boolean } | { error: string };

export interface AutoscalerState {
  /** The replica count the autoscaler has set on the target (Kubernetes' scale.spec.replicas). */
  replicas: number;
  /** When the ScaledObject was created (initialCooldownPeriod counts from here). */
  createdAt: number;
  /** Last time a poll found a trigger active; undefined until one did. */
  lastActiveTime?: number;
  /** Consecutive failures per trigger, counted only when a fallback is configured (as KEDA does). */
  failures: number[];
  /** The last metric per trigger, as the HPA reads it. */
  metrics: ServedMetric[];
  active: boolean;
  /** HPA memory. */
  recommendations: Recommendation[];
  upEvents: ScaleEvent[];
  downEvents: ScaleEvent[];
  hpaSeen: boolean;
  lastPollAt?: number;
  lastSyncAt?: number;
}

export interface Decision {
  at: number;
  kind: 'keda' | 'hpa';
  from: number;
  to: number;
  /** In words, e.g. "queue 23 > activation 0: 0 → 1". */
  reason: string;
}

export interface StepResult {
  state: AutoscalerState;
  /** The replica count the target should have now (state.replicas). */
  desiredReplicas: number;
  /** Present when this step changed the replica count. */
  decision?: Decision;
  /** What the step concluded, changed or not ("cooling down: inactive for 40s of cooldownPeriod 300s"). */
  note: string;
}

export function initialState(now: number, replicas: number, triggerCount: number): AutoscalerState {
  return {
    replicas,
    createdAt: now,
    failures: new Array<number>(triggerCount).fill(0),
    metrics: new Array<ServedMetric>(triggerCount).fill({ error: 'not read yet' }),
    active: false,
    recommendations: [],
    upEvents: [],
    downEvents: [],
    hpaSeen: false,
  };
}

/** Numbers in reasons: integers as they are, others with at most 3 decimals. */
export function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000);
}
