/**
 * Dapr kinds as a cluster with Dapr 1.18 takes them: the Component and Subscription CRDs' schemas (in qscale's
 * schema form; test/cluster/crd.test.ts compares them with the CRDs), then what daprd does with a Component: its
 * type must be one daprd has (the qscale-only types are refused with what to use instead), its version one the
 * component registers, its required metadata present, and unknown metadata names are pointed out (daprd ignores
 * them, so a misspelt name silently takes its default).
 */
import type { Manifest } from '../components/manifests.js';
import { closest, validate, type Schema } from '../autoscaler/schema.js';
import type { SecretLookup } from '../components/resources.js';
import { findPubSub } from '../pubsub/registry.js';
import { ConfigError } from '../errors.js';
import {
  BINDING_RUNTIME_FIELDS, PUBSUB_RUNTIME_FIELDS, QSCALE_ONLY_TYPES, findDaprComponent, type DaprField,
} from './dapr-components.js';
import { DAPR_VERSION } from './versions.js';

const str: Schema = { type: 'string' };
const any: Schema = { type: 'any' };
const scopes: Schema = { type: 'array', items: str };

/** dapr.io/v1alpha1 Component (charts/dapr/crds/components.yaml). */
export const COMPONENT_SPEC: Schema = {
  type: 'object',
  required: ['metadata', 'type', 'version'],
  properties: {
    type: str,
    version: str,
    ignoreErrors: { type: 'boolean' },
    initTimeout: str,
    metadata: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: str,
          // x-kubernetes-preserve-unknown-fields: any shape is stored; daprd reads it as a string.
          value: any,
          secretKeyRef: { type: 'object', required: ['name'], properties: { name: str, key: str } },
          envRef: str,
        },
      },
    },
  },
};

/** The whole Component document: the CRD has auth and scopes beside spec. */
export const COMPONENT_DOC: Schema = {
  type: 'object',
  properties: {
    apiVersion: str,
    kind: str,
    metadata: any,
    spec: COMPONENT_SPEC,
    auth: { type: 'object', required: ['secretStore'], properties: { secretStore: str } },
    scopes,
  },
};

const bulkSubscribe: Schema = {
  type: 'object',
  required: ['enabled'],
  properties: { enabled: { type: 'boolean' }, maxAwaitDurationMs: { type: 'integer' }, maxMessagesCount: { type: 'integer' } },
};

/** dapr.io Subscription v1alpha1 and v2alpha1 (charts/dapr/crds/subscription.yaml). */
export const SUBSCRIPTION_SPECS: Readonly<Record<string, Schema>> = {
  'dapr.io/v1alpha1': {
    type: 'object',
    required: ['pubsubname', 'route', 'topic'],
    properties: { pubsubname: str, topic: str, route: str, deadLetterTopic: str, metadata: { type: 'map', values: str }, bulkSubscribe },
  },
  'dapr.io/v2alpha1': {
    type: 'object',
    required: ['pubsubname', 'routes', 'topic'],
    properties: {
      pubsubname: str,
      topic: str,
      deadLetterTopic: str,
      metadata: { type: 'map', values: str },
      bulkSubscribe,
      routes: {
        type: 'object',
        properties: {
          default: str,
          rules: { type: 'array', items: { type: 'object', required: ['match', 'path'], properties: { match: str, path: str } } },
        },
      },
    },
  },
};

/** The whole Subscription document of an apiVersion of SUBSCRIPTION_SPECS. */
export function subscriptionDoc(apiVersion: string): Schema {
  return { type: 'object', properties: { apiVersion: str, kind: str, metadata: any, spec: SUBSCRIPTION_SPECS[apiVersion]!, scopes } };
}

export interface DaprFindings {
  errors: ConfigError[];
  warnings: string[];
  /** What was checked, for the listing. */
  note: string;
}

/** Kinds of dapr.io that qscale has a schema for. */
export function isCheckedDaprKind(m: Manifest): boolean {
  return (m.kind === 'Component' && m.apiVersion === 'dapr.io/v1alpha1') || (m.kind === 'Subscription' && m.apiVersion in SUBSCRIPTION_SPECS);
}

export function checkSubscription(m: Manifest): DaprFindings {
  const subject = `Subscription ${m.name}`;
  const errors: ConfigError[] = [];
  collect(errors, () => validate(m, subject, m.body, subscriptionDoc(m.apiVersion), []));
  return { errors, warnings: [], note: `${m.apiVersion}: Dapr ${DAPR_VERSION} CRD` };
}

/**
 * A Component: the CRD's schema, then daprd's view of its type, version and metadata. `secrets` are the folder's
 * Kubernetes Secrets, to check that a secretKeyRef names a key the Secret has (a Secret not in these files may exist
 * on the cluster and is not judged).
 */
