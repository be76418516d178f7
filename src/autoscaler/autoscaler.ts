/**
 * The facade the real-clock loop (supervisor) and the simulator both drive. Pure: the caller owns the clock,
 * reads the triggers, starts/stops replicas, and hands the returned state back on the next call.
 *
 *   const a = createAutoscaler(spec, { triggers }, Date.now());
 *   let state = a.initial;
 *   // every spec.pollingInterval (and, locally, as soon as work lands on an empty queue at 0 replicas):
 *   ({ state, desiredReplicas, decision } = a.poll(state, [{ value: 23 }], Date.now()));
 *   // every HPA sync period (15 s):
 *   ({ state, desiredReplicas, decision } = a.sync(state, Date.now()));
 *   // decision?.reason: "queue 23 > activation 0: 0 → 1", "ceil(23/5)=5, limited to 4 by the scale-up limit ..."
 *
 * poll = the KEDA step (0 ↔ 1, cooldown, idle, min, fallback, pause); sync = the HPA step (1 ↔ N) over the
 * metrics of the last poll, or over fresh readings when given (KEDA's metrics server reads the scaler for each
 * HPA request unless useCachedMetrics is set).
 */
import type { ScaledObjectSpec } from './scaledobject.js';
import { kedaStep, serveMetrics, type KedaSpec } from './keda.js';
import { hpaStep, DEFAULT_HPA_OPTIONS, type HpaOptions, type HpaSpec, type ObservedReplicas } from './hpa.js';
import { initialState, type AutoscalerState, type Observation, type StepResult, type TriggerTarget } from './state.js';

export type AutoscalerSpec = KedaSpec & HpaSpec & Pick<ScaledObjectSpec, 'pollingInterval'>;

export interface AutoscalerOptions {
  /** One per spec.triggers entry, in order: from each Scaler's metricType / target / activationTarget. */
  triggers: TriggerTarget[];
  /** The HPA controller's sync period in seconds (default 15). */
  syncPeriodSeconds?: number;
  /** Overrides spec.pollingInterval (seconds). */
  pollingIntervalSeconds?: number;
  /** The HPA controller's downscale stabilization window in seconds (default 300). */
  downscaleStabilizationSeconds?: number;
  /** The HPA controller's tolerance (default 0.1). */
  tolerance?: number;
  /** Replicas when the loop starts (default 0). */
  initialReplicas?: number;
}

export interface SyncInput {
  /** Fresh readings for the HPA (otherwise the last poll's metrics). */
  observations?: readonly Observation[];
  /** Pods that exist / are ready, when they lag the desired count (status.replicas, ready pods). */
  observed?: ObservedReplicas;
}

export interface Autoscaler {
  readonly initial: AutoscalerState;
  /** Seconds between polls (spec.pollingInterval unless overridden). */
  readonly pollingIntervalSeconds: number;
  readonly syncPeriodSeconds: number;
  poll(state: AutoscalerState, observations: readonly Observation[], now: number): StepResult;
  sync(state: AutoscalerState, now: number, input?: SyncInput): StepResult;
  /** When each step is next due (ms), from the state's last poll and sync. */
  nextDue(state: AutoscalerState): { poll: number; sync: number };
}

export function createAutoscaler(spec: AutoscalerSpec, options: AutoscalerOptions, now: number): Autoscaler {
  const triggers = options.triggers;
  const pollingIntervalSeconds = options.pollingIntervalSeconds ?? spec.pollingInterval;
  const syncPeriodSeconds = options.syncPeriodSeconds ?? 15;
  const hpaOptions: HpaOptions = {
    downscaleStabilizationSeconds: options.downscaleStabilizationSeconds ?? DEFAULT_HPA_OPTIONS.downscaleStabilizationSeconds,
    tolerance: options.tolerance ?? DEFAULT_HPA_OPTIONS.tolerance,
  };
  const initial = initialState(now, options.initialReplicas ?? 0, triggers.length);
  return {
    initial,
    pollingIntervalSeconds,
    syncPeriodSeconds,
    poll: (state, observations, at) => kedaStep(spec, triggers, state, observations, at),
    sync: (state, at, input = {}) => {
      let s = state;
      let metrics = state.metrics;
      if (input.observations) {
        const served = serveMetrics(spec, triggers, state, input.observations);
        metrics = served.metrics;
        s = { ...state, metrics, failures: served.failures };
      }
      return hpaStep(spec, triggers, s, metrics, at, hpaOptions, input.observed);
    },
    nextDue: (state) => ({
      poll: (state.lastPollAt ?? now) + pollingIntervalSeconds * 1000,
      sync: (state.lastSyncAt ?? now) + syncPeriodSeconds * 1000,
    }),
  };
}
