/**
 * ScaledObject (keda.sh/v1alpha1, and the legacy KEDA 1.x keda.k8s.io/v1alpha1) → a typed spec with KEDA's
 * defaults. What the CRD rejects is rejected here, and so are KEDA's admission-webhook checks (idle < min,
 * min <= max, fallback needs a queue trigger, unique trigger names), each with file:line and the field.
 */
import type { FieldPath, Manifest } from '../components/manifests.js';
import type { MetricType } from './scaler.js';
import type { HpaBehavior, ScalingRules } from './behavior.js';
import { validate, parseQuantity } from './schema.js';
import { SCALEDOBJECT_DOC, FALLBACK_BEHAVIORS } from './scaledobject-schema.js';

export const KEDA_API = 'keda.sh/v1alpha1';
export const LEGACY_KEDA_API = 'keda.k8s.io/v1alpha1';

export const PAUSED_ANNOTATION = 'autoscaling.keda.sh/paused';
export const PAUSED_REPLICAS_ANNOTATION = 'autoscaling.keda.sh/paused-replicas';
export const PAUSED_SCALE_IN_ANNOTATION = 'autoscaling.keda.sh/paused-scale-in';
export const PAUSED_SCALE_OUT_ANNOTATION = 'autoscaling.keda.sh/paused-scale-out';
export const FORCE_ACTIVATION_ANNOTATION = 'autoscaling.keda.sh/force-activation';

/** KEDA's defaults (apis/keda/v1alpha1, pkg/scaling/executor). */
export const DEFAULTS = {
  pollingInterval: 30,
  cooldownPeriod: 300,
  initialCooldownPeriod: 0,
  minReplicaCount: 0,
  maxReplicaCount: 100,
} as const;

const MAX_LABEL = 63;

export type FallbackBehavior = (typeof FALLBACK_BEHAVIORS)[number];

export interface TriggerSpec {
  index: number;
  type: string;
  name?: string;
  /** As written (after the legacy renames); <param>FromEnv and authenticationRef are resolved in triggerauth.ts. */
  metadata: Record<string, string>;
  authenticationRef?: { name: string; kind: 'TriggerAuthentication' | 'ClusterTriggerAuthentication' };
  metricType: MetricType;
  useCachedMetrics: boolean;
}

export interface ScaledObjectSpec {
  name: string;
  apiVersion: string;
  /** The app (Deployment) it scales: scaleTargetRef.name. */
  target: string;
  targetKind: string;
  envSourceContainerName?: string;
  /** Seconds. */
  pollingInterval: number;
  cooldownPeriod: number;
  initialCooldownPeriod: number;
  minReplicaCount: number;
  maxReplicaCount: number;
  idleReplicaCount?: number;
  fallback?: { failureThreshold: number; replicas: number; behavior: FallbackBehavior };
  /** Undefined when not set: the HPA then takes its legacy path, which differs from the defaults of an empty behavior. */
  behavior?: HpaBehavior;
  hpaName: string;
  restoreToOriginalReplicaCount: boolean;
  scalingModifiers?: { formula?: string; target?: string; activationTarget?: string; metricType?: MetricType };
  triggers: TriggerSpec[];
  /** autoscaling.keda.sh/paused: true, or paused-replicas present. */
  paused: boolean;
  pausedReplicas?: number;
  pausedScaleIn: boolean;
  pausedScaleOut: boolean;
  forceActivation: boolean;
  file: string;
  line: number;
  /** file and line of a field of this document. */
  where(path: FieldPath): { file: string; line: number };
}

export interface ParsedScaledObjects {
  scaledObjects: ScaledObjectSpec[];
  /** One-line notices for the caller to log once (legacy API mapped, settings not applied locally). */
  notices: string[];
}

export function isScaledObject(m: Manifest): boolean {
  return m.kind === 'ScaledObject' && (m.apiVersion === KEDA_API || m.apiVersion === LEGACY_KEDA_API || m.apiVersion.startsWith('keda.'));
}

