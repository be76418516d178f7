/**
 * Components for the PostgreSQL tests, built from real YAML so errors carry file:line as users see them.
 */
import pg from 'pg';
import { parseManifests } from '../../../src/components/manifests.js';
import { resolveResources } from '../../../src/components/resources.js';
import type { TestContext } from 'node:test';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import type { BackendContext, ResolvedComponent } from '../../../src/backends/types.js';
import { uniqueName } from '../../support/brokers.js';
import { createLogger } from '../../../src/util/log.js';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function componentYaml(metadata: Record<string, string>, extra = ''): string {
  const items = Object.entries(metadata)
    .map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`)
    .join('\n');
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.qscale.postgresql
  version: v1
${extra}  metadata:
${items}
`;
}

export function component(metadata: Record<string, string>, extra = ''): ResolvedComponent {
  const { components } = resolveResources(parseManifests(componentYaml(metadata, extra), 'components/queue.yaml'));
  const c = components[0];
  if (!c) throw new Error('no component parsed');
  return c;
}

export function ctx(): BackendContext {
  return { logger: createLogger('test', {}).child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' }), dataDir: '.qscale' };
}

export async function dropQueue(table: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP TABLE IF EXISTS public."${table}", public."${table}_dead_letter"`);
  } finally {
    await c.end();
  }
}

/**
 * Kills the server connections whose application_name is given, as an operator or a failover would, looking again
 * every 50 ms for up to `withinMs` until it killed one: on a loaded machine a look at pg_stat_activity has found none
 * for a moment while the backend was receiving.
 */
export async function killConnectionsWithin(applicationName: string, withinMs: number): Promise<number> {
  const end = Date.now() + withinMs;
  for (;;) {
    const killed = await killConnections(applicationName);
    if (killed > 0 || Date.now() >= end) return killed;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills every server connection whose application_name is given, as an operator or a failover would. */
export async function killConnections(applicationName: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const r = await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    return r.rowCount ?? 0;
  } finally {
    await c.end();
  }
}

export function tableName(): string {
  return `t_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`;
}

/** A backend on a table of its own, initialised; closed and its tables dropped when the test ends. */
export async function open(t: TestContext, extra: Record<string, string> = {}): Promise<{ b: PostgresBackend; table: string }> {
  const table = tableName();
  const b = new PostgresBackend(component({ connectionString: PG_URL, queueName: uniqueName('q'), table, ...extra }), ctx());
  await b.init();
  t.after(async () => {
    await b.close();
    await dropQueue(table);
  });
  return { b, table };
}
