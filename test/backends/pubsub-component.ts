/**
 * Pub/sub Components for the broker tests, from real YAML so positions and secret handling are what users get:
 * entries start at line 9 (line 10 with an initTimeout), two lines each. Built as a binding document while the
 * loader keeps no pub/sub components, with the same positions, then given its pub/sub type.
 */
import { parseManifests, resolveResources } from '../../src/components/index.js';
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
  const file = opts.file ?? 'pubsub.yaml';
  const direct = resolveResources(parseManifests(yaml(type), file)).components[0];
  if (direct) return direct;
  const viaBinding = resolveResources(parseManifests(yaml('bindings.pubsub-under-test'), file)).components[0];
  if (!viaBinding) throw new Error(`no component parsed for ${type}`);
  return { ...viaBinding, type };
}