/** Every ScaledObject among `manifests`. Throws ConfigError (file:line, field) on the first invalid one. */
export function parseScaledObjects(manifests: readonly Manifest[]): ParsedScaledObjects {
  const scaledObjects: ScaledObjectSpec[] = [];
  const notices: string[] = [];
  const byTarget = new Map<string, ScaledObjectSpec>();
  const byName = new Map<string, ScaledObjectSpec>();
  for (const m of manifests) {
    if (!isScaledObject(m)) continue;
    const so = parseScaledObject(m, notices);
    const sameName = byName.get(so.name);
    if (sameName) throw m.error(`ScaledObject '${so.name}' is defined twice (first at ${sameName.file}:${sameName.line})`, ['metadata', 'name']);
    const other = byTarget.get(so.target);
    if (other) {
      throw m.error(
        `ScaledObject ${so.name}: the workload '${so.target}' is already managed by the ScaledObject '${other.name}' (${other.file}:${other.line})`,
        ['spec', 'scaleTargetRef', 'name'],
      );
    }
    byName.set(so.name, so);
    byTarget.set(so.target, so);
    scaledObjects.push(so);
  }
  return { scaledObjects, notices };
}

export function parseScaledObject(m: Manifest, notices: string[] = []): ScaledObjectSpec {
  if (m.apiVersion !== KEDA_API && m.apiVersion !== LEGACY_KEDA_API) {
    throw m.error(`unsupported apiVersion '${m.apiVersion}' for ScaledObject (expected ${KEDA_API}, or the legacy ${LEGACY_KEDA_API})`, ['apiVersion']);
  }
  const name = m.name;
  if (!name) throw m.error('ScaledObject is missing metadata.name', ['metadata']);
  const subject = `ScaledObject ${name}`;
  const legacy = m.apiVersion === LEGACY_KEDA_API;
  const body = legacy ? mapLegacy(m, subject, notices) : m.body;
  validate(m, subject, body, SCALEDOBJECT_DOC, []);

  const spec = body.spec as Record<string, unknown>;
  const ref = spec.scaleTargetRef as Record<string, unknown>;
  const target = ref.name as string;
  if (target === '') throw m.error(`${subject}: scaleTargetRef.name must not be empty`, ['spec', 'scaleTargetRef', 'name']);

  const num = (k: string): number | undefined => (typeof spec[k] === 'number' ? (spec[k] as number) : undefined);
  const minSet = num('minReplicaCount');
  const minReplicaCount = minSet ?? DEFAULTS.minReplicaCount;
  const maxReplicaCount = num('maxReplicaCount') ?? DEFAULTS.maxReplicaCount;
  const idleReplicaCount = num('idleReplicaCount');

  // The CRD's own rule compares the raw numbers.
  if (minReplicaCount > maxReplicaCount) {
    throw m.error(`${subject}: minReplicaCount (${minReplicaCount}) must be less than or equal to maxReplicaCount (${maxReplicaCount})`, ['spec', 'minReplicaCount']);
  }
  // KEDA's webhook compares the HPA's minimum (at least 1 once minReplicaCount is set) with idleReplicaCount.
  const webhookMin = minSet === undefined ? 0 : Math.max(minSet, 1);
  if (idleReplicaCount !== undefined && idleReplicaCount >= webhookMin) {
    throw m.error(
      `${subject}: idleReplicaCount (${idleReplicaCount}) must be less than minReplicaCount (${webhookMin}${minSet === undefined ? ', its default' : minSet === 0 ? ', as the HPA counts it' : ''})`,
      ['spec', 'idleReplicaCount'],
    );
  }

  const triggers = (spec.triggers as Record<string, unknown>[]).map((t, i) => parseTrigger(m, subject, t, i));
  const names = new Map<string, number>();
  for (const t of triggers) {
    if (t.name === undefined || t.name === '') continue;
    if (names.has(t.name)) {
      throw m.error(`${subject}: trigger name '${t.name}' is used by triggers ${names.get(t.name)} and ${t.index}; it must be unique`, ['spec', 'triggers', t.index, 'name']);
    }
    names.set(t.name, t.index);
  }

  let fallback: ScaledObjectSpec['fallback'];
  if (spec.fallback) {
    const f = spec.fallback as Record<string, unknown>;
    fallback = {
      failureThreshold: f.failureThreshold as number,
      replicas: f.replicas as number,
      behavior: (f.behavior as FallbackBehavior | undefined) ?? 'static',
    };
    if (!triggers.some((t) => t.type !== 'cpu' && t.type !== 'memory')) {
      throw m.error(`${subject}: fallback needs at least one trigger that is not cpu or memory (a metric with an AverageValue or Value target)`, ['spec', 'fallback']);
    }
  }

  const advanced = (spec.advanced ?? {}) as Record<string, unknown>;
  const hpaConfig = (advanced.horizontalPodAutoscalerConfig ?? {}) as Record<string, unknown>;
  const behavior = hpaConfig.behavior ? parseBehavior(m, subject, hpaConfig.behavior as Record<string, unknown>) : undefined;
  const hpaName = typeof hpaConfig.name === 'string' && hpaConfig.name ? hpaConfig.name : `keda-hpa-${name}`;
  // KEDA's webhook: both names become label values, limited to 63 characters.
  if (name.length > MAX_LABEL) {
    throw m.error(`${subject}: the name is ${name.length} characters long; KEDA allows at most ${MAX_LABEL} (it becomes a label value)`, ['metadata', 'name']);
  }
  if (hpaName.length > MAX_LABEL) {
    throw m.error(
      `${subject}: the HPA name '${hpaName}' is ${hpaName.length} characters long; at most ${MAX_LABEL}: set spec.advanced.horizontalPodAutoscalerConfig.name or shorten the name`,
      ['metadata', 'name'],
    );
  }

  let scalingModifiers: ScaledObjectSpec['scalingModifiers'];
  if (advanced.scalingModifiers && Object.keys(advanced.scalingModifiers as object).length > 0) {
    const sm = advanced.scalingModifiers as Record<string, string>;
    scalingModifiers = { formula: sm.formula, target: sm.target, activationTarget: sm.activationTarget, metricType: sm.metricType as MetricType | undefined };
    if (sm.formula && !sm.target) throw m.error(`${subject}: scalingModifiers.formula is given but target is empty`, ['spec', 'advanced', 'scalingModifiers']);
    notices.push(`${m.file}:${m.lineOf(['spec', 'advanced', 'scalingModifiers'])}: ${subject}: advanced.scalingModifiers is not applied locally; each trigger scales on its own metric`);
  }
  if (fallback?.behavior === 'scalingModifiers' && !scalingModifiers?.formula) {
    throw m.error(`${subject}: fallback.behavior scalingModifiers requires advanced.scalingModifiers.formula`, ['spec', 'fallback', 'behavior']);
  }

  const annotations = readAnnotations(m);
  const pausedReplicasText = annotations[PAUSED_REPLICAS_ANNOTATION];
  let pausedReplicas: number | undefined;
  if (pausedReplicasText !== undefined) {
    if (!/^\d+$/.test(pausedReplicasText.trim())) {
      throw m.error(`${subject}: annotation ${PAUSED_REPLICAS_ANNOTATION} must be a whole number of replicas, got '${pausedReplicasText}'`, ['metadata', 'annotations', PAUSED_REPLICAS_ANNOTATION]);
    }
    pausedReplicas = Number(pausedReplicasText.trim());
  }

  return {
    name,
    apiVersion: m.apiVersion,
    target,
    targetKind: typeof ref.kind === 'string' && ref.kind ? ref.kind : 'Deployment',
    envSourceContainerName: typeof ref.envSourceContainerName === 'string' ? ref.envSourceContainerName : undefined,
    pollingInterval: num('pollingInterval') ?? DEFAULTS.pollingInterval,
    cooldownPeriod: num('cooldownPeriod') ?? DEFAULTS.cooldownPeriod,
    initialCooldownPeriod: num('initialCooldownPeriod') ?? DEFAULTS.initialCooldownPeriod,
    minReplicaCount,
    maxReplicaCount,
    idleReplicaCount,
    fallback,
    behavior,
    hpaName,
    restoreToOriginalReplicaCount: advanced.restoreToOriginalReplicaCount === true,
    scalingModifiers,
    triggers,
    paused: pausedReplicas !== undefined || boolAnnotation(annotations[PAUSED_ANNOTATION]),
    pausedReplicas,
    pausedScaleIn: boolAnnotation(annotations[PAUSED_SCALE_IN_ANNOTATION]),
    pausedScaleOut: boolAnnotation(annotations[PAUSED_SCALE_OUT_ANNOTATION]),
    forceActivation: boolAnnotation(annotations[FORCE_ACTIVATION_ANNOTATION]),
    file: m.file,
    line: m.line,
    where: (path) => ({ file: m.file, line: m.lineOf(path) }),
  };
}

