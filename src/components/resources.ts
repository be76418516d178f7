import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FieldPath, Manifest } from './manifests.js';
import type { ResolvedComponent } from '../backends/types.js';
import { loadManifests } from './manifests.js';
import { parseDuration } from './metadata.js';
import { ConfigError } from '../errors.js';
import { parseSubscription, routelessNotice, type DeclaredSubscription } from './subscriptions.js';

/** Looks up a Kubernetes Secret's key (or a local secret store's entry). Undefined when absent. */
export type SecretLookup = (name: string, key: string) => string | undefined;

export interface SkippedManifest {
  kind: string;
  name: string;
  file: string;
  line: number;
  reason: string;
}

export interface LoadOptions {
  /** Only components whose scopes include this app id (or have no scopes) are kept. */
  appId?: string;
  /** Environment for envRef and secretstores.local.env (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedResources {
  /** Binding components for this app, secrets resolved (secret stores themselves are not listed). */
  components: ResolvedComponent[];
  /** Pub/sub components (type pubsub.*) for this app, secrets resolved. */
  pubsubs: ResolvedComponent[];
  /** Declarative Subscription resources for this app (all of them when no app id is given), in manifest order. */
  subscriptions: DeclaredSubscription[];
  /** Every manifest read, for the other kinds' parsers (ScaledObject, TriggerAuthentication). */
  manifests: Manifest[];
  /** Kubernetes Secrets in the folder. */
  secrets: SecretLookup;
  /** Kinds and components not used here, with why. */
  skipped: SkippedManifest[];
  /** One-line notices worth showing once (assumed defaults, legacy shapes). */
  notices: string[];
}

const DEFAULT_INIT_TIMEOUT_MS = 5000;
/** daprd refuses envRef to its own and the app token variables: they would leak the tokens into components. */
const FORBIDDEN_ENV = /^(APP_API_TOKEN|DAPR_.*)$/;

const OTHER_KINDS: Record<string, string> = {
  ScaledObject: 'read by the autoscaler',
  ScaledJob: 'ScaledJob is not supported locally (only ScaledObject)',
  TriggerAuthentication: 'read by the autoscaler',
  ClusterTriggerAuthentication: 'read by the autoscaler',
  Deployment: 'not needed locally: the run file (dapr.yaml) says how to start each app',
  Service: 'not needed locally: apps listen on loopback ports',
  Configuration: 'Dapr Configuration is not used by the local sidecar',
  Resiliency: 'Dapr Resiliency is not used by the local sidecar',
  ConfigMap: 'read by the autoscaler (TriggerAuthentication configMapTargetRef)',
};

/**
 * How daprd reads a binding's `direction` metadata (dapr/dapr pkg/runtime/processor/binding): absent, the component
 * is an output binding and an input binding if the app answers the OPTIONS probe; present, each comma-separated part
 * is trimmed and lower-cased and only `input` and `output` count, so an empty or misspelt direction makes it neither
 * (daprd then loads nothing for it, without an error). Names are matched case-insensitively; every such entry counts.
 */
export interface BindingDirection {
  input: boolean;
  output: boolean;
  /** A direction names input: daprd then reads it without probing the app. */
  inputDeclared: boolean;
  /** The direction entries as written, when there are any. */
  entries: Array<{ name: string; value: string }>;
  /** Non-empty parts daprd ignores (misspelt). */
  ignored: string[];
}

export function bindingDirection(metadata: Readonly<Record<string, string>>): BindingDirection {
  const entries = Object.entries(metadata)
    .filter(([k]) => k.toLowerCase() === 'direction')
    .map(([name, value]) => ({ name, value }));
  if (entries.length === 0) return { input: true, output: true, inputDeclared: false, entries, ignored: [] };
  const parts = entries.flatMap((e) => e.value.split(',').map((p) => p.trim().toLowerCase()));
  const input = parts.includes('input');
  const output = parts.includes('output');
  const ignored = parts.filter((p) => p !== '' && p !== 'input' && p !== 'output');
  return { input, output, inputDeclared: input, entries, ignored };
}

