/**
 * What the cluster-file tests share: the example folders, `kubectl kustomize` (kubectl is on machines of this kind;
 * without it a test fails under CI=true and skips with the reason elsewhere, as for brokers), and the repository's
 * paths.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const EXAMPLES = path.join(ROOT, 'examples');
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const run = promisify(execFile);

/** One Kubernetes object as the cluster receives it. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The example folders: each has the run file `qscale up` reads (examples/apps is a kustomize base, not one). */
export function exampleNames(): string[] {
  return readdirSync(EXAMPLES, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(EXAMPLES, d.name, 'dapr.yaml')))
    .map((d) => d.name)
    .sort();
}

/** Every folder under examples/ that `kubectl apply -k` takes, relative to examples/ ("seed", "apps", ...). */
export function kustomizationDirs(dir = EXAMPLES, rel = ''): string[] {
  const out: string[] = [];
  if (rel && existsSync(path.join(dir, 'kustomization.yaml'))) out.push(rel);
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory()) out.push(...kustomizationDirs(path.join(dir, d.name), rel ? `${rel}/${d.name}` : d.name));
  }
  return out.sort();
}

let kubectlFound: boolean | undefined;

/**
 * True when kubectl can render. Otherwise: under CI=true throws (the run goes red: CI machines have kubectl), and
 * elsewhere marks the test skipped with the reason and returns false.
 */
export function requireKubectl(t: TestContext): boolean {
  kubectlFound ??= spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 }).status === 0;
  if (kubectlFound) return true;
  const reason = 'kubectl is not on the PATH (`kubectl kustomize` renders the examples as `kubectl apply -k` would)';
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true: install kubectl 1.27 or later`);
  t.skip(`${reason}: install kubectl to run this test`);
  return false;
}

const rendered = new Map<string, Promise<K8sObject[]>>();

/** `kubectl kustomize examples/<dir>`, parsed. Rejects with kubectl's own error. */
export function render(dir: string): Promise<K8sObject[]> {
  let p = rendered.get(dir);
  if (!p) {
    p = renderText(dir).then((text) => parseObjects(text, `kubectl kustomize examples/${dir}`));
    rendered.set(dir, p);
  }
  return p;
}

export async function renderText(dir: string): Promise<string> {
  try {
    const { stdout } = await run('kubectl', ['kustomize', path.join(EXAMPLES, dir)], { timeout: 60_000, maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl kustomize examples/${dir} failed: ${(e.stderr || e.message).trim()}`);
  }
}

export function parseObjects(text: string, source: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
    const body = doc.toJS() as unknown;
    if (body === null || body === undefined) continue;
    out.push(body as K8sObject);
  }
  return out;
}

export function ofKind(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The env a Deployment's containers set by value. */
export function containerEnv(deployment: K8sObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of containersOf(deployment)) for (const e of c.env ?? []) env[e.name] = e.value ?? '';
  return env;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ containerPort: number; name?: string }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}
type Probe = { httpGet?: { port: number | string }; tcpSocket?: { port: number | string } };

export function containersOf(deployment: K8sObject): Container[] {
  return (deployment.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers;
}

export function readText(rel: string): string {
  return readFileSync(path.join(ROOT, rel), 'utf8');
}

/** The binding types of an example folder's Components, read from its YAML files (the run file aside). */
export function componentTypes(example: string): string[] {
  const dir = path.join(EXAMPLES, example);
  const types: string[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n) && n !== 'dapr.yaml' && n !== 'kustomization.yaml')) {
    for (const o of parseObjects(readFileSync(path.join(dir, f), 'utf8'), f)) {
      const type = (o.spec as { type?: unknown } | undefined)?.type;
      if (o.kind === 'Component' && typeof type === 'string') types.push(type);
    }
  }
  return types;
}

/** qscale's own binding types: daprd has no such component, so a folder that uses one cannot run on a cluster. */
export const QSCALE_ONLY_TYPE = /^bindings\.qscale\./;

/** The README's statement that an example does not run on a cluster; the tests hold the two in step. */
export const LOCAL_ONLY = /\*\*Local only\*\*/;
