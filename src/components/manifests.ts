/**
 * Reads a folder (or files) of Kubernetes YAML the way `kubectl apply -f` does: multi-document files, any order.
 * Each document keeps its file and a way to find the line of any field, so every config error can say file:line.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { ConfigError } from '../errors.js';

export type FieldPath = ReadonlyArray<string | number>;

export interface Manifest {
  apiVersion: string;
  kind: string;
  /** metadata.name, '' when absent (the kind's own parser reports it). */
  name: string;
  /** The document as plain JSON data. */
  body: Record<string, unknown>;
  file: string;
  /** 1-based line of the document's start. */
  line: number;
  /** 1-based line of the node at `fieldPath`, or of its nearest existing parent. */
  lineOf(fieldPath: FieldPath): number;
  /** A ConfigError pointing at `fieldPath` in this document. */
  error(message: string, fieldPath?: FieldPath): ConfigError;
}

const YAML_EXT = /\.(ya?ml)$/i;
/** The multi-app run file lives beside the manifests but is not one (`qscale up` reads it on its own). */
const RUN_FILE = /^dapr\.ya?ml$/i;

/** Lists YAML files under each path (a file or a folder, not recursive, sorted like kubectl). */
export async function listYamlFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let stat;
    try {
      stat = await fs.stat(p);
    } catch {
      throw new ConfigError(`resources path '${p}' does not exist`, { file: p });
    }
    if (stat.isDirectory()) {
      const entries = (await fs.readdir(p)).filter((f) => YAML_EXT.test(f) && !RUN_FILE.test(f)).sort();
      for (const e of entries) out.push(path.join(p, e));
    } else {
      out.push(p);
    }
  }
  return out;
}

export async function loadManifests(paths: readonly string[]): Promise<Manifest[]> {
  const files = await listYamlFiles(paths);
  const all: Manifest[] = [];
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8');
    all.push(...parseManifests(text, file));
  }
  return all;
}

/** Parses one YAML text of one or many documents. Empty documents are skipped, as kubectl does. */
export function parseManifests(text: string, file: string): Manifest[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false });
  if (!Array.isArray(docs)) {
    // yaml returns an EmptyStream for an empty file
    return [];
  }
  const out: Manifest[] = [];
  for (const doc of docs) {
    const firstErr = doc.errors[0];
    if (firstErr) {
      const line = lc.linePos(firstErr.pos[0]).line;
      throw new ConfigError(`invalid YAML: ${firstErr.message.split('\n')[0]}`, { file, line });
    }
    if (doc.contents === null) continue;
    const body = doc.toJS({ maxAliasCount: 100 }) as unknown;
    const docLine = lc.linePos(doc.contents.range?.[0] ?? 0).line;
    if (body === null || body === undefined) continue;
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw new ConfigError('a Kubernetes manifest must be a mapping with apiVersion and kind', { file, line: docLine });
    }
    const obj = body as Record<string, unknown>;
    const lineOf = (fieldPath: FieldPath): number => nodeLine(doc, lc, fieldPath) ?? docLine;
    const m: Manifest = {
      apiVersion: typeof obj.apiVersion === 'string' ? obj.apiVersion : '',
      kind: typeof obj.kind === 'string' ? obj.kind : '',
      name: typeof (obj.metadata as Record<string, unknown> | undefined)?.name === 'string'
        ? String((obj.metadata as Record<string, unknown>).name)
        : '',
      body: obj,
      file,
      line: docLine,
      lineOf,
      error: (message, fieldPath = []) =>
        new ConfigError(message, { file, line: lineOf(fieldPath), field: fieldPath.join('.') || undefined }),
    };
    if (!m.kind) throw m.error("missing field 'kind'", []);
    if (!m.apiVersion) throw m.error("missing field 'apiVersion'", []);
    out.push(m);
  }
  return out;
}

function nodeLine(doc: Document, lc: LineCounter, fieldPath: FieldPath): number | undefined {
  let node: Node | null | undefined = doc.contents as Node | null;
  let best = node?.range ? lc.linePos(node.range[0]).line : undefined;
  for (const key of fieldPath) {
    if (!node) break;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
      if (!pair) break;
      const keyNode = pair.key as Node | null;
      if (keyNode && keyNode.range) best = lc.linePos(keyNode.range[0]).line;
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (!item) break;
      if (item.range) best = lc.linePos(item.range[0]).line;
      node = item;
    } else {
      break;
    }
  }
  return best;
}
