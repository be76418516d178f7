import { connect as natsConnect } from 'nats';
import { parseManifests } from '../../../src/components/manifests.js';
import { resolveResources } from '../../../src/components/resources.js';
import type { BackendContext, ResolvedComponent } from '../../../src/backends/types.js';
import { createLogger } from '../../../src/util/log.js';

export const LOCAL_NATS = 'nats://127.0.0.1:4222';

export function component(metadata: Record<string, string>, extra = ''): ResolvedComponent {
  const items = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`).join('\n');
  const yaml = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.nats-jetstream
  version: v1
${extra}  metadata:
${items}
`;
  const c = resolveResources(parseManifests(yaml, 'components/queue.yaml')).components[0];
  if (!c) throw new Error('no component parsed');
  return c;
}

export function ctx(): BackendContext {
  return { logger: createLogger('test', {}).child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' }), dataDir: '.qscale' };
}

/** Stream names may not contain '.', so the shared uniqueName pattern is fine; kept short for readability. */
export function streamName(): string {
  return `s_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`;
}

/** Deletes a queue's stream and its dead-letter stream (from the machine's server unless `url` names another). */
export async function deleteNatsStreams(stream: string, url = LOCAL_NATS): Promise<void> {
  const nc = await natsConnect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    for (const s of [stream, `${stream}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