function parseTrigger(m: Manifest, subject: string, t: Record<string, unknown>, index: number): TriggerSpec {
  const type = t.type as string;
  if (type === '') throw m.error(`${subject}: triggers[${index}].type must not be empty`, ['spec', 'triggers', index, 'type']);
  const metricType = (t.metricType as string | undefined) ?? 'AverageValue';
  if (metricType === 'Utilization' && type !== 'cpu' && type !== 'memory') {
    throw m.error(`${subject}: triggers[${index}] (${type}): metricType Utilization is only for cpu and memory triggers; use AverageValue or Value`, ['spec', 'triggers', index, 'metricType']);
  }
  const ref = t.authenticationRef as { name: string; kind?: string } | undefined;
  return {
    index,
    type,
    name: typeof t.name === 'string' && t.name !== '' ? t.name : undefined,
    metadata: { ...((t.metadata ?? {}) as Record<string, string>) },
    authenticationRef: ref
      ? { name: ref.name, kind: (ref.kind as 'TriggerAuthentication' | 'ClusterTriggerAuthentication' | undefined) ?? 'TriggerAuthentication' }
      : undefined,
    metricType: metricType === 'Value' ? 'Value' : 'AverageValue',
    useCachedMetrics: t.useCachedMetrics === true,
  };
}

