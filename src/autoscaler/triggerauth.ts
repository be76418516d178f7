/**
 * TriggerAuthentication / ClusterTriggerAuthentication and a trigger's `<param>FromEnv` metadata → the trigger's
 * final metadata (ResolvedTrigger). Locally, secretTargetRef reads the Kubernetes Secrets of the same folder,
 * configMapTargetRef its ConfigMaps, and env / FromEnv the target app's environment. Errors name the
 * TriggerAuthentication (or trigger), file:line and field, never a value.
 */
import type { FieldPath, Manifest } from '../components/manifests.js';
import type { SecretLookup } from '../components/resources.js';
import type { ResolvedTrigger } from './scaler.js';
import type { ScaledObjectSpec } from './scaledobject.js';
import { ConfigError } from '../errors.js';
import { validate, type Schema } from './schema.js';
import { KEDA_API, LEGACY_KEDA_API } from './scaledobject.js';

const str: Schema = { type: 'string' };
const ref = (required: readonly string[], extra: Record<string, Schema> = {}): Schema => ({
  type: 'array',
  items: { type: 'object', required, properties: { ...Object.fromEntries(required.map((k) => [k, str])), ...extra } },
});

/** Trigger types that authenticate with a TriggerAuthentication's podIdentity themselves (azure-workload). */
const POD_IDENTITY_TRIGGERS: ReadonlySet<string> = new Set(['azure-servicebus']);

/** Sources the CRD accepts that only a cluster (or a cloud) can resolve: accepted, reported once. */
const CLUSTER_SOURCES = ['boundServiceAccountToken', 'hashiCorpVault', 'azureKeyVault', 'awsSecretManager', 'gcpSecretManager', 'oauth2', 'filePath'] as const;

export const TRIGGERAUTH_SPEC: Schema = {
  type: 'object',
  properties: {
    secretTargetRef: ref(['parameter', 'name', 'key']),
    env: ref(['parameter', 'name'], { containerName: str }),
    configMapTargetRef: ref(['parameter', 'name', 'key']),
    podIdentity: {
      type: 'object',
      required: ['provider'],
      properties: {
        provider: { type: 'string', enum: ['azure-workload', 'gcp', 'aws', 'aws-eks', 'none'] },
        identityId: str,
        identityTenantId: str,
        identityAuthorityHost: str,
        roleArn: str,
        identityOwner: { type: 'string', enum: ['keda', 'workload'] },
        externalID: str,
      },
    },
    ...Object.fromEntries(CLUSTER_SOURCES.map((k) => [k, { type: 'any' } as Schema])),
  },
};

const TRIGGERAUTH_DOC: Schema = {
  type: 'object',
  required: ['spec'],
  properties: { apiVersion: str, kind: str, metadata: { type: 'any' }, spec: TRIGGERAUTH_SPEC, status: { type: 'any' } },
};

export type AuthKind = 'TriggerAuthentication' | 'ClusterTriggerAuthentication';

interface ParamRef {
  parameter: string;
  name: string;
  key: string;
  at: FieldPath;
}

export interface TriggerAuthSpec {
  kind: AuthKind;
  name: string;
  secretTargetRef: ParamRef[];
  configMapTargetRef: ParamRef[];
  env: Array<{ parameter: string; name: string; containerName?: string; at: FieldPath }>;
  /** Sources present that qscale cannot resolve locally (e.g. azureKeyVault); podIdentity is apart. */
  clusterOnly: string[];
  podIdentity: ResolvedTrigger['podIdentity'];
  file: string;
  line: number;
  manifest: Manifest;
}

/** The app's environment: one record for every target, or looked up by the target's app id. */
export type TargetEnv = Readonly<Record<string, string>> | ((appId: string) => Readonly<Record<string, string>> | undefined);

export interface ResolveContext {
  /** Kubernetes Secrets of the folder (loadResources(...).secrets). */
  secrets: SecretLookup;
  /** The target app's environment, for env and <param>FromEnv. */
  env: TargetEnv;
  /** ConfigMaps; by default read from the same manifests. */
  configMaps?: (name: string, key: string) => string | undefined;
}

