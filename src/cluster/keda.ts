/**
 * KEDA kinds as a cluster with KEDA 2.20 takes them. ScaledObject, TriggerAuthentication and
 * ClusterTriggerAuthentication go through the same parsers `qscale up` uses (KEDA's CRD schemas and admission
 * webhook rules, test/autoscaler/crd.test.ts keeps them in step with the CRDs); ScaledJob has its own schema here,
 * its jobTargetRef checked as the batch/v1 JobSpec it is. The legacy KEDA 1.x API is refused: a KEDA 2 cluster has
 * no keda.k8s.io CRDs.
 *
 * Then each trigger qscale implements is read as KEDA's scaler reads it (the parameters KEDA would refuse when it
 * builds the scaler, leaving the ScaledObject not Ready), when everything it needs is in these files: the
 * TriggerAuthentication, its Secrets and ConfigMaps, and the target Deployment's container env.
 */
import type { Manifest } from '../components/manifests.js';
import { validate, type Schema } from '../autoscaler/schema.js';
import { SCALEDOBJECT_SPEC } from '../autoscaler/scaledobject-schema.js';
import {
  KEDA_API, LEGACY_KEDA_API, parseScaledObject, parseScaledObjects, parseTriggerAuthentication, resolveTriggers,
  type ScaledObjectSpec, type TriggerAuthSpec,
} from '../autoscaler/index.js';
import { findTrigger } from '../backends/registry.js';
import { checkTrigger } from '../supervisor/plan.js';
import type { SecretLookup } from '../components/resources.js';
import { ConfigError } from '../errors.js';
import { QSCALE_ONLY_TRIGGERS } from './dapr-components.js';
import { checkJobSpec } from './kubernetes.js';
import { errorAt } from './read.js';
import { KEDA_VERSION } from './versions.js';

const str: Schema = { type: 'string' };
const int = (minimum?: number): Schema => ({ type: 'integer', minimum });
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });

/** keda.sh/v1alpha1 ScaledJob spec (config/crd/bases/keda.sh_scaledjobs.yaml); jobTargetRef is a batch/v1 JobSpec. */
export const SCALEDJOB_SPEC: Schema = {
  type: 'object',
  required: ['jobTargetRef', 'triggers'],
  properties: {
    jobTargetRef: { type: 'any' },
    envSourceContainerName: str,
    pollingInterval: int(1),
    minReplicaCount: int(0),
    maxReplicaCount: int(1),
    successfulJobsHistoryLimit: int(0),
    failedJobsHistoryLimit: int(0),
    rolloutStrategy: oneOf('gradual', 'immediate'),
    rollout: { type: 'object', properties: { strategy: oneOf('gradual', 'immediate'), propagationPolicy: oneOf('foreground', 'background') } },
    scalingStrategy: {
      type: 'object',
      properties: {
        strategy: oneOf('default', 'custom', 'accurate', 'eager'),
        customScalingQueueLengthDeduction: int(),
        customScalingRunningJobPercentage: str,
        pendingPodConditions: { type: 'array', items: str },
        multipleScalersCalculation: oneOf('min', 'avg', 'sum', 'max'),
      },
    },
    // The ScaledObject's triggers, but metricType is free: no HPA is made from a ScaledJob.
    triggers: scaledJobTriggers(),
  },
};

function scaledJobTriggers(): Schema {
  const so = SCALEDOBJECT_SPEC as Extract<Schema, { type: 'object' }>;
  const triggers = so.properties.triggers as Extract<Schema, { type: 'array' }>;
  const item = triggers.items as Extract<Schema, { type: 'object' }>;
  return { ...triggers, items: { ...item, properties: { ...item.properties, metricType: str } } };
}

const SCALEDJOB_DOC: Schema = {
  type: 'object',
  required: ['spec'],
  properties: { apiVersion: str, kind: str, metadata: { type: 'any' }, spec: SCALEDJOB_SPEC, status: { type: 'any' } },
};

export const KEDA_KINDS = new Set(['ScaledObject', 'ScaledJob', 'TriggerAuthentication', 'ClusterTriggerAuthentication']);

export interface KedaContext {
  manifests: readonly Manifest[];
  secrets: { has(name: string): boolean; lookup: SecretLookup };
}

export interface KedaFindings {
  errors: ConfigError[];
  notes: string[];
  /** One entry per document checked, and per trigger read. */
  checked: Array<{ kind: string; name: string; where: string; note: string; manifest: Manifest }>;
}

