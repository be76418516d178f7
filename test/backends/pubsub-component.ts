/**
 * Helpers of the pub/sub broker tests. Components from real YAML, so positions and secret handling are what users get:
 * entries start at line 9 (line 10 with an initTimeout), two lines each.
 */
import assert from 'node:assert/strict';
import { parseManifests, resolveResources } from '../../src/components/index.js';
import type { FieldSpec, MetadataSpec } from '../../src/components/metadata.js';
import type { ResolvedComponent } from '../../src/backends/types.js';

export function pubsubComponent(
  type: string, metadata: Record<string, string>, opts: { name?: string; initTimeout?: string; file?: string } = {},
): ResolvedComponent {
  const yaml = (asType: string): string => [
    'apiVersion: dapr.io/v1alpha1',
    'kind: Component',
    'metadata:',
    `  name: ${opts.name ?? 'orders-pubsub'}`,
    'spec:',
    `  type: ${asType}`,
    '  version: v1',
    ...(opts.initTimeout ? [`  initTimeout: ${opts.initTimeout}`] : []),
    '  metadata:',
    ...Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`),
  ].join('\n');
  const c = resolveResources(parseManifests(yaml(type), opts.file ?? 'pubsub.yaml')).pubsubs[0];
  if (!c) throw new Error(`no component parsed for ${type}`);
  return c;
}

/** A field of a components-contrib metadata.yaml. */
export interface ReferenceField {
  name: string;
  default?: string;
  type?: string;
  sensitive?: boolean;
  allowedValues?: string[];
}

/**
 * One metadata.yaml field against a declared spec: declared, with the same sensitivity, type and allowed values.
 * Returns what an absent field gives and what the yaml's default ('"false"', '0', '"3s"') gives, both read by the
 * field's own parser, for the caller to compare.
 */
export function compareWithReference(spec: MetadataSpec, r: ReferenceField): { field: FieldSpec; absent: unknown; fromYaml: unknown } {
  const field = spec.fields.find((f) => f.name === r.name);
  assert.ok(field, `'${r.name}' is declared`);
  assert.equal(field.sensitive === true, r.sensitive === true, `sensitive flag of '${r.name}'`);
  if (r.type === 'bool') assert.equal(field.type, 'boolean', `type of '${r.name}'`);
  if (r.type === 'number') assert.ok(field.type === 'integer' || field.type === 'number', `type of '${r.name}'`);
  if (r.type === 'duration') assert.equal(field.type, 'duration', `type of '${r.name}'`);
  if (r.allowedValues) assert.deepEqual([...(field.enum ?? [])].sort(), [...r.allowedValues].sort(), `allowed values of '${r.name}'`);
  const ctx = { subject: 'cross-check', where: () => ({}) };
  const absent = (spec.parse({}, ctx) as Record<string, unknown>)[r.name];
  const yamlValue = r.default?.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  const fromYaml = yamlValue === undefined ? undefined : (spec.parse({ [r.name]: yamlValue }, ctx) as Record<string, unknown>)[r.name];
  return { field, absent, fromYaml };
}
