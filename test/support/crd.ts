/**
 * The CRDs a cluster enforces (../shared/reference/crds), and a walk that compares one with qscale's schema form,
 * for the tests that keep the two in step. The reference folder may be absent: `skip` then says where it was looked
 * for, and the tests skip visibly.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { Schema } from '../../src/autoscaler/schema.js';

const CANDIDATES = [
  process.env.QSCALE_REFERENCE_DIR,
  path.resolve(process.cwd(), '../shared/reference'),
  '/work/shared/reference',
].filter((p): p is string => !!p);

/** The reference folder, when present. */
export const REF = CANDIDATES.find((p) => existsSync(path.join(p, 'crds')));
export const skip: false | string = REF ? false : `reference CRDs not found (looked in ${CANDIDATES.join(', ')})`;

export interface CrdNode {
  type?: string;
  properties?: Record<string, CrdNode>;
  items?: CrdNode;
  required?: string[];
  enum?: string[];
  minimum?: number;
  minItems?: number;
  additionalProperties?: CrdNode | boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

/** The openAPIV3Schema of `version` in a CRD file of the reference folder. */
export function crdSchema(file: string, version = 'v1alpha1'): CrdNode {
  const doc = parse(readFileSync(path.join(REF!, 'crds', file), 'utf8')) as {
    spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: CrdNode } }> };
  };
  return doc.spec.versions.find((x) => x.name === version)!.schema.openAPIV3Schema;
}

/** The spec's schema of `version` in a CRD file of the reference folder. */
export function crdSpec(file: string, version = 'v1alpha1'): CrdNode {
  return crdSchema(file, version).properties!.spec!;
}

export interface CompareOptions {
  /** Fields where qscale enforces an enum the CRD does not have (the API server does, elsewhere). */
  enforcedEnums?: readonly string[];
}

/** Walks the CRD and ours side by side; pushes every difference in words. */
export function compare(crd: CrdNode, ours: Schema, at: string, out: string[], opts: CompareOptions = {}): void {
  if (ours.type === 'any') return;
  const t = crd.type ?? (crd['x-kubernetes-int-or-string'] ? 'int-or-string' : undefined);
  if (t === 'object' && crd.properties) {
    if (ours.type !== 'object') return void out.push(`${at}: CRD object, ours ${ours.type}`);
    for (const [k, sub] of Object.entries(crd.properties)) {
      const mine = ours.properties[k];
      if (!mine) out.push(`${at}.${k}: in the CRD, not accepted by qscale`);
      else compare(sub, mine, `${at}.${k}`, out, opts);
    }
    for (const k of Object.keys(ours.properties)) if (!crd.properties[k]) out.push(`${at}.${k}: accepted by qscale, not in the CRD`);
    const req = [...(crd.required ?? [])].sort();
    const mineReq = [...(ours.required ?? [])].sort();
    if (JSON.stringify(req) !== JSON.stringify(mineReq)) out.push(`${at}: required ${JSON.stringify(req)} in the CRD, ${JSON.stringify(mineReq)} in qscale`);
    return;
  }
  if (t === 'object' && crd.additionalProperties && typeof crd.additionalProperties === 'object') {
    if (ours.type !== 'map') return void out.push(`${at}: CRD map, ours ${ours.type}`);
    compare(crd.additionalProperties, ours.values, `${at}.*`, out, opts);
    return;
  }
  if (t === 'array') {
    if (ours.type !== 'array') return void out.push(`${at}: CRD array, ours ${ours.type}`);
    if ((crd.minItems ?? 0) !== (ours.minItems ?? 0)) out.push(`${at}: minItems ${crd.minItems} in the CRD, ${ours.minItems} in qscale`);
    compare(crd.items!, ours.items, at, out, opts);
    return;
  }
  if (t === 'integer') {
    if (ours.type !== 'integer') return void out.push(`${at}: CRD integer, ours ${ours.type}`);
    if (crd.minimum !== undefined && ours.minimum !== crd.minimum) out.push(`${at}: minimum ${crd.minimum} in the CRD, ${ours.minimum} in qscale`);
    return;
  }
  if (t === 'string') {
    if (ours.type !== 'string') return void out.push(`${at}: CRD string, ours ${ours.type}`);
    if (crd.enum) {
      if (JSON.stringify([...crd.enum].sort()) !== JSON.stringify([...(ours.enum ?? [])].sort())) {
        out.push(`${at}: enum ${JSON.stringify(crd.enum)} in the CRD, ${JSON.stringify(ours.enum)} in qscale`);
      }
    } else if (ours.enum && !(opts.enforcedEnums ?? []).includes(at)) {
      out.push(`${at}: qscale restricts to ${JSON.stringify(ours.enum)}, the CRD does not`);
    }
    return;
  }
  if (t === 'boolean' && ours.type !== 'boolean') out.push(`${at}: CRD boolean, ours ${ours.type}`);
  if (t === 'int-or-string' && ours.type !== 'quantity') out.push(`${at}: CRD int-or-string, ours ${ours.type}`);
}
