/**
 * Components for tests built from real YAML, so positions and secret handling are what users get.
 * Kept apart from table.ts so tests and fixture processes can build one without starting the table's broker helpers.
 */
import { parseManifests } from '../../src/components/manifests.js';
import { resolveResources } from '../../src/components/resources.js';
import type { ResolvedComponent } from '../../src/backends/types.js';

export function componentFromYaml(
  name: string, type: string, metadata: Record<string, string>, opts: { initTimeout?: string; file?: string } = {},
): ResolvedComponent {
  const items = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`).join('\n');
  const yaml = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: ${type}
  version: v1
${opts.initTimeout ? `  initTimeout: ${opts.initTimeout}\n` : ''}  metadata:
${items}
`;
  const { components, pubsubs } = resolveResources(parseManifests(yaml, opts.file ?? `conformance/${name}.yaml`));
  const c = components[0] ?? pubsubs[0];
  if (!c) throw new Error(`no component parsed for ${type}`);
  return c;
}
