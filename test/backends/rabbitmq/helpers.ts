/** Builds RabbitMQ components and triggers for tests the way users write them: Component YAML with line numbers. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { parseManifests, resolveResources } from '../../../src/components/index.js';
import type { ResolvedComponent } from '../../../src/backends/types.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import { createLogger } from '../../../src/util/log.js';
import { rabbitmqManagementUp } from '../../support/brokers.js';

export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const MGMT_URL = 'http://guest:guest@127.0.0.1:15672';
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
    '  type: bindings.rabbitmq',
    '  version: v1',
    ...(opts.initTimeout ? [`  initTimeout: ${opts.initTimeout}`] : []),
    '  metadata:',
    ...lines,
  ].join('\n');
  const loaded = resolveResources(parseManifests(yaml, 'binding.yaml'));
  const c = loaded.components[0];
  if (!c) throw new Error('no component');
  return c;
}

/** A trigger whose every field sits on its own line, starting at line 10 of scaledobject.yaml. */
export function trigger(metadata: Record<string, string>, index = 0): ResolvedTrigger {
  const keys = Object.keys(metadata);
  return {
    index,
    type: 'rabbitmq',
    metricType: 'AverageValue',
    metadata,
    subject: `trigger ${index} (rabbitmq) of ScaledObject consumer-scaler`,
    where: (field?: string) => {
      const i = field ? keys.findIndex((k) => k.toLowerCase() === field.toLowerCase()) : -1;
      return { file: 'scaledobject.yaml', line: i >= 0 ? 10 + i : 8 };
    },
  };
}

/** Deletes queues a test created, with the retry queues the binding made for each (`<name>-retry-<ms>`). */
export async function deleteQueues(...names: string[]): Promise<void> {
  const all = [...names, ...(await retryQueuesOf(names))];
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    for (const n of all) await ch.deleteQueue(n);
  } finally {
    await conn.close();
  }
}

/** The broker's queues named `<name>-retry-<ms>` for the given names (rabbitmqctl: AMQP cannot list queues). */
async function retryQueuesOf(names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  try {
    const { stdout } = await promisify(execFile)('rabbitmqctl', ['list_queues', 'name', '--no-table-headers', '-q'], { timeout: 30_000 });
    return stdout.split('\n').map((l) => l.trim()).filter((q) => names.some((n) => q.startsWith(`${n}-retry-`) && /-retry-\d+ms$/.test(q)));
  } catch {
    return [];
  }
}

/**
 * Closes, from the broker's side, the connections of one component (named "qscale:<component>"), as a broker
 * restart would, leaving every other connection on the broker alone (rabbitmqctl close_connection by pid).
 */
export async function closeConnectionsOf(componentName: string): Promise<number> {
  return closeConnectionsNamed(`qscale:${componentName}`);
}

/** Closes, from the broker's side, every connection with this exact connection_name. */
export async function closeConnectionsNamed(connectionName: string): Promise<number> {
  const run = promisify(execFile);
  const { stdout } = await run('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '--no-table-headers', '-q']);
  let closed = 0;
  for (const line of stdout.split('\n')) {
    const pid = /^(<[^>]+>)/.exec(line)?.[1];
    if (pid && line.includes(`{"connection_name",${JSON.stringify(connectionName)}}`)) {
      await run('rabbitmqctl', ['close_connection', pid, 'test']);
      closed++;
    }
  }
  return closed;
}

/** The management API answers (see requireBroker(t, 'rabbitmq-management') for tests that need it). */
export const managementUp = rabbitmqManagementUp;

/** Polls until check() holds (or gives up after many tries and returns the last value for the assertion). */
export async function eventually<T>(read: () => Promise<T>, check: (v: T) => boolean, tries = 100, everyMs = 200): Promise<T> {
  let v = await read();
  for (let i = 0; i < tries && !check(v); i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = await read();
  }
  return v;
}