export function checkComponent(m: Manifest, secrets: { has(name: string): boolean; lookup: SecretLookup }): DaprFindings {
  const subject = `component ${m.name}`;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const crdOk = collect(errors, () => validate(m, subject, m.body, COMPONENT_DOC, []));
  if (!crdOk) return { errors, warnings, note: 'Dapr CRD' };
  const spec = m.body.spec as { type: string; version: string; metadata?: Array<Record<string, unknown>> | null };
  const type = spec.type;
  const typed = `${subject} (${type})`;
  const where = (path: ReadonlyArray<string | number>) => ({ file: m.file, line: m.lineOf(path) });

  const onlyHere = QSCALE_ONLY_TYPES[type]
    ?? (type.startsWith('bindings.qscale.') ? 'use a binding type Dapr has' : undefined)
    ?? (type.startsWith('pubsub.qscale.') || findPubSub(type)?.localOnly ? 'use a pub/sub type Dapr has' : undefined);
  if (onlyHere) {
    errors.push(new ConfigError(`${typed}: this type runs only under qscale; a real daprd refuses to load it. On a cluster: ${onlyHere}`, { ...where(['spec', 'type']), field: 'spec.type' }));
    return { errors, warnings, note: `${type}: qscale only` };
  }
  const facts = findDaprComponent(type);
  if (!facts) {
    return { errors, warnings, note: `${type}: metadata not checked (qscale carries Dapr's metadata only for the types it serves or points to)` };
  }
  if (!facts.versions.includes(spec.version)) {
    errors.push(new ConfigError(
      `${typed}: version '${spec.version}' is not one daprd registers for this type (${facts.versions.join(', ')}); daprd fails with "couldn't find" it`,
      { ...where(['spec', 'version']), field: 'spec.version' },
    ));
  }

  const items = (spec.metadata ?? []).map((item, i) => ({ item, i, name: String(item.name) }));
  const given = new Map(items.map((x) => [x.name.toLowerCase(), x]));
  const runtime = type.startsWith('bindings.') ? BINDING_RUNTIME_FIELDS : type.startsWith('pubsub.') ? PUBSUB_RUNTIME_FIELDS : [];
  const declared: DaprField[] = [...facts.fields, ...facts.profiles.flatMap((p) => p.fields), ...runtime, ...(facts.codeFields ?? [])];
  const declaredNames = [...new Set([...declared.map((f) => f.name), ...Object.keys(facts.readByCode ?? {})])];

  // Unknown names: daprd ignores them (metadata names match case-insensitively).
  for (const { name, i } of items) {
    if (declaredNames.some((d) => d.toLowerCase() === name.toLowerCase())) continue;
    const hint = closest(name, declaredNames);
    const w = where(['spec', 'metadata', i, 'name']);
    warnings.push(`${w.file}:${w.line}: ${typed}: metadata '${name}' is not a field of Dapr's ${type} (${facts.source}); daprd ignores it${hint ? ` (did you mean '${hint}'?)` : ''}`);
  }

  // Allowed values, where the metadata declares them (the value itself is shown: these fields are never secrets).
  for (const f of declared) {
    const x = f.allowed ? given.get(f.name.toLowerCase()) : undefined;
    const v = x?.item.value;
    if (x && typeof v === 'string' && !f.allowed!.includes(v)) {
      const w = where(['spec', 'metadata', x.i, 'value']);
      warnings.push(`${w.file}:${w.line}: ${typed}: metadata ${f.name} '${v}' is not one of ${f.allowed!.map((a) => `'${a}'`).join(', ')}`);
    }
  }

  // Required fields, and one authentication profile satisfied.
  const missing = (list: readonly DaprField[]) =>
    list.filter((f) => f.required && !given.has(f.name.toLowerCase()) && !facts.defaultedInCode?.[f.name]).map((f) => f.name);
  for (const name of missing(facts.fields)) {
    errors.push(new ConfigError(`${typed}: missing required metadata '${name}' (Dapr's component refuses to initialise without it)`, { ...where(['spec', 'metadata']), field: 'spec.metadata' }));
  }
  if (facts.profiles.length > 0 && !facts.profiles.some((p) => missing(p.fields).length === 0)) {
    const ways = facts.profiles.map((p) => `${p.title}: ${p.fields.filter((f) => f.required).map((f) => f.name).join(' + ')}`).join('; or ');
    errors.push(new ConfigError(`${typed}: no way to authenticate is complete; give one of ${ways}`, { ...where(['spec', 'metadata']), field: 'spec.metadata' }));
  }

  // Bindings: the directions the component serves.
  const direction = given.get('direction');
  const dv = typeof direction?.item.value === 'string' ? direction.item.value.toLowerCase() : undefined;
  if (dv !== undefined && type.startsWith('bindings.')) {
    for (const d of ['input', 'output'] as const) {
      if (dv.split(',').map((s) => s.trim()).includes(d) && facts[d] === false) {
        const w = where(['spec', 'metadata', direction!.i, 'value']);
        warnings.push(`${w.file}:${w.line}: ${typed}: Dapr's ${type} has no ${d} direction; daprd loads no ${d} binding for it`);
      }
    }
  }

  // secretKeyRef into a Kubernetes Secret of these files: the key must be there (daprd fails to initialise).
  const store = (m.body.auth as { secretStore?: string } | undefined)?.secretStore;
  if (store === undefined || store === 'kubernetes') {
    for (const { item, i } of items) {
      const ref = item.secretKeyRef as { name?: string; key?: string } | undefined;
      if (!ref?.name || !secrets.has(ref.name)) continue;
      const key = ref.key || ref.name;
      if (secrets.lookup(ref.name, key) === undefined) {
        errors.push(new ConfigError(
          `${typed}: metadata ${String(item.name)} reads key '${key}' of Secret ${ref.name}, which has no such key`,
          { ...where(['spec', 'metadata', i, 'secretKeyRef', 'key']), field: `spec.metadata[${i}].secretKeyRef.key` },
        ));
      }
    }
  }
  return { errors, warnings, note: `${type} ${spec.version}: Dapr ${DAPR_VERSION} CRD and component metadata (${facts.source})` };
}

function collect(errors: ConfigError[], f: () => void): boolean {
  try {
    f();
    return true;
  } catch (err) {
    if (err instanceof ConfigError) {
      errors.push(err);
      return false;
    }
    throw err;
  }
}
