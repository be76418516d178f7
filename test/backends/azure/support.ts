/** Service Bus test helpers: components from real YAML (with the seed's Secret), so file:line and secrets are real. */
import { parseManifests } from '../../../src/components/manifests.js';
import { resolveResources } from '../../../src/components/resources.js';
import type { ResolvedComponent } from '../../../src/backends/types.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';

export const SECRET_KEY = 'c2VjcmV0LWtleS1wbGFjZWhvbGRlci0xMjM0NTY3ODk=';
export const NAMESPACE_CS =
  `Endpoint=sb://qscale-test.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${SECRET_KEY}`;

export const FILE = 'azure/binding.yaml';

/**
 * The seed's Component, connectionString from a Kubernetes Secret, plus `metadata` entries given as values.
 * Line numbers: the Component starts at line 1; each extra entry takes two lines after queueName.
 */
export function seedComponent(metadata: Record<string, string> = {}, connectionString = NAMESPACE_CS, initTimeout = '5s'): ResolvedComponent {
  const items = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`).join('\n');
  const yaml = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  initTimeout: ${initTimeout}
  metadata:
  - name: connectionString
    secretKeyRef:
      name: servicebus-management
      key: servicebus-management-connectionstring
  - name: queueName
    value: "msgqueue"
${items}
---
apiVersion: v1
kind: Secret
metadata:
  name: servicebus-management
type: Opaque
data:
  servicebus-management-connectionstring: "${Buffer.from(connectionString).toString('base64')}"
`;
  const { components } = resolveResources(parseManifests(yaml, FILE));
  const c = components[0];
  if (!c) throw new Error('no component parsed');
  return c;
}

/** A component with exactly these metadata values (no Secret). */
export function bareComponent(metadata: Record<string, string>): ResolvedComponent {
  const items = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`).join('\n');
  const yaml = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
${items}
`;
  const { components } = resolveResources(parseManifests(yaml, FILE));
  const c = components[0];
  if (!c) throw new Error('no component parsed');
  return c;
}

export function trigger(metadata: Record<string, string>, index = 0): ResolvedTrigger {
  return {
    index,
    type: 'azure-servicebus',
    metricType: 'AverageValue',
    metadata,
    sensitive: ['connection'],
    subject: `trigger ${index} (azure-servicebus) of ScaledObject bindingconsumer-scaler`,
    where: (field) => ({ file: 'azure/consumer-scaling.yaml', line: field === 'connection' ? 20 : 14 }),
  };
}
