/**
 * Built-in Kubernetes kinds checked as the API server of Kubernetes 1.33 checks them under `kubectl apply`'s default
 * `--validate=strict`: the OpenAPI schema of the kind (types, required fields, enums, formats) from kubernetes-models,
 * unknown fields as errors (strict field validation), and a few rules the API server enforces beyond the schema.
 *
 * kubernetes-models ships each schema compiled into a validator that does not report unknown fields. The validator
 * looks up every property its schema declares, so running it over a proxy of the document tells which keys the
 * schema knows at each level: a key it never looked up is unknown, exactly as the API server's strict decoding
 * finds it. Mappings the schema leaves open (labels, annotations, data) are enumerated by the validator and so
 * accept any key; objects it never looks into (free-form fields) are not judged.
 */
import type { FieldPath } from '../components/manifests.js';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { JobSpec } from 'kubernetes-models/batch/v1/JobSpec';
import { closest, dotted } from '../autoscaler/schema.js';
import { KUBERNETES_VERSION } from './versions.js';

/** One violation at a field path of the document (or of the value handed in). */
export interface SchemaIssue {
  path: FieldPath;
  message: string;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** A kubernetes-models class: its prototype's validate() checks `this` against the compiled schema. */
interface ModelClass {
  apiVersion?: string;
  kind?: string;
  prototype: { validate(this: unknown): void };
}

/** Group-versions a Kubernetes 1.33 API server no longer serves, with the release that removed them. */
const REMOVED_GROUP_VERSIONS: Readonly<Record<string, string>> = {
  'extensions/v1beta1': '1.22',
  'apps/v1beta1': '1.16',
  'apps/v1beta2': '1.16',
  'batch/v1beta1': '1.25',
  'policy/v1beta1': '1.25',
  'autoscaling/v2beta1': '1.25',
  'autoscaling/v2beta2': '1.26',
  'networking.k8s.io/v1beta1': '1.22',
  'rbac.authorization.k8s.io/v1beta1': '1.22',
  'apiextensions.k8s.io/v1beta1': '1.22',
  'apiregistration.k8s.io/v1beta1': '1.22',
  'scheduling.k8s.io/v1beta1': '1.22',
  'discovery.k8s.io/v1beta1': '1.25',
  'events.k8s.io/v1beta1': '1.25',
  'node.k8s.io/v1beta1': '1.25',
  'flowcontrol.apiserver.k8s.io/v1beta1': '1.26',
  'flowcontrol.apiserver.k8s.io/v1beta2': '1.29',
  'flowcontrol.apiserver.k8s.io/v1beta3': '1.32',
};

/** Kinds removed from a group-version that still serves other kinds. */
const REMOVED_KINDS: Readonly<Record<string, string>> = {
  'admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration': '1.22',
  'admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration': '1.22',
  'certificates.k8s.io/v1beta1 CertificateSigningRequest': '1.22',
  'coordination.k8s.io/v1beta1 Lease': '1.22',
  'storage.k8s.io/v1beta1 CSIDriver': '1.22',
  'storage.k8s.io/v1beta1 CSINode': '1.22',
  'storage.k8s.io/v1beta1 StorageClass': '1.22',
  'storage.k8s.io/v1beta1 VolumeAttachment': '1.22',
  'storage.k8s.io/v1beta1 CSIStorageCapacity': '1.27',
};

/** Where to look for a kind written under the wrong or a removed apiVersion. */
const SERVED_GROUP_VERSIONS = [
  'v1', 'apps/v1', 'batch/v1', 'networking.k8s.io/v1', 'autoscaling/v2', 'policy/v1', 'rbac.authorization.k8s.io/v1',
  'storage.k8s.io/v1', 'scheduling.k8s.io/v1', 'coordination.k8s.io/v1', 'discovery.k8s.io/v1', 'node.k8s.io/v1',
  'events.k8s.io/v1', 'admissionregistration.k8s.io/v1', 'apiextensions.k8s.io/v1', 'certificates.k8s.io/v1',
  'apiregistration.k8s.io/v1', 'flowcontrol.apiserver.k8s.io/v1',
];

const GROUP_VERSION = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v\d+(?:(?:alpha|beta)\d+)?$/;
const modules = new Map<string, Promise<Record<string, unknown> | undefined>>();

function groupModule(apiVersion: string): Promise<Record<string, unknown> | undefined> {
  if (!GROUP_VERSION.test(apiVersion)) return Promise.resolve(undefined);
  let p = modules.get(apiVersion);
  if (!p) {
    p = import(`kubernetes-models/${apiVersion}`).then((m) => m as Record<string, unknown>, () => undefined);
    modules.set(apiVersion, p);
  }
  return p;
}

async function modelOf(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const c = (await groupModule(apiVersion))?.[kind];
  if (typeof c !== 'function') return undefined;
  const model = c as unknown as ModelClass;
  return model.apiVersion === apiVersion && model.kind === kind ? model : undefined;
}

async function servedApiVersionOf(kind: string, except: string): Promise<string | undefined> {
  for (const gv of SERVED_GROUP_VERSIONS) {
    if (gv !== except && (await modelOf(gv, kind))) return gv;
  }
  return undefined;
}

export type BuiltinVerdict =
  /** A built-in kind: `issues` lists every violation. */
  | { builtin: true; issues: SchemaIssue[] }
  /** Not a kind of Kubernetes itself (a custom resource: its CRD must be installed). */
  | { builtin: false };

/** Checks one document of a built-in kind; `{ builtin: false }` for kinds Kubernetes itself does not have. */
export async function checkBuiltin(apiVersion: string, kind: string, body: Record<string, unknown>): Promise<BuiltinVerdict> {
  const removedIn = REMOVED_GROUP_VERSIONS[apiVersion] ?? REMOVED_KINDS[`${apiVersion} ${kind}`];
  if (removedIn) {
    const served = await servedApiVersionOf(kind, apiVersion);
    const way = served ? `use apiVersion ${served}` : `Kubernetes ${KUBERNETES_VERSION} has no ${kind}`;
    return { builtin: true, issues: [{ path: ['apiVersion'], message: `${apiVersion} ${kind} is no longer served (removed in Kubernetes ${removedIn}): ${way}` }] };
  }
  const model = await modelOf(apiVersion, kind);
  if (!model) {
    const groupKnown = (await groupModule(apiVersion)) !== undefined;
    const served = await servedApiVersionOf(kind, apiVersion);
    if (served) return { builtin: true, issues: [{ path: ['apiVersion'], message: `${apiVersion} has no kind ${kind}: use apiVersion ${served}` }] };
    if (groupKnown) return { builtin: true, issues: [{ path: ['kind'], message: `${apiVersion} has no kind ${kind}` }] };
    return { builtin: false };
  }
  const issues = checkWithModel(model, body, []);
  issues.push(...apiServerRules(kind, body));
  return { builtin: true, issues };
}

/** The ObjectMeta of any document (custom resources included), as the API server reads it. */
export function checkObjectMeta(metadata: unknown): SchemaIssue[] {
  return checkWithModel(ConfigMap as unknown as ModelClass, { apiVersion: 'v1', kind: 'ConfigMap', metadata }, []);
}

/** A batch/v1 JobSpec (a ScaledJob's jobTargetRef), at `at` in its document. */
export function checkJobSpec(value: unknown, at: FieldPath): SchemaIssue[] {
  const issues = checkWithModel(JobSpec as unknown as ModelClass, value, at);
  const podSpec = (value as { template?: { spec?: unknown } } | undefined)?.template?.spec;
  issues.push(...podSpecRules(podSpec, [...at, 'template', 'spec']));
  return issues;
}

interface Seen {
  read: Set<string>;
  enumerated: boolean;
}

/** Runs the model's compiled schema over `value`, then finds the keys it never looked up. Paths start at `at`. */
function checkWithModel(model: ModelClass, value: unknown, at: FieldPath): SchemaIssue[] {
  const seen = new WeakMap<object, Seen>();
  const proxies = new WeakMap<object, object>();
  const wrap = (obj: unknown): unknown => {
    if (obj === null || typeof obj !== 'object') return obj;
    const known = proxies.get(obj);
    if (known) return known;
    const rec: Seen = { read: new Set(), enumerated: false };
    seen.set(obj, rec);
    const p = new Proxy(obj, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver) as unknown;
        if (typeof key !== 'string') return v;
        rec.read.add(key);
        return wrap(v);
      },
      has(target, key) {
        if (typeof key === 'string') rec.read.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        rec.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(obj, p);
    return p;
  };
  let errors: AjvError[] = [];
  try {
    model.prototype.validate.call(wrap(value));
  } catch (err) {
    const list = (err as { errors?: unknown }).errors;
    if (!Array.isArray(list)) throw err;
    errors = list as AjvError[];
  }
  const issues = schemaIssues(errors, value, at);
  unknownFields(value, at, seen, issues);
  return issues;
}

function unknownFields(value: unknown, path: FieldPath, seen: WeakMap<object, Seen>, out: SchemaIssue[]): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => unknownFields(item, [...path, i], seen, out));
    return;
  }
  const rec = seen.get(value);
  // Never reached (its parent is unknown or did not validate), or free-form: nothing to say.
  if (!rec || (!rec.enumerated && rec.read.size === 0)) return;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!rec.enumerated && !rec.read.has(key)) {
      const hint = closest(key, [...rec.read].filter((k) => k !== 'length'));
      out.push({ path: [...path, key], message: `unknown field ${dotted([...path, key])}${hint ? ` (did you mean '${hint}'?)` : ''}` });
      continue;
    }
    unknownFields(obj[key], [...path, key], seen, out);
  }
}

