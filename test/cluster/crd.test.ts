/**
 * The Dapr and KEDA CRD schemas `validate --cluster` carries, compared field by field with the CRDs a cluster
 * enforces (../shared/reference/crds). Skipped, visibly, where the reference folder is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMPONENT_DOC, SUBSCRIPTION_SPECS, subscriptionDoc } from '../../src/cluster/dapr.js';
import { SCALEDJOB_SPEC } from '../../src/cluster/keda.js';
import { compare, crdSchema, crdSpec, skip } from '../support/crd.js';

test('crd - Dapr Component: every field, type and required list matches dapr.io_components.yaml', { timeout: 60_000, skip }, () => {
  const diffs: string[] = [];
  compare(crdSchema('dapr.io_components.yaml'), COMPONENT_DOC, 'Component', diffs);
  assert.deepEqual(diffs, []);
});

test('crd - Dapr Subscription v1alpha1 and v2alpha1 match dapr.io_subscriptions.yaml', { timeout: 60_000, skip }, () => {
  assert.deepEqual(Object.keys(SUBSCRIPTION_SPECS).sort(), ['dapr.io/v1alpha1', 'dapr.io/v2alpha1']);
  for (const version of ['v1alpha1', 'v2alpha1']) {
    const diffs: string[] = [];
    compare(crdSchema('dapr.io_subscriptions.yaml', version), subscriptionDoc(`dapr.io/${version}`), `Subscription ${version}`, diffs);
    assert.deepEqual(diffs, [], version);
  }
});

test('crd - ScaledJob: every spec field but jobTargetRef (a batch/v1 JobSpec) matches keda.sh_scaledjobs.yaml', { timeout: 60_000, skip }, () => {
  const diffs: string[] = [];
  compare(crdSpec('keda.sh_scaledjobs.yaml'), SCALEDJOB_SPEC, 'spec', diffs);
  assert.deepEqual(diffs, []);
});

if (skip) console.log(`# crd cross-check skipped: ${skip}`);
