/**
 * Cross-checks the fields qscale accepts with the CRDs a cluster enforces (../shared/reference/crds). Skipped,
 * visibly, where the reference folder is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { Schema } from '../../src/autoscaler/schema.js';
import { SCALEDOBJECT_SPEC, HPA_ENFORCED_ENUMS } from '../../src/autoscaler/scaledobject-schema.js';
import { TRIGGERAUTH_SPEC } from '../../src/autoscaler/triggerauth.js';

const CANDIDATES = [
  process.env.QSCALE_REFERENCE_DIR,
  path.resolve(process.cwd(), '../shared/reference'),
  '/work/shared/reference',
].filter((p): p is string => !!p);
const REF = CANDIDATES.find((p) => existsSync(path.join(p, 'crds')));
const skip = REF ? false : `reference CRDs not found (looked in ${CANDIDATES.join(', ')})`;

interface CrdNode {
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

function crdSpec(file: string): CrdNode {
  const doc = parse(readFileSync(path.join(REF!, 'crds', file), 'utf8')) as {
    spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: CrdNode } }> };
  };
  const v = doc.spec.versions.find((x) => x.name === 'v1alpha1')!;
  return v.schema.openAPIV3Schema.properties!.spec!;
}

/** Walks the CRD and ours side by side; returns every difference in words. */
function compare(crd: CrdNode, ours: Schema, at: string, out: string[]): void {
  if (ours.type === 'any') return;
  const t = crd.type ?? (crd['x-kubernetes-int-or-string'] ? 'int-or-string' : undefined);
  if (t === 'object' && crd.properties) {
    if (ours.type !== 'object') return void out.push(`${at}: CRD object, ours ${ours.type}`);
    for (const [k, sub] of Object.entries(crd.properties)) {
      const mine = ours.properties[k];
      if (!mine) out.push(`${at}.${k}: in the CRD, not accepted by qscale`);
      else compare(sub, mine, `${at}.${k}`, out);
    }
    for (const k of Object.keys(ours.properties)) if (!crd.properties[k]) out.push(`${at}.${k}: accepted by qscale, not in the CRD`);
    const req = [...(crd.required ?? [])].sort();
    const mineReq = [...(ours.required ?? [])].sort();
    if (JSON.stringify(req) !== JSON.stringify(mineReq)) out.push(`${at}: required ${JSON.stringify(req)} in the CRD, ${JSON.stringify(mineReq)} in qscale`);
    return;
  }
  if (t === 'object' && crd.additionalProperties && typeof crd.additionalProperties === 'object') {
    if (ours.type !== 'map') return void out.push(`${at}: CRD map, ours ${ours.type}`);
    compare(crd.additionalProperties, ours.values, `${at}.*`, out);
    return;
  }
  if (t === 'array') {
    if (ours.type !== 'array') return void out.push(`${at}: CRD array, ours ${ours.type}`);
    if ((crd.minItems ?? 0) !== (ours.minItems ?? 0)) out.push(`${at}: minItems ${crd.minItems} in the CRD, ${ours.minItems} in qscale`);
    compare(crd.items!, ours.items, at, out);
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
    } else if (ours.enum && !HPA_ENFORCED_ENUMS.includes(at)) {
      out.push(`${at}: qscale restricts to ${JSON.stringify(ours.enum)}, the CRD does not`);
    }
    return;
  }
  if (t === 'boolean' && ours.type !== 'boolean') out.push(`${at}: CRD boolean, ours ${ours.type}`);
  if (t === 'int-or-string' && ours.type !== 'quantity') out.push(`${at}: CRD int-or-string, ours ${ours.type}`);
}

test('crd - ScaledObject: every spec field, type, minimum, enum and required list matches keda.sh_scaledobjects.yaml', { timeout: 60_000, skip }, () => {
  const diffs: string[] = [];
  compare(crdSpec('keda.sh_scaledobjects.yaml'), SCALEDOBJECT_SPEC, 'spec', diffs);
  assert.deepEqual(diffs, []);
});

test('crd - TriggerAuthentication: every spec field the CRD lists is accepted, with its required fields', { timeout: 60_000, skip }, () => {
  const diffs: string[] = [];
  compare(crdSpec('keda.sh_triggerauthentications.yaml'), TRIGGERAUTH_SPEC, 'spec', diffs);
  assert.deepEqual(diffs, []);
});

test('crd - ClusterTriggerAuthentication has the same spec as TriggerAuthentication', { timeout: 60_000, skip }, () => {
  const diffs: string[] = [];
  compare(crdSpec('keda.sh_clustertriggerauthentications.yaml'), TRIGGERAUTH_SPEC, 'spec', diffs);
  assert.deepEqual(diffs, []);
});

if (skip) console.log(`# crd cross-check skipped: ${skip}`);
