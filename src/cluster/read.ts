/**
 * What `kubectl apply` would send for a folder, a file or standard input: `-k` when the folder has a kustomization
 * (rendered by `kubectl kustomize`, each document traced back to the file and line it came from), else `-f` (the
 * folder's .yaml, .yml and .json files, not recursive). The dapr.yaml run file is not a manifest: it is left out
 * with a note.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseManifests, type FieldPath, type Manifest } from '../components/manifests.js';
import { ConfigError, errorMessage } from '../errors.js';
import { dotted } from '../autoscaler/schema.js';
import { valueAt } from './kubernetes.js';

const MANIFEST_EXT = /\.(ya?ml|json)$/i;
const RUN_FILE = /^dapr\.ya?ml$/i;
const KUSTOMIZATION = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const ORIGIN = 'config.kubernetes.io/origin';

export interface ClusterInput {
  manifests: Manifest[];
  /** Files or documents that cannot be read as manifests: `kubectl apply` would fail on them. */
  errors: ConfigError[];
  notes: string[];
  /** How the input was read, for the summary ("kubectl kustomize examples/seed"). */
  how: string;
}

export interface ReadOptions {
  /** Read when the target is '-'. */
  stdin?: () => Promise<string>;
  /** The kubectl to render kustomizations with (default: kubectl on PATH). */
  kubectl?: string;
}

function rel(file: string): string {
  const r = path.relative(process.cwd(), file);
  return r === '' || r.startsWith('..') ? file : r;
}

export async function readForCluster(target: string, opts: ReadOptions = {}): Promise<ClusterInput> {
  const out: ClusterInput = { manifests: [], errors: [], notes: [], how: '' };
  if (target === '-') {
    out.how = 'standard input';
    addText(out, await (opts.stdin ?? readStdin)(), '<stdin>');
    return out;
  }
  let stat;
  try {
    stat = await fs.stat(target);
  } catch {
    out.errors.push(new ConfigError(`'${target}' does not exist`, { file: target }));
    return out;
  }
  if (!stat.isDirectory()) {
    out.how = `kubectl apply -f ${target}`;
    await addFile(out, target);
    return out;
  }
  const entries = (await fs.readdir(target)).sort();
  const kustomization = KUSTOMIZATION.find((k) => entries.includes(k));
  if (kustomization) {
    out.how = `kubectl kustomize ${target}`;
    await render(out, target, entries, opts.kubectl ?? 'kubectl');
    return out;
  }
  out.how = `kubectl apply -f ${target}`;
  for (const e of entries) {
    if (!MANIFEST_EXT.test(e)) continue;
    await addFile(out, path.join(target, e));
  }
  return out;
}

async function addFile(out: ClusterInput, file: string): Promise<void> {
  if (RUN_FILE.test(path.basename(file))) {
    out.notes.push(`${rel(file)}: skipped: the run file of \`qscale up\` is not a manifest (\`kubectl apply -f\` of the whole folder would fail on it: apply the manifests by name, or a kustomization that leaves it out)`);
    return;
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    out.errors.push(new ConfigError(`cannot be read: ${errorMessage(err)}`, { file: rel(file) }));
    return;
  }
  addText(out, text, rel(file));
}

function addText(out: ClusterInput, text: string, file: string): void {
  try {
    out.manifests.push(...parseManifests(text, file));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out.errors.push(new ConfigError(`${err.message.replace(/^[^:]+:\d+: /, '')} (\`kubectl apply\` refuses it)`, { file: err.file, line: err.line, field: err.field }));
  }
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr, error });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Renders the kustomization through a wrapper that asks kustomize to annotate each document with the file it came
 * from, so every error still names file:line; the annotation is removed before the documents are checked.
 */