function isAuth(m: Manifest): boolean {
  return (m.kind === 'TriggerAuthentication' || m.kind === 'ClusterTriggerAuthentication') && m.apiVersion.startsWith('keda.');
}

/** Every (Cluster)TriggerAuthentication among `manifests`, keyed "Kind/name". */
export function parseTriggerAuthentications(manifests: readonly Manifest[]): Map<string, TriggerAuthSpec> {
  const out = new Map<string, TriggerAuthSpec>();
  for (const m of manifests) {
    if (!isAuth(m)) continue;
    const a = parseTriggerAuthentication(m);
    const key = `${a.kind}/${a.name}`;
    const prev = out.get(key);
    if (prev) throw m.error(`${a.kind} '${a.name}' is defined twice (first at ${prev.file}:${prev.line})`, ['metadata', 'name']);
    out.set(key, a);
  }
  return out;
}

export function parseTriggerAuthentication(m: Manifest): TriggerAuthSpec {
  const kind = m.kind as AuthKind;
  if (m.apiVersion !== KEDA_API && !(m.apiVersion === LEGACY_KEDA_API && kind === 'TriggerAuthentication')) {
    throw m.error(`unsupported apiVersion '${m.apiVersion}' for ${kind} (expected ${KEDA_API})`, ['apiVersion']);
  }
  if (!m.name) throw m.error(`${kind} is missing metadata.name`, ['metadata']);
  const subject = `${kind} ${m.name}`;
  validate(m, subject, m.body, TRIGGERAUTH_DOC, []);
  const spec = m.body.spec as Record<string, unknown>;
  const list = (k: string): Record<string, string>[] => (Array.isArray(spec[k]) ? (spec[k] as Record<string, string>[]) : []);
  const refs = (k: string): ParamRef[] =>
    list(k).map((r, i) => ({ parameter: r.parameter!, name: r.name!, key: r.key!, at: ['spec', k, i] }));
  const clusterOnly = CLUSTER_SOURCES.filter((k) => spec[k] !== undefined && spec[k] !== null) as string[];
  const pod = spec.podIdentity as { provider?: string; identityId?: string; identityTenantId?: string } | undefined;
  const podIdentity = pod?.provider !== undefined && pod.provider !== 'none'
    ? { provider: pod.provider, ...(pod.identityId ? { identityId: pod.identityId } : {}), ...(pod.identityTenantId ? { identityTenantId: pod.identityTenantId } : {}) }
    : undefined;
  return {
    kind,
    name: m.name,
    secretTargetRef: refs('secretTargetRef'),
    configMapTargetRef: refs('configMapTargetRef'),
    env: list('env').map((e, i) => ({ parameter: e.parameter!, name: e.name!, containerName: e.containerName, at: ['spec', 'env', i] })),
    clusterOnly,
    podIdentity,
    file: m.file,
    line: m.line,
    manifest: m,
  };
}

/** ConfigMaps (v1) of the folder, for configMapTargetRef. */
export function configMapLookup(manifests: readonly Manifest[]): (name: string, key: string) => string | undefined {
  const maps = new Map<string, Record<string, unknown>>();
  for (const m of manifests) {
    if (m.kind === 'ConfigMap' && m.apiVersion === 'v1' && m.name) maps.set(m.name, (m.body.data ?? {}) as Record<string, unknown>);
  }
  return (name, key) => {
    const v = maps.get(name)?.[key];
    return v === undefined || v === null ? undefined : String(v);
  };
}

function envOf(ctx: ResolveContext, app: string): Readonly<Record<string, string>> {
  return (typeof ctx.env === 'function' ? ctx.env(app) : ctx.env) ?? {};
}

/**
 * The triggers of `so` with authenticationRef and <param>FromEnv resolved. `notices` receives one line per
 * TriggerAuthentication source that only a cluster can resolve.
 */
