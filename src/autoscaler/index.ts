/**
 * The autoscaler: ScaledObject / TriggerAuthentication YAML → typed specs, and the KEDA + HPA steps as pure
 * functions that the real-clock loop (supervisor) and the simulator both drive through createAutoscaler().
 */
import type { Manifest } from '../components/manifests.js';
import type { ResolvedTrigger } from './scaler.js';
import { parseScaledObjects, type ScaledObjectSpec } from './scaledobject.js';
import { configMapLookup, parseTriggerAuthentications, resolveTriggers, type ResolveContext } from './triggerauth.js';

export interface ScalingConfig {
  spec: ScaledObjectSpec;
  /** spec.triggers with authenticationRef and <param>FromEnv resolved, in order. */
  triggers: ResolvedTrigger[];
}

export interface LoadedScaling {
  scaledObjects: ScalingConfig[];
  /** One-line notices to log once (legacy API read as v2, sources only a cluster can resolve). */
  notices: string[];
}

/**
 * Every ScaledObject of `manifests` (from loadManifests / loadResources) with its triggers resolved through the
 * TriggerAuthentications, Secrets (`ctx.secrets`), ConfigMaps and the target app's environment (`ctx.env`).
 * Throws ConfigError with file:line and field on the first problem.
 */
export function loadScaledObjects(manifests: readonly Manifest[], ctx: ResolveContext): LoadedScaling {
  const { scaledObjects, notices } = parseScaledObjects(manifests);
  const auths = parseTriggerAuthentications(manifests);
  const full: ResolveContext = { ...ctx, configMaps: ctx.configMaps ?? configMapLookup(manifests) };
  const out: ScalingConfig[] = [];
  for (const spec of scaledObjects) out.push({ spec, triggers: resolveTriggers(spec, auths, full, notices) });
  return { scaledObjects: out, notices: [...new Set(notices)] };
}

export { parseScaledObjects, parseScaledObject, isScaledObject, DEFAULTS, KEDA_API, LEGACY_KEDA_API } from './scaledobject.js';
export type { ScaledObjectSpec, TriggerSpec, FallbackBehavior, ParsedScaledObjects } from './scaledobject.js';
export { parseTriggerAuthentications, parseTriggerAuthentication, resolveTriggers, configMapLookup } from './triggerauth.js';
export type { TriggerAuthSpec, ResolveContext, TargetEnv } from './triggerauth.js';
export type { Scaler, MetricType, MetricAndActivity, ResolvedTrigger, TriggerDefinition, QueueTriggerParams } from './scaler.js';
export { createAutoscaler } from './autoscaler.js';
export type { Autoscaler, AutoscalerOptions, AutoscalerSpec, SyncInput } from './autoscaler.js';
export { kedaStep, serveMetrics } from './keda.js';
export type { KedaSpec } from './keda.js';
export { hpaStep, proposeReplicas, DEFAULT_HPA_OPTIONS } from './hpa.js';
export type { HpaSpec, HpaOptions, ObservedReplicas } from './hpa.js';
export { initialState } from './state.js';
export type { AutoscalerState, Decision, StepResult, Observation, ServedMetric, TriggerTarget } from './state.js';
export type { HpaBehavior, ScalingRules, ScalingPolicy } from './behavior.js';