/** One line for a direction daprd reads differently from what its author likely meant; undefined when clear. */
export function directionNotice(c: Pick<ResolvedComponent, 'name' | 'type' | 'metadata' | 'where'>): string | undefined {
  const d = bindingDirection(c.metadata);
  const entry = d.entries[0];
  if (!entry || (d.ignored.length === 0 && (d.input || d.output))) return undefined;
  const where = c.where(entry.name);
  const written = d.entries.map((e) => `'${e.value}'`).join(' and ');
  const loads = d.input && d.output ? 'an input and an output binding' : d.input ? 'an input binding only' : d.output ? 'an output binding only' : 'neither an input nor an output binding';
  const why = d.ignored.length > 0 ? `daprd reads only input and output in it and ignores ${d.ignored.map((p) => `'${p}'`).join(', ')}` : 'daprd finds neither input nor output in it';
  return `${where.file}:${where.line}: component ${c.name} (${c.type}): metadata '${entry.name}' is ${written}: ${why}, so it loads this component as ${loads}, and so does qscale. Write input, output or "input, output"`;
}

export async function loadResources(paths: readonly string[], options: LoadOptions = {}): Promise<LoadedResources> {
  return resolveResources(await loadManifests(paths), options);
}

interface SecretStore {
  name: string;
  get(secretName: string, key: string): string | undefined;
}