export function resolveTriggers(
  so: ScaledObjectSpec,
  auths: ReadonlyMap<string, TriggerAuthSpec>,
  ctx: ResolveContext,
  notices: string[] = [],
): ResolvedTrigger[] {
  const env = envOf(ctx, so.target);
  return so.triggers.map((t) => {
    const subject = `trigger ${t.index} (${t.type}) of ScaledObject ${so.name}`;
    const base: FieldPath = ['spec', 'triggers', t.index];
    const metadata: Record<string, string> = {};
    const sensitive: string[] = [];
    const resolvedEnv: Record<string, string> = {};
    const fromAuth: Record<string, string> = {};
    let podIdentity: ResolvedTrigger['podIdentity'];
    for (const [k, v] of Object.entries(t.metadata)) {
      if (k.endsWith('FromEnv') && k.length > 'FromEnv'.length) {
        const param = k.slice(0, -'FromEnv'.length);
        const value = env[v];
        if (value === undefined) {
          const where = so.where([...base, 'metadata', k]);
          throw new ConfigError(`${subject}: metadata ${k} reads environment variable ${v} of app '${so.target}', which is not set`, {
            ...where,
            field: `spec.triggers[${t.index}].metadata.${k}`,
          });
        }
        metadata[param] = value;
        resolvedEnv[param] = value;
        sensitive.push(param);
      } else {
        metadata[k] = v;
      }
    }
    if (t.authenticationRef) {
      const a = auths.get(`${t.authenticationRef.kind}/${t.authenticationRef.name}`);
      if (!a) {
        const where = so.where([...base, 'authenticationRef', 'name']);
        throw new ConfigError(
          `${subject}: authenticationRef names ${t.authenticationRef.kind} '${t.authenticationRef.name}', which is not in these files`,
          { ...where, field: `spec.triggers[${t.index}].authenticationRef.name` },
        );
      }
      for (const p of authParams(a, ctx, env, so.target)) {
        metadata[p.parameter] = p.value;
        fromAuth[p.parameter] = p.value;
        sensitive.push(p.parameter);
      }
      const clusterOnly = [...a.clusterOnly];
      if (a.podIdentity && POD_IDENTITY_TRIGGERS.has(t.type)) podIdentity = a.podIdentity;
      else if (a.podIdentity) clusterOnly.push(`podIdentity (${a.podIdentity.provider})`);
      if (clusterOnly.length > 0) {
        notices.push(`${a.file}:${a.line}: ${a.kind} ${a.name}: ${clusterOnly.join(', ')} cannot be resolved locally; those parameters stay unset`);
      }
    }
    return {
      index: t.index,
      type: t.type,
      name: t.name,
      metricType: t.metricType,
      metadata,
      sensitive: [...new Set(sensitive)],
      sources: { triggerMetadata: { ...t.metadata }, authParams: fromAuth, resolvedEnv },
      ...(podIdentity ? { podIdentity } : {}),
      subject,
      where: (field?: string) => {
        if (field === undefined) return so.where(base);
        const key = field in t.metadata ? field : `${field}FromEnv` in t.metadata ? `${field}FromEnv` : undefined;
        return so.where(key === undefined ? [...base, 'metadata'] : [...base, 'metadata', key]);
      },
    };
  });
}

function authParams(a: TriggerAuthSpec, ctx: ResolveContext, env: Readonly<Record<string, string>>, app: string): Array<{ parameter: string; value: string }> {
  const out: Array<{ parameter: string; value: string }> = [];
  const m = a.manifest;
  const subject = `${a.kind} ${a.name}`;
  for (const r of a.secretTargetRef) {
    const v = ctx.secrets(r.name, r.key);
    if (v === undefined) throw m.error(`${subject}: secretTargetRef parameter '${r.parameter}' refers to secret '${r.name}' key '${r.key}', not found in the Secrets of these files`, r.at);
    out.push({ parameter: r.parameter, value: v });
  }
  const cms = ctx.configMaps;
  for (const r of a.configMapTargetRef) {
    const v = cms?.(r.name, r.key);
    if (v === undefined) throw m.error(`${subject}: configMapTargetRef parameter '${r.parameter}' refers to ConfigMap '${r.name}' key '${r.key}', not found in these files`, r.at);
    out.push({ parameter: r.parameter, value: v });
  }
  for (const e of a.env) {
    const v = env[e.name];
    if (v === undefined) throw m.error(`${subject}: env parameter '${e.parameter}' reads environment variable ${e.name} of app '${app}', which is not set`, e.at);
    out.push({ parameter: e.parameter, value: v });
  }
  return out;
}
