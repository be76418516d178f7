/**
 * daprd fills templates in every metadata value of a component before the component sees it (dapr/dapr
 * pkg/runtime/meta): {uuid} (a new one each time), {podName} (an error when the pod name is unknown), {namespace}
 * ("<namespace>.<app id>") and {appID}. Pub/sub names depend on them — `durableName: "{appID}"` is how a JetStream
 * component gives each app its own consumer — so the pub/sub types apply them the same way. Kept with the component loader: any component type may use them.
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { ResolvedComponent } from '../backends/types.js';

export function withMetadataTemplates(c: ResolvedComponent, appId: string, env: NodeJS.ProcessEnv = process.env): ResolvedComponent {
  const metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(c.metadata)) {
    let v = raw;
    while (v.includes('{uuid}')) v = v.replace('{uuid}', randomUUID());
    if (v.includes('{podName}')) {
      const pod = env.POD_NAME ?? '';
      if (pod === '') {
        throw new ConfigError(
          `component ${c.name} (${c.type}): metadata '${key}' refers to {podName} but no pod name is set (daprd reads POD_NAME; set it, or use {appID} or {uuid})`,
          { ...c.where(key), field: key },
        );
      }
      v = v.split('{podName}').join(pod);
    }
    v = v.split('{namespace}').join(`${env.NAMESPACE ?? ''}.${appId}`).split('{appID}').join(appId);
    metadata[key] = v;
  }
  return { ...c, metadata };
}
