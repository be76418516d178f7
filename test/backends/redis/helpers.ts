/** Redis components, triggers and broker-side actions for tests, built the way users write them. */
import { Redis } from 'ioredis';
import { parseManifests, resolveResources } from '../../../src/components/index.js';
import type { ResolvedComponent } from '../../../src/backends/types.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import { createLogger } from '../../../src/util/log.js';

export const REDIS_ADDR = '127.0.0.1:6379';
export const logger = createLogger('test', {});
logger.level = 'error';
export const ctx = { logger, dataDir: '.qscale-test' };

export function component(metadata: Record<string, string>, opts: { initTimeout?: string; name?: string } = {}): ResolvedComponent {
  const lines = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`);
  const yaml = [
    'apiVersion: dapr.io/v1alpha1',
    'kind: Component',
    'metadata:',
    `  name: ${opts.name ?? 'message-queue'}`,
    'spec:',
    '  type: bindings.qscale.redis',
    '  version: v1',
    ...(opts.initTimeout ? [`  initTimeout: ${opts.initTimeout}`] : []),
    '  metadata:',
    ...lines,
  ].join('\n');
  const c = resolveResources(parseManifests(yaml, 'binding.yaml')).components[0];
  if (!c) throw new Error('no component');
  return c;
}

/** A trigger whose every field sits on its own line, starting at line 10 of scaledobject.yaml. */
export function trigger(metadata: Record<string, string>, index = 0): ResolvedTrigger {
  const keys = Object.keys(metadata);
  return {
    index,
    type: 'redis-streams',
    metricType: 'AverageValue',
    metadata,
    subject: `trigger ${index} (redis-streams) of ScaledObject consumer-scaler`,
    where: (field?: string) => {
      const i = field ? keys.findIndex((k) => k.toLowerCase() === field.toLowerCase()) : -1;
      return { file: 'scaledobject.yaml', line: i >= 0 ? 10 + i : 8 };
    },
  };
}

export async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  await r.connect();
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

export async function deleteKeys(...keys: string[]): Promise<void> {
  await withRedis(async (r) => {
    if (keys.length) await r.del(...keys);
  });
}

/**
 * Kills one component's client connections (named "qscale:<component>...") from another connection, as a Redis
 * restart or a network cut would: CLIENT KILL, narrowed so nothing else on the machine is hit.
 */
export async function dropQscaleConnections(componentName: string): Promise<number> {
  return withRedis(async (r) => {
    const list = (await r.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    let killed = 0;
    for (const line of list.split('\n')) {
      const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
      const name = /(?:^|\s)name=(\S*)/.exec(line)?.[1] ?? '';
      if (id && (name === `qscale:${componentName}` || name.startsWith(`qscale:${componentName}:`))) {
        await r.call('CLIENT', 'KILL', 'ID', id).catch(() => undefined);
        killed++;
      }
    }
    return killed;
  });
}

export async function eventually<T>(read: () => Promise<T>, check: (v: T) => boolean, tries = 100, everyMs = 200): Promise<T> {
  let v = await read();
  for (let i = 0; i < tries && !check(v); i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = await read();
  }
  return v;
}

/** The consumer group's pending entries with their idle time and delivery count (XPENDING, extended form). */
export async function redisPending(stream: string, group: string): Promise<Array<{ id: string; idleMs: number; deliveries: number }>> {
  return withRedis(async (r) => {
    const rows = (await r.call('XPENDING', stream, group, '-', '+', '100')) as Array<[string, string, number, number]>;
    return rows.map(([id, , idle, count]) => ({ id, idleMs: Number(idle), deliveries: Number(count) }));
  });
}
