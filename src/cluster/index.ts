/**
 * `qscale validate --cluster`: every manifest of a folder (or file, or standard input) checked as a cluster with
 * Kubernetes 1.33, KEDA 2.20 and Dapr 1.18 would take it, before anything is deployed. Errors are what `kubectl
 * apply` (strict field validation, its default) or the component would refuse, each naming file:line and field;
 * warnings are what the cluster accepts but would not do what the file seems to say.
 */
import { resolveResources, type SecretLookup } from '../components/resources.js';
import type { FieldPath, Manifest } from '../components/manifests.js';
import { ConfigError } from '../errors.js';
import { checkComponent, checkSubscription, isCheckedDaprKind } from './dapr.js';
import { KEDA_KINDS, checkKeda } from './keda.js';
import { checkBuiltin, checkObjectMeta, nameRules, type SchemaIssue } from './kubernetes.js';
import { errorAt, readForCluster, type ReadOptions } from './read.js';
import { KUBERNETES_VERSION, versionsLine } from './versions.js';

/** The versions Dapr's CRDs serve, for the kinds whose CRDs qscale carries. */
const DAPR_SERVED: Readonly<Record<string, readonly string[]>> = {
  Component: ['dapr.io/v1alpha1'],
  Subscription: ['dapr.io/v1alpha1', 'dapr.io/v2alpha1'],
};

export interface ClusterEntry {
  kind: string;
  name: string;
  /** file:line */
  where: string;
  note: string;
}

export interface ClusterReport {
  /** How the input was read ("kubectl kustomize examples/seed"). */
  how: string;
  versions: string;
  entries: ClusterEntry[];
  /** What the cluster would refuse. */
  errors: ConfigError[];
  /** Accepted, but not doing what the file seems to say. Each line starts with file:line. */
  warnings: string[];
  notes: string[];
}

export async function checkCluster(target: string, opts: ReadOptions = {}): Promise<ClusterReport> {
  const input = await readForCluster(target, opts);
  const report: ClusterReport = { how: input.how, versions: versionsLine(), entries: [], errors: [...input.errors], warnings: [], notes: [...input.notes] };
  const manifests = input.manifests.flatMap((m) => expandList(m, report.errors));
  const secrets = secretsOf(manifests);
  const entry = (m: Manifest, note: string, kind = m.kind, name = m.name): void => {
    report.entries.push({ kind, name, where: `${m.file}:${m.line}`, note });
  };
  const issues = (m: Manifest, subject: string, list: readonly SchemaIssue[]): void => {
    for (const i of list) report.errors.push(errorAt(m, `${subject}: ${i.message}`, i.path));
  };

  for (const m of manifests) {
    const subject = `${m.kind} ${m.name || '(no name)'}`;
    if (m.apiVersion.startsWith('kustomize.config.k8s.io/')) {
      report.notes.push(`${m.file}:${m.line}: ${m.kind} is kustomize's, not a manifest: validate its folder to check what it renders`);
      continue;
    }
    const isKeda = KEDA_KINDS.has(m.kind) && m.apiVersion.startsWith('keda.');
    const isDapr = m.apiVersion.startsWith('dapr.io/');
    if (!isKeda && !isDapr) {
      const verdict = await checkBuiltin(m.apiVersion, m.kind, m.body);
      if (verdict.builtin) {
        issues(m, subject, verdict.issues);
        entry(m, `${m.apiVersion}: Kubernetes ${KUBERNETES_VERSION} schema${verdict.issues.length ? `, ${verdict.issues.length} error(s)` : ''}`);
        continue;
      }
      report.notes.push(`${m.file}:${m.line}: ${subject} (${m.apiVersion}): not checked: no schema for this kind here; the cluster needs its CRD`);
      issues(m, subject, [...checkObjectMeta(m.body.metadata), ...nameRules(m.kind, m.body.metadata)]);
      continue;
    }
    // Custom resources: ObjectMeta and the name as the API server checks them for every kind.
    issues(m, subject, [...checkObjectMeta(m.body.metadata), ...nameRules(m.kind, m.body.metadata)]);
    if (isDapr) {
      const served = DAPR_SERVED[m.kind];
      if (served && !served.includes(m.apiVersion)) {
        report.errors.push(errorAt(m, `${subject}: Dapr serves ${m.kind} as ${served.join(' and ')}, not ${m.apiVersion}: \`kubectl apply\` finds no such kind`, ['apiVersion']));
        continue;
      }
      if (!isCheckedDaprKind(m)) {
        report.notes.push(`${m.file}:${m.line}: ${subject} (${m.apiVersion}): not checked: qscale has the Dapr CRD schemas of Component and Subscription only`);
        continue;
      }
      const f = m.kind === 'Component' ? checkComponent(m, secrets) : checkSubscription(m);
      report.errors.push(...f.errors);
      report.warnings.push(...f.warnings);
      entry(m, f.note);
    }
  }

  const keda = checkKeda({ manifests, secrets });
  report.errors.push(...keda.errors);
  report.notes.push(...keda.notes);
  for (const c of keda.checked) entry(c.manifest, c.note, c.kind, c.name);

  report.entries.sort((a, b) => a.where.localeCompare(b.where, undefined, { numeric: true }));
  report.errors = dedupe(report.errors);
  return report;
}

/** A v1 List is applied item by item, as kubectl does; each item keeps its lines in the file. */
function expandList(m: Manifest, errors: ConfigError[]): Manifest[] {
  if (m.apiVersion !== 'v1' || m.kind !== 'List') return [m];
  const items = m.body.items;
  if (!Array.isArray(items)) {
    errors.push(errorAt(m, 'List: items must be a list of manifests', ['items']));
    return [];
  }
  const out: Manifest[] = [];
  items.forEach((item: unknown, i: number) => {
    const body = item as Record<string, unknown> | null;
    const at = (p: FieldPath): FieldPath => ['items', i, ...p];
    if (!body || typeof body !== 'object' || typeof body.kind !== 'string' || typeof body.apiVersion !== 'string') {
      errors.push(errorAt(m, `List: items[${i}] needs apiVersion and kind`, at([])));
      return;
    }
    const name = (body.metadata as { name?: unknown } | undefined)?.name;
    const lineOf = (p: FieldPath) => m.lineOf(at(p));
    const sub: Manifest = {
      apiVersion: body.apiVersion,
      kind: body.kind,
      name: typeof name === 'string' ? name : '',
      body,
      file: m.file,
      line: lineOf([]),
      lineOf,
      error: (message, p = []) => errorAt(m, message, at(p)),
    };
    out.push(sub);
  });
  return out;
}

/** The folder's Kubernetes Secrets (data decoded, stringData over it), as daprd's and KEDA's lookups see them. */
function secretsOf(manifests: readonly Manifest[]): { has(name: string): boolean; lookup: SecretLookup } {
  const docs = manifests.filter((m) => m.kind === 'Secret' && m.apiVersion === 'v1' && m.name);
  const names = new Set(docs.map((m) => m.name));
  try {
    return { has: (n) => names.has(n), lookup: resolveResources(docs).secrets };
  } catch {
    // A Secret that cannot be read is reported by its schema check; what refers to Secrets is then not judged.
    return { has: () => false, lookup: () => undefined };
  }
}

function dedupe(errors: readonly ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => (seen.has(e.message) ? false : (seen.add(e.message), true)));
}