function pointerPath(pointer: string): FieldPath {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => {
    const k = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(k) ? Number(k) : k;
  });
}

/** The value at `path` of `value` (undefined where the path leaves it). */
export function valueAt(value: unknown, path: FieldPath): unknown {
  let v = value;
  for (const k of path) v = v === null || typeof v !== 'object' ? undefined : (v as Record<string | number, unknown>)[k];
  return v;
}

/** The JSON type of a value in words; never the value itself (it may be a secret). */
function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return typeof v === 'boolean' ? 'a boolean' : typeof v;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'a mapping', array: 'a list',
};

function schemaIssues(errors: readonly AjvError[], value: unknown, base: FieldPath): SchemaIssue[] {
  // One line per field: a oneOf (int-or-string, quantity) reports its branches and itself.
  const byPath = new Map<string, AjvError[]>();
  for (const e of errors) {
    const key = e.keyword === 'required' ? `${e.instancePath}/${String(e.params.missingProperty)}` : e.instancePath;
    byPath.set(key, [...(byPath.get(key) ?? []), e]);
  }
  const out: SchemaIssue[] = [];
  for (const group of byPath.values()) {
    const e = group.find((x) => x.keyword === 'oneOf' || x.keyword === 'anyOf') ?? group[0]!;
    const rel = pointerPath(e.instancePath);
    const path = [...base, ...rel];
    const v = valueAt(value, rel);
    const name = dotted(path);
    switch (e.keyword) {
      case 'required': {
        const field = [...path, String(e.params.missingProperty)];
        out.push({ path: field, message: `missing required field ${dotted(field)}` });
        break;
      }
      case 'oneOf':
      case 'anyOf': {
        const types = group.filter((x) => x.keyword === 'type').map((x) => TYPE_WORDS[String(x.params.type)] ?? String(x.params.type));
        out.push({ path, message: `${name} must be ${types.length ? types.join(' or ') : 'of another shape'}, got ${typeOf(v)}` });
        break;
      }
      case 'type': {
        const want = String(e.params.type);
        let hint = '';
        if (want === 'string' && (typeof v === 'number' || typeof v === 'boolean')) hint = ' (quote it)';
        if (want === 'integer' && typeof v === 'string' && /^-?\d+$/.test(v)) hint = ' (write it without quotes)';
        out.push({ path, message: `${name} must be ${TYPE_WORDS[want] ?? want}, got ${typeOf(v)}${hint}` });
        break;
      }
      case 'enum': {
        const allowed = (e.params.allowedValues as unknown[]).map((x) => `'${String(x)}'`).join(', ');
        out.push({ path, message: `${name} must be one of ${allowed}, got ${typeof v === 'string' ? `'${v}'` : typeOf(v)}` });
        break;
      }
      case 'format': {
        const f = String(e.params.format);
        if (f === 'byte') out.push({ path, message: `${name} must be base64 (Secret data is base64-encoded; plain text goes under stringData)` });
        else if (f === 'int32' || f === 'int64') out.push({ path, message: `${name} is out of range for a ${f.slice(3)}-bit integer` });
        else out.push({ path, message: `${name} must be a valid ${f}` });
        break;
      }
      default:
        out.push({ path, message: `${name} ${e.message ?? `fails the schema's ${e.keyword} rule`}` });
    }
  }
  return out;
}

// ---- What the API server enforces beyond the OpenAPI schema (the validation of k8s.io/kubernetes pkg/apis) ----

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** resource.Quantity's grammar: a signed number with an optional binary, decimal or exponent suffix. */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** Kinds whose name must be a DNS-1035 label (Service) or a DNS-1123 label (Namespace); all others a subdomain. */
export function nameRules(kind: string, metadata: unknown): SchemaIssue[] {
  const md = (metadata ?? {}) as Record<string, unknown>;
  const name = md.name;
  if (name === undefined || name === null || name === '') {
    if (typeof md.generateName === 'string' && md.generateName) {
      return [{ path: ['metadata', 'name'], message: 'metadata.name is required: `kubectl apply` cannot apply an object by generateName' }];
    }
    return [{ path: ['metadata', 'name'], message: 'missing required field metadata.name' }];
  }
  if (typeof name !== 'string') return [];
  if (RBAC_KINDS.has(kind)) {
    // RBAC names are path segments: 'system:aggregate-to-view' is fine.
    if (name === '.' || name === '..' || /[/%]/.test(name)) {
      return [{ path: ['metadata', 'name'], message: `metadata.name '${name}' may not be '.' or '..' nor contain '/' or '%'` }];
    }
    return [];
  }
  if (kind === 'Service') {
    if (name.length > 63 || !DNS1035_LABEL.test(name)) {
      return [{ path: ['metadata', 'name'], message: `metadata.name '${name}' must be a DNS-1035 label: at most 63 lowercase letters, digits and '-', starting with a letter` }];
    }
  } else if (kind === 'Namespace') {
    if (name.length > 63 || !DNS1123_LABEL.test(name)) {
      return [{ path: ['metadata', 'name'], message: `metadata.name '${name}' must be a DNS-1123 label: at most 63 lowercase letters, digits and '-'` }];
    }
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return [{ path: ['metadata', 'name'], message: `metadata.name '${name}' must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253` }];
  }
  return [];
}

const RBAC_KINDS = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
const WORKLOADS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet']);

function apiServerRules(kind: string, body: Record<string, unknown>): SchemaIssue[] {
  const out = nameRules(kind, body.metadata);
  const spec = body.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== 'object') return out;
  if (WORKLOADS.has(kind)) {
    const template = spec.template as { metadata?: { labels?: unknown }; spec?: unknown } | undefined;
    const labels = (template?.metadata?.labels ?? {}) as Record<string, unknown>;
    const selector = spec.selector as { matchLabels?: unknown; matchExpressions?: unknown } | undefined;
    if (selector && typeof selector === 'object' && !selectorMatches(selector, labels)) {
      out.push({ path: ['spec', 'selector'], message: 'spec.selector does not match spec.template.metadata.labels: the pods would not belong to their ' + kind });
    }
    out.push(...podSpecRules(template?.spec, ['spec', 'template', 'spec']));
  } else if (kind === 'Job') {
    out.push(...podSpecRules((spec.template as { spec?: unknown } | undefined)?.spec, ['spec', 'template', 'spec']));
  } else if (kind === 'CronJob') {
    const job = (spec.jobTemplate as { spec?: { template?: { spec?: unknown } } } | undefined)?.spec;
    out.push(...podSpecRules(job?.template?.spec, ['spec', 'jobTemplate', 'spec', 'template', 'spec']));
  } else if (kind === 'Pod') {
    out.push(...podSpecRules(spec, ['spec']));
  } else if (kind === 'Service') {
    const ports = spec.ports;
    const headless = spec.clusterIP === 'None';
    if (spec.type !== 'ExternalName' && !headless && (!Array.isArray(ports) || ports.length === 0)) {
      out.push({ path: ['spec', 'ports'], message: 'spec.ports is required: a Service needs at least one port (unless type ExternalName or clusterIP None)' });
    }
  }
  return out;
}

function selectorMatches(selector: { matchLabels?: unknown; matchExpressions?: unknown }, labels: Record<string, unknown>): boolean {
  const ml = (selector.matchLabels ?? {}) as Record<string, unknown>;
  if (typeof ml !== 'object') return true;
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  const exprs = Array.isArray(selector.matchExpressions) ? (selector.matchExpressions as Array<Record<string, unknown>>) : [];
  for (const e of exprs) {
    const key = String(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const has = key in labels;
    const v = has ? String(labels[key]) : undefined;
    if (e.operator === 'In' && !(v !== undefined && values.includes(v))) return false;
    if (e.operator === 'NotIn' && v !== undefined && values.includes(v)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return Object.keys(ml).length > 0 || exprs.length > 0;
}

function podSpecRules(podSpec: unknown, at: FieldPath): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  if (!podSpec || typeof podSpec !== 'object') return out;
  const ps = podSpec as Record<string, unknown>;
  if (Array.isArray(ps.containers) && ps.containers.length === 0) {
    out.push({ path: [...at, 'containers'], message: `${dotted([...at, 'containers'])} must have at least one container` });
  }
  for (const list of ['initContainers', 'containers'] as const) {
    const cs = ps[list];
    if (!Array.isArray(cs)) continue;
    cs.forEach((c: unknown, i: number) => {
      const res = (c as { resources?: Record<string, unknown> } | null)?.resources;
      for (const part of ['limits', 'requests'] as const) {
        const q = res?.[part];
        if (!q || typeof q !== 'object') continue;
        for (const [k, v] of Object.entries(q as Record<string, unknown>)) {
          if (typeof v === 'string' && !QUANTITY.test(v)) {
            const p = [...at, list, i, 'resources', part, k];
            out.push({ path: p, message: `${dotted(p)} '${v}' is not a quantity (such as 500m, 128Mi, 1Gi, 0.5)` });
          }
        }
      }
    });
  }
  return out;
}