/** Every KEDA document of `manifests` (keda.sh and the legacy keda.k8s.io). */
export function checkKeda(ctx: KedaContext): KedaFindings {
  const out: KedaFindings = { errors: [], notes: [], checked: [] };
  const scaledObjects: Array<{ m: Manifest; spec: ScaledObjectSpec }> = [];
  const auths = new Map<string, TriggerAuthSpec>();
  const crd = `KEDA ${KEDA_VERSION} CRD`;
  for (const m of ctx.manifests) {
    if (!KEDA_KINDS.has(m.kind) || !m.apiVersion.startsWith('keda.')) continue;
    if (m.apiVersion === LEGACY_KEDA_API) {
      out.errors.push(errorAt(m, 
        `${m.kind} ${m.name}: ${LEGACY_KEDA_API} is KEDA 1.x's API; a KEDA 2 cluster has no such CRD and \`kubectl apply\` refuses it. Write it as ${KEDA_API} (docs/autoscaling.md lists the renames)`,
        ['apiVersion'],
      ));
      continue;
    }
    if (m.apiVersion !== KEDA_API) {
      out.errors.push(errorAt(m, `${m.kind} ${m.name}: KEDA serves ${m.kind} as ${KEDA_API}, not ${m.apiVersion}`, ['apiVersion']));
      continue;
    }
    try {
      if (m.kind === 'ScaledObject') {
        scaledObjects.push({ m, spec: parseScaledObject(m) });
        out.checked.push({ kind: m.kind, name: m.name, where: '', note: `${KEDA_API}: ${crd} and admission rules`, manifest: m });
      } else if (m.kind === 'ScaledJob') {
        checkScaledJob(m, out);
      } else {
        const a = parseTriggerAuthentication(m);
        auths.set(`${a.kind}/${a.name}`, a);
        out.checked.push({ kind: m.kind, name: m.name, where: '', note: `${KEDA_API}: ${crd}`, manifest: m });
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.errors.push(err);
    }
  }
  // Across documents: the same name twice, two ScaledObjects on one workload (KEDA's webhook refuses the second).
  if (scaledObjects.length > 1) {
    try {
      parseScaledObjects(scaledObjects.map((s) => s.m));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.errors.push(err);
    }
  }
  for (const { m, spec } of scaledObjects) checkTriggers(m, spec, auths, ctx, out);
  return out;
}

function checkScaledJob(m: Manifest, out: KedaFindings): void {
  const subject = `ScaledJob ${m.name}`;
  // The JobSpec is checked whatever the rest says: both sets of errors are worth seeing at once.
  const spec = m.body.spec as { jobTargetRef?: unknown; triggers?: unknown } | undefined;
  if (spec?.jobTargetRef && typeof spec.jobTargetRef === 'object') {
    for (const issue of checkJobSpec(spec.jobTargetRef, ['spec', 'jobTargetRef'])) out.errors.push(errorAt(m, `${subject}: ${issue.message}`, issue.path));
  }
  validate(m, subject, m.body, SCALEDJOB_DOC, []);
  (spec!.triggers as Array<{ type: string }>).forEach((t, i) => {
    if (t.type === '') throw errorAt(m, `${subject}: spec.triggers[${i}].type must not be empty`, ['spec', 'triggers', i, 'type']);
  });
  out.checked.push({ kind: m.kind, name: m.name, where: '', note: `${KEDA_API}: KEDA ${KEDA_VERSION} CRD, jobTargetRef as batch/v1 JobSpec`, manifest: m });
}

/** Why a trigger's parameters cannot be read from these files alone, or undefined when they can. */
function unresolvable(spec: ScaledObjectSpec, t: ScaledObjectSpec['triggers'][number], auths: Map<string, TriggerAuthSpec>, ctx: KedaContext, env: EnvSource): string | undefined {
  const usesEnv = Object.keys(t.metadata).some((k) => k.endsWith('FromEnv'));
  if (t.authenticationRef) {
    const a = auths.get(`${t.authenticationRef.kind}/${t.authenticationRef.name}`);
    if (!a) return `${t.authenticationRef.kind} ${t.authenticationRef.name} is not in these files`;
    const secret = a.secretTargetRef.find((r) => !ctx.secrets.has(r.name));
    if (secret) return `Secret ${secret.name} is not in these files`;
    const cm = a.configMapTargetRef.find((r) => !ctx.manifests.some((m) => m.kind === 'ConfigMap' && m.name === r.name));
    if (cm) return `ConfigMap ${cm.name} is not in these files`;
    if (a.env.length > 0 && !env.has(spec.target)) return `it reads the env of Deployment ${spec.target}, which is not in these files`;
  }
  if (usesEnv && !env.has(spec.target)) return `it reads the env of Deployment ${spec.target}, which is not in these files`;
  return undefined;
}

function checkTriggers(m: Manifest, spec: ScaledObjectSpec, auths: Map<string, TriggerAuthSpec>, ctx: KedaContext, out: KedaFindings): void {
  const env = deploymentEnv(ctx, spec.envSourceContainerName);
  const ready = spec.triggers.filter((t) => {
    const subject = `ScaledObject ${spec.name} trigger ${t.index} (${t.type})`;
    const only = QSCALE_ONLY_TRIGGERS[t.type];
    if (only) {
      out.errors.push(errorAt(m, `${subject}: this trigger type runs only under qscale; KEDA has no such scaler. On a cluster: ${only}`, ['spec', 'triggers', t.index, 'type']));
      return false;
    }
    if (!findTrigger(t.type)) {
      out.notes.push(`${m.file}:${m.lineOf(['spec', 'triggers', t.index, 'type'])}: ${subject}: metadata not checked (qscale reads the triggers it implements)`);
      return false;
    }
    const why = unresolvable(spec, t, auths, ctx, env);
    if (why) {
      out.notes.push(`${m.file}:${m.lineOf(['spec', 'triggers', t.index])}: ${subject}: metadata not checked: ${why} (it must exist on the cluster)`);
      return false;
    }
    return true;
  });
  if (ready.length === 0) return;
  const one = { ...spec, triggers: ready };
  let resolved;
  try {
    resolved = resolveTriggers(one, auths, { secrets: ctx.secrets.lookup, env: (target) => env.get(target) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out.errors.push(err);
    return;
  }
  for (const t of resolved) {
    try {
      const q = checkTrigger(t, { embedded: false, dataDir: '.qscale' });
      out.checked.push({ kind: 'Trigger', name: `${spec.name}/${t.type}`, where: '', note: `queue ${q.queueName || '(none: a query of its own)'}, target ${q.target}, activation ${q.activationTarget}: read as KEDA's scaler reads it`, manifest: m });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.errors.push(err);
    }
  }
}

interface EnvSource {
  has(deployment: string): boolean;
  get(deployment: string): Record<string, string> | undefined;
}

/**
 * The environment KEDA reads for `<param>FromEnv` and TriggerAuthentication env: the scale target's container
 * (envSourceContainerName, else the first), its env values and what envFrom / valueFrom point at in these files.
 */
function deploymentEnv(ctx: KedaContext, containerName: string | undefined): EnvSource {
  const deployments = new Map<string, Manifest>();
  for (const m of ctx.manifests) if (m.kind === 'Deployment' || m.kind === 'StatefulSet') deployments.set(m.name, m);
  const configMap = (name: string): Record<string, unknown> | undefined =>
    ctx.manifests.find((m) => m.kind === 'ConfigMap' && m.name === name)?.body.data as Record<string, unknown> | undefined;
  return {
    has: (d) => deployments.has(d),
    get(d) {
      const m = deployments.get(d);
      if (!m) return undefined;
      type Container = { name?: string; env?: Array<Record<string, unknown>>; envFrom?: Array<Record<string, unknown>> };
      const containers = ((m.body.spec as { template?: { spec?: { containers?: Container[] } } })?.template?.spec?.containers ?? []);
      const c = (containerName ? containers.find((x) => x.name === containerName) : containers[0]) ?? {};
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) {
        const prefix = typeof from.prefix === 'string' ? from.prefix : '';
        const cm = (from.configMapRef as { name?: string } | undefined)?.name;
        const sec = (from.secretRef as { name?: string } | undefined)?.name;
        if (cm) for (const [k, v] of Object.entries(configMap(cm) ?? {})) env[prefix + k] = String(v);
        if (sec) for (const k of secretKeys(ctx, sec)) env[prefix + k] = ctx.secrets.lookup(sec, k) ?? '';
      }
      for (const e of c.env ?? []) {
        const name = String(e.name);
        if (typeof e.value === 'string') env[name] = e.value;
        const vf = e.valueFrom as { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } | undefined;
        const v = vf?.secretKeyRef
          ? ctx.secrets.lookup(vf.secretKeyRef.name, vf.secretKeyRef.key)
          : vf?.configMapKeyRef ? configMap(vf.configMapKeyRef.name)?.[vf.configMapKeyRef.key] : undefined;
        if (v !== undefined && v !== null) env[name] = String(v);
      }
      return env;
    },
  };
}

function secretKeys(ctx: KedaContext, name: string): string[] {
  const m = ctx.manifests.find((x) => x.kind === 'Secret' && x.name === name);
  const body = m?.body as { data?: Record<string, unknown>; stringData?: Record<string, unknown> } | undefined;
  return [...new Set([...Object.keys(body?.data ?? {}), ...Object.keys(body?.stringData ?? {})])];
}