export function resolveResources(manifests: Manifest[], options: LoadOptions = {}): LoadedResources {
  const env = options.env ?? process.env;
  const skipped: SkippedManifest[] = [];
  const notices: string[] = [];
  const k8sSecrets = new Map<string, Map<string, string>>();
  const componentDocs: Manifest[] = [];
  const seenComponents = new Map<string, Manifest>();
  const subscriptions: DeclaredSubscription[] = [];
  const seenSubscriptions = new Map<string, Manifest>();

  for (const m of manifests) {
    if (m.kind === 'Secret' && m.apiVersion === 'v1') {
      k8sSecrets.set(requireName(m), readSecret(m));
    } else if (m.kind === 'Component' && m.apiVersion.startsWith('dapr.io/')) {
      if (m.apiVersion !== 'dapr.io/v1alpha1') {
        throw m.error(`unsupported apiVersion '${m.apiVersion}' for Component (expected dapr.io/v1alpha1)`, ['apiVersion']);
      }
      const name = requireName(m);
      const prev = seenComponents.get(name);
      if (prev) throw m.error(`component '${name}' is defined twice (first at ${prev.file}:${prev.line})`, ['metadata', 'name']);
      seenComponents.set(name, m);
      componentDocs.push(m);
    } else if (m.kind === 'Subscription' && m.apiVersion.startsWith('dapr.io/')) {
      const sub = parseSubscription(m);
      const prev = seenSubscriptions.get(m.name);
      if (prev) throw m.error(`Subscription '${m.name}' is defined twice (first at ${prev.file}:${prev.line})`, ['metadata', 'name']);
      seenSubscriptions.set(m.name, m);
      if (options.appId !== undefined && sub.scopes.length > 0 && !sub.scopes.includes(options.appId)) {
        skipped.push({ kind: 'Subscription', name: m.name, file: m.file, line: m.line, reason: `not in scopes of app '${options.appId}'` });
        continue;
      }
      const notice = routelessNotice(sub);
      if (notice) notices.push(notice);
      subscriptions.push(sub);
    } else {
      skipped.push({
        kind: m.kind,
        name: m.name,
        file: m.file,
        line: m.line,
        reason: OTHER_KINDS[m.kind] ?? `kind ${m.kind} (${m.apiVersion}) is not used locally`,
      });
    }
  }

  const secrets: SecretLookup = (name, key) => k8sSecrets.get(name)?.get(key || name);

  // Secret stores first: binding components may point at them through auth.secretStore.
  const stores = new Map<string, SecretStore>();
  const bindingDocs: Manifest[] = [];
  const pubsubDocs = new Set<Manifest>();
  for (const m of componentDocs) {
    const spec = specOf(m);
    const type = requireString(m, spec, 'type', ['spec', 'type']);
    if (!inScope(m, options.appId)) {
      skipped.push({ kind: 'Component', name: m.name, file: m.file, line: m.line, reason: `not in scopes of app '${options.appId}'` });
      continue;
    }
    if (type.startsWith('secretstores.')) {
      stores.set(m.name, makeStore(m, type, readMetadata(m, spec, { env, secrets, stores }), env));
    } else if (type.startsWith('bindings.')) {
      bindingDocs.push(m);
    } else if (type.startsWith('pubsub.')) {
      bindingDocs.push(m);
      pubsubDocs.add(m);
    } else {
      skipped.push({
        kind: 'Component',
        name: m.name,
        file: m.file,
        line: m.line,
        reason: `type ${type} is not a binding nor a pub/sub: the local sidecar serves bindings, pub/sub and secret stores`,
      });
    }
  }

  const components: ResolvedComponent[] = [];
  const pubsubs: ResolvedComponent[] = [];
  for (const m of bindingDocs) {
    const spec = specOf(m);
    const type = requireString(m, spec, 'type', ['spec', 'type']);
    let version: string;
    if (spec.version === undefined) {
      notices.push(`${m.file}:${m.line}: component ${m.name} has no spec.version (the cluster's CRD requires it); assuming v1`);
      version = 'v1';
    } else if (typeof spec.version !== 'string') {
      throw m.error('spec.version must be a string such as v1', ['spec', 'version']);
    } else {
      version = spec.version;
    }
    let initTimeoutMs = DEFAULT_INIT_TIMEOUT_MS;
    if (spec.initTimeout !== undefined) {
      const ms = typeof spec.initTimeout === 'string' ? parseDuration(spec.initTimeout) : undefined;
      if (ms === undefined || ms <= 0) throw m.error(`spec.initTimeout must be a duration such as 5s, got '${String(spec.initTimeout)}'`, ['spec', 'initTimeout']);
      initTimeoutMs = ms;
    }
    if (spec.ignoreErrors !== undefined && typeof spec.ignoreErrors !== 'boolean') {
      throw m.error('spec.ignoreErrors must be true or false', ['spec', 'ignoreErrors']);
    }
    const metadata = readMetadata(m, spec, { env, secrets, stores });
    const metaIndex = metadataIndex(spec);
    const component: ResolvedComponent = {
      name: m.name,
      type,
      version,
      metadata,
      initTimeoutMs,
      ignoreErrors: spec.ignoreErrors === true,
      scopes: scopesOf(m),
      file: m.file,
      line: m.line,
      where: (field?: string) => {
        const idx = field === undefined ? undefined : metaIndex.get(field.toLowerCase());
        return { file: m.file, line: idx === undefined ? m.line : m.lineOf(['spec', 'metadata', idx, 'name']) };
      },
    };
    if (pubsubDocs.has(m)) {
      pubsubs.push(component);
      continue;
    }
    const notice = directionNotice(component);
    if (notice) notices.push(notice);
    components.push(component);
  }
  return { components, pubsubs, subscriptions, manifests, secrets, skipped, notices };
}

function requireName(m: Manifest): string {
  if (!m.name) throw m.error(`${m.kind} is missing metadata.name`, ['metadata']);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(m.name)) {
    throw m.error(`${m.kind} name '${m.name}' is not a valid Kubernetes name (lower case letters, digits, '-' and '.')`, ['metadata', 'name']);
  }
  return m.name;
}