function parseBehavior(m: Manifest, subject: string, raw: Record<string, unknown>): HpaBehavior {
  const out: HpaBehavior = {};
  for (const dir of ['scaleUp', 'scaleDown'] as const) {
    const r = raw[dir] as Record<string, unknown> | undefined | null;
    if (!r) continue;
    const at: FieldPath = ['spec', 'advanced', 'horizontalPodAutoscalerConfig', 'behavior', dir];
    const rules: ScalingRules = {};
    if (typeof r.stabilizationWindowSeconds === 'number') rules.stabilizationWindowSeconds = r.stabilizationWindowSeconds;
    if (typeof r.selectPolicy === 'string') rules.selectPolicy = r.selectPolicy as ScalingRules['selectPolicy'];
    if (Array.isArray(r.policies)) {
      // An explicit empty list is not defaulted by the API server: the HPA refuses it.
      if (r.policies.length === 0) throw m.error(`${subject}: behavior.${dir}.policies must specify at least one policy`, [...at, 'policies']);
      rules.policies = (r.policies as Record<string, unknown>[]).map((p) => ({
        type: p.type as 'Pods' | 'Percent',
        value: p.value as number,
        periodSeconds: p.periodSeconds as number,
      }));
    }
    if (r.tolerance !== undefined && r.tolerance !== null) {
      const q = parseQuantity(r.tolerance);
      if (q === undefined || q < 0) throw m.error(`${subject}: behavior.${dir}.tolerance must be a number of at least 0`, [...at, 'tolerance']);
      rules.tolerance = q;
    }
    out[dir] = rules;
  }
  return out;
}

