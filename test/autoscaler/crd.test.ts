/**
 * Cross-checks the fields qscale accepts with the CRDs a cluster enforces (../shared/reference/crds). Skipped,
 * visibly, where the reference folder is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Schema } from '../../src/autoscaler/schema.js';
import { SCALEDOBJECT_SPEC, HPA_ENFORCED_ENUMS } from '../../src/autoscaler/scaledobject-schema.js';
import { TRIGGERAUTH_SPEC } from '../../src/autoscaler/triggerauth.js';
import { compare as compareWith, crdSpec, skip, type CrdNode } from '../support/crd.js';

/** Walks the CRD and ours side by side; returns every difference in words. */
function compare(crd: CrdNode, ours: Schema, at: string, out: string[]): void {
  compareWith(crd, ours, at, out, { enforcedEnums: HPA_ENFORCED_ENUMS });
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