function readSecret(m: Manifest): Map<string, string> {
  const out = new Map<string, string>();
  const data = m.body.data;
  if (data !== undefined && data !== null) {
    if (typeof data !== 'object' || Array.isArray(data)) throw m.error('Secret data must be a mapping of key: base64 value', ['data']);
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(v)) {
        // Never echo the value: it is a secret.
        throw m.error(`Secret ${m.name}: data.${k} is not valid base64 (use stringData for plain text)`, ['data', k]);
      }
      out.set(k, Buffer.from(v, 'base64').toString('utf8'));
    }
  }
  const stringData = m.body.stringData;
  if (stringData !== undefined && stringData !== null) {
    if (typeof stringData !== 'object' || Array.isArray(stringData)) throw m.error('Secret stringData must be a mapping of key: value', ['stringData']);
    for (const [k, v] of Object.entries(stringData as Record<string, unknown>)) {
      if (typeof v !== 'string') throw m.error(`Secret ${m.name}: stringData.${k} must be a string`, ['stringData', k]);
      out.set(k, v);
    }
  }
  return out;
}

function specOf(m: Manifest): Record<string, unknown> {
  const spec = m.body.spec;
  if (spec === undefined || spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw m.error(`component ${m.name} is missing spec (with type and metadata)`, ['spec']);
  }
  return spec as Record<string, unknown>;
}

function requireString(m: Manifest, obj: Record<string, unknown>, key: string, at: FieldPath): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw m.error(`component ${m.name}: missing required field '${at.join('.')}'`, at);
  return v;
}

function scopesOf(m: Manifest): string[] {
  const s = m.body.scopes;
  if (s === undefined || s === null) return [];
  if (!Array.isArray(s) || s.some((x) => typeof x !== 'string')) throw m.error('scopes must be a list of app ids', ['scopes']);
  return s as string[];
}

function inScope(m: Manifest, appId: string | undefined): boolean {
  const scopes = scopesOf(m);
  return appId === undefined || scopes.length === 0 || scopes.includes(appId);
}

function metadataIndex(spec: Record<string, unknown>): Map<string, number> {
  const idx = new Map<string, number>();
  const items = Array.isArray(spec.metadata) ? (spec.metadata as unknown[]) : [];
  items.forEach((item, i) => {
    const n = (item as { name?: unknown } | null)?.name;
    if (typeof n === 'string') idx.set(n.toLowerCase(), i);
  });
  return idx;
}

interface ResolveCtx {
  env: NodeJS.ProcessEnv;
  secrets: SecretLookup;
  stores: Map<string, SecretStore>;
}

function readMetadata(m: Manifest, spec: Record<string, unknown>, ctx: ResolveCtx): Record<string, string> {
  const items = spec.metadata;
  if (items === undefined || items === null) return {};
  if (!Array.isArray(items)) throw m.error(`component ${m.name}: spec.metadata must be a list of {name, value}`, ['spec', 'metadata']);
  const auth = m.body.auth as { secretStore?: unknown } | undefined;
  const storeName = typeof auth?.secretStore === 'string' ? auth.secretStore : undefined;
  if (auth !== undefined && storeName === undefined) throw m.error('auth.secretStore is required when auth is given', ['auth']);
  const out: Record<string, string> = {};
  items.forEach((raw, i) => {
    const at: FieldPath = ['spec', 'metadata', i];
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw m.error(`component ${m.name}: spec.metadata[${i}] must be a mapping with name and value`, at);
    const item = raw as Record<string, unknown>;
    if (typeof item.name !== 'string' || item.name === '') throw m.error(`component ${m.name}: spec.metadata[${i}] is missing 'name'`, at);
    const name = item.name;
    const sources = ['value', 'secretKeyRef', 'envRef'].filter((k) => item[k] !== undefined);
    if (sources.length > 1) throw m.error(`component ${m.name}: metadata '${name}' has both ${sources.join(' and ')}; give one`, at);
    if (item.secretKeyRef !== undefined) {
      out[name] = resolveSecretRef(m, name, item.secretKeyRef, [...at, 'secretKeyRef'], storeName, ctx);
    } else if (item.envRef !== undefined) {
      if (typeof item.envRef !== 'string' || item.envRef === '') throw m.error(`component ${m.name}: metadata '${name}' envRef must be a variable name`, [...at, 'envRef']);
      if (FORBIDDEN_ENV.test(item.envRef)) throw m.error(`component ${m.name}: metadata '${name}' may not read ${item.envRef} (APP_API_TOKEN and DAPR_* are reserved)`, [...at, 'envRef']);
      const v = ctx.env[item.envRef];
      if (v === undefined) throw m.error(`component ${m.name}: metadata '${name}' reads environment variable ${item.envRef}, which is not set`, [...at, 'envRef']);
      out[name] = v;
    } else {
      const v = item.value;
      if (v === undefined || v === null) out[name] = '';
      else if (typeof v === 'string') out[name] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[name] = String(v);
      else out[name] = JSON.stringify(v);
    }
  });
  return out;
}