function readAnnotations(m: Manifest): Record<string, string> {
  const meta = m.body.metadata as Record<string, unknown> | undefined;
  const ann = meta?.annotations;
  if (ann === undefined || ann === null) return {};
  if (typeof ann !== 'object' || Array.isArray(ann)) throw m.error(`ScaledObject ${m.name}: metadata.annotations must be a mapping`, ['metadata', 'annotations']);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ann as Record<string, unknown>)) {
    if (typeof v !== 'string') throw m.error(`ScaledObject ${m.name}: annotation ${k} must be a string (quote it: '${String(v)}')`, ['metadata', 'annotations', k]);
    out[k] = v;
  }
  return out;
}

/** KEDA reads these annotations with Go's ParseBool, and anything that does not parse counts as true. */
function boolAnnotation(v: string | undefined): boolean {
  if (v === undefined) return false;
  const t = v.trim();
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(t)) return false;
  return true;
}

/**
 * KEDA 1.x shape → KEDA 2: scaleTargetRef.deploymentName (or the deploymentName label) becomes name; the
 * azure-servicebus trigger's queueLength becomes messageCount and its `connection` (an environment variable
 * name in 1.x) becomes connectionFromEnv.
 */
function mapLegacy(m: Manifest, subject: string, notices: string[]): Record<string, unknown> {
  const body = structuredClone(m.body);
  const changes: string[] = [];
  const spec = body.spec as Record<string, unknown> | undefined;
  if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
    if (spec.scaleType !== undefined) {
      if (spec.scaleType !== 'deployment') {
        throw m.error(`${subject}: KEDA 1.x scaleType '${String(spec.scaleType)}' is not supported locally (only deployment; jobs are ScaledJobs in KEDA 2)`, ['spec', 'scaleType']);
      }
      delete spec.scaleType;
      changes.push('scaleType deployment dropped');
    }
    const ref = spec.scaleTargetRef as Record<string, unknown> | undefined;
    const labels = ((body.metadata as Record<string, unknown> | undefined)?.labels ?? {}) as Record<string, unknown>;
    if (ref && typeof ref === 'object' && !Array.isArray(ref)) {
      if (ref.deploymentName !== undefined) {
        if (ref.name === undefined) ref.name = ref.deploymentName;
        delete ref.deploymentName;
        changes.push('scaleTargetRef.deploymentName → name');
      }
      if ('containerName' in ref) {
        ref.envSourceContainerName = ref.containerName;
        delete ref.containerName;
        changes.push('scaleTargetRef.containerName → envSourceContainerName');
      }
      if (ref.name === undefined && typeof labels.deploymentName === 'string') {
        ref.name = labels.deploymentName;
        changes.push('label deploymentName → scaleTargetRef.name');
      }
    } else if (ref === undefined && typeof labels.deploymentName === 'string') {
      spec.scaleTargetRef = { name: labels.deploymentName };
      changes.push('label deploymentName → scaleTargetRef.name');
    }
    if (Array.isArray(spec.triggers)) {
      for (const t of spec.triggers as Record<string, unknown>[]) {
        const md = t?.metadata as Record<string, unknown> | undefined;
        if (t?.type !== 'azure-servicebus' || !md || typeof md !== 'object') continue;
        if (md.queueLength !== undefined && md.messageCount === undefined) {
          md.messageCount = md.queueLength;
          delete md.queueLength;
          changes.push('azure-servicebus queueLength → messageCount');
        }
        if (typeof md.connection === 'string' && md.connectionFromEnv === undefined) {
          md.connectionFromEnv = md.connection;
          delete md.connection;
          changes.push('azure-servicebus connection (an environment variable name) → connectionFromEnv');
        }
      }
    }
  }
  const list = [...new Set(changes)];
  notices.push(
    `${m.file}:${m.line}: ${subject} uses the KEDA 1.x API ${LEGACY_KEDA_API}; read as ${KEDA_API}${list.length ? ` (${list.join(', ')})` : ''}`,
  );
  return body;
}