async function render(out: ClusterInput, folder: string, entries: readonly string[], kubectl: string): Promise<void> {
  const wrap = await fs.mkdtemp(path.join(os.tmpdir(), 'qscale-kustomize-'));
  try {
    const resource = path.relative(wrap, path.resolve(folder)).split(path.sep).join('/');
    await fs.writeFile(path.join(wrap, 'kustomization.yaml'), `resources:\n- ${resource}\nbuildMetadata: [originAnnotations]\n`);
    const r = await run(kubectl, ['kustomize', wrap], wrap);
    if (r.error || r.code !== 0) {
      const why = r.error
        ? (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${kubectl} was not found on PATH` : r.error.message
        : (r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`).replace(/^.*err="/, '').replace(/"$/, '');
      out.errors.push(new ConfigError(`cannot render the kustomization (as \`kubectl apply -k\` would): ${why}`, { file: rel(path.join(folder, 'kustomization.yaml')) }));
      return;
    }
    const rendered = parseManifests(r.stdout, `${rel(folder)} (rendered)`);
    const sources = new Map<string, Manifest[]>();
    const used = new Set<string>();
    for (const m of rendered) {
      const originPath = originOf(m);
      const file = originPath ? path.resolve(wrap, originPath) : undefined;
      let candidates: Manifest[] = [];
      if (file) {
        used.add(file);
        if (!sources.has(file)) {
          const text = await fs.readFile(file, 'utf8').catch(() => '');
          sources.set(file, safeParse(text, rel(file)));
        }
        candidates = sources.get(file)!;
      }
      const sameKind = candidates.filter((s) => s.kind === m.kind);
      const src = sameKind.find((s) => s.name === m.name) ?? (sameKind.length === 1 ? sameKind[0] : undefined);
      out.manifests.push(traced(m, src));
    }
    for (const e of entries) {
      const full = path.resolve(folder, e);
      if (!MANIFEST_EXT.test(e) || KUSTOMIZATION.includes(e) || used.has(full)) continue;
      out.notes.push(RUN_FILE.test(e)
        ? `${rel(full)}: the run file of \`qscale up\`, left out of the kustomization (it is not a manifest)`
        : `${rel(full)}: not in the kustomization: \`kubectl apply -k\` does not apply it`);
    }
  } finally {
    await fs.rm(wrap, { recursive: true, force: true });
  }
}

function safeParse(text: string, file: string): Manifest[] {
  try {
    return parseManifests(text, file);
  } catch {
    return [];
  }
}

function originOf(m: Manifest): string | undefined {
  const ann = (m.body.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations;
  const raw = ann?.[ORIGIN];
  if (typeof raw !== 'string') return undefined;
  const parsed = parseYaml(raw) as { path?: unknown } | null;
  return typeof parsed?.path === 'string' ? parsed.path : undefined;
}

/** Rendered documents traced to a source file: whether a field's value differs from that file's (a patch set it). */
const patchedBy = new WeakMap<Manifest, (p: FieldPath) => boolean>();

/**
 * The error for `fieldPath` of `m`: file:line of the field (of its source file when rendered by kustomize, saying
 * so when a patch set its value) and the field as a dotted path.
 */
export function errorAt(m: Manifest, message: string, fieldPath: FieldPath = []): ConfigError {
  const patched = patchedBy.get(m)?.(fieldPath) ?? false;
  return new ConfigError(patched ? `${message} (as the kustomization renders it)` : message, {
    file: m.file,
    line: m.lineOf(fieldPath),
    field: dotted(fieldPath) || undefined,
  });
}

/** The rendered document without the origin annotation, its lines taken from the file it came from. */
function traced(m: Manifest, src: Manifest | undefined): Manifest {
  const metadata = { ...(m.body.metadata as Record<string, unknown>) };
  const annotations = { ...(metadata.annotations as Record<string, unknown>) };
  delete annotations[ORIGIN];
  if (Object.keys(annotations).length === 0) delete metadata.annotations;
  else metadata.annotations = annotations;
  const body = { ...m.body, metadata };
  if (!src) return { ...m, body };
  const t: Manifest = {
    ...m,
    body,
    file: src.file,
    line: src.line,
    lineOf: (p) => src.lineOf(p),
    error: (message, fieldPath = []) => errorAt(t, message, fieldPath),
  };
  patchedBy.set(t, (p) => JSON.stringify(valueAt(body, p)) !== JSON.stringify(valueAt(src.body, p)));
  return t;
}