function resolveSecretRef(m: Manifest, field: string, ref: unknown, at: FieldPath, storeName: string | undefined, ctx: ResolveCtx): string {
  const r = ref as { name?: unknown; key?: unknown } | null;
  if (!r || typeof r !== 'object' || typeof r.name !== 'string' || r.name === '') {
    throw m.error(`component ${m.name}: metadata '${field}' secretKeyRef needs a name`, at);
  }
  if (r.key !== undefined && typeof r.key !== 'string') throw m.error(`component ${m.name}: metadata '${field}' secretKeyRef.key must be a string`, [...at, 'key']);
  const key = (r.key as string | undefined) || r.name;
  let value: string | undefined;
  let from: string;
  if (storeName && storeName !== 'kubernetes') {
    const store = ctx.stores.get(storeName);
    if (!store) throw m.error(`component ${m.name}: auth.secretStore '${storeName}' is not a secret store component in this folder`, ['auth', 'secretStore']);
    value = store.get(r.name, key);
    from = `secret store ${storeName}`;
  } else {
    value = ctx.secrets(r.name, key);
    from = 'the Secrets in this folder';
  }
  // The message names the secret and key, never a value.
  if (value === undefined) throw m.error(`component ${m.name}: metadata '${field}' refers to secret '${r.name}' key '${key}', not found in ${from}`, at);
  return value;
}

function makeStore(m: Manifest, type: string, meta: Record<string, string>, env: NodeJS.ProcessEnv): SecretStore {
  const lower = new Map(Object.entries(meta).map(([k, v]) => [k.toLowerCase(), v]));
  if (type === 'secretstores.local.env') {
    const prefix = lower.get('prefix') ?? '';
    return {
      name: m.name,
      get: (secretName) => {
        if (FORBIDDEN_ENV.test(prefix + secretName)) return undefined;
        return env[prefix + secretName];
      },
    };
  }
  if (type === 'secretstores.local.file') {
    const file = lower.get('secretsfile');
    if (!file) throw m.error(`component ${m.name} (${type}): missing required metadata 'secretsFile'`, ['spec', 'metadata']);
    const sep = lower.get('nestedseparator') || ':';
    const multi = (lower.get('multivalued') ?? 'false').toLowerCase() === 'true';
    const full = path.isAbsolute(file) ? file : path.resolve(path.dirname(m.file), file);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(full, 'utf8'));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'not valid JSON';
      throw m.error(`component ${m.name} (${type}): cannot read secretsFile ${full}: ${why}`, ['spec', 'metadata']);
    }
    if (!parsed || typeof parsed !== 'object') throw m.error(`component ${m.name} (${type}): secretsFile ${full} must hold a JSON object`, ['spec', 'metadata']);
    const obj = parsed as Record<string, unknown>;
    if (multi) {
      return {
        name: m.name,
        get: (secretName, key) => {
          const inner = obj[secretName];
          if (inner && typeof inner === 'object') return flatten(inner as Record<string, unknown>, sep).get(key);
          return typeof inner === 'string' && key === secretName ? inner : undefined;
        },
      };
    }
    const flat = flatten(obj, sep);
    return { name: m.name, get: (secretName) => flat.get(secretName) };
  }
  throw m.error(`component ${m.name}: unsupported secret store type '${type}' (supported locally: secretstores.local.file, secretstores.local.env)`, ['spec', 'type']);
}

function flatten(obj: Record<string, unknown>, sep: string, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}${sep}${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, sep, key, out);
    else out.set(key, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return out;
}

