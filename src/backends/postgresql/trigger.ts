/**
 * KEDA's `postgresql` trigger: the metric is the one numeric value `query` returns; AverageValue by default, active
 * when the value is strictly above activationTargetQueryValue. Connection as KEDA takes it: `connection` (usually
 * via connectionFromEnv) or host + port + userName + dbName + sslmode + password (passwordFromEnv).
 *
 * The queue name (kept when --embedded serves the trigger from the embedded queue) comes from the qscale extension
 * `queueName`, or else from the documented query shape `SELECT count(*) FROM [schema.]table WHERE queue = 'name'`.
 */
import pg from 'pg';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerClosedError, boundedRead } from '../trigger-support.js';
import type { MetricAndActivity, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { postgresqlTriggerMetadata } from './metadata.js';
import { parseConnection, scrub, type PgConnection } from './connection.js';

const DEFAULT_QUERY = /^\s*select\s+count\s*\(\s*\*\s*\)\s+from\s+[\w."]+\s+where\s+queue\s*=\s*'([^']+)'\s*;?\s*$/i;

/** The queue named by a query of the documented shape, else undefined. */
export function queueFromQuery(query: string): string | undefined {
  return DEFAULT_QUERY.exec(query)?.[1];
}

interface ParsedTrigger extends QueueTriggerParams {
  query: string;
  conn: PgConnection;
}

function parse(trigger: ResolvedTrigger): ParsedTrigger {
  const md = postgresqlTriggerMetadata.parse(withEnv(trigger.metadata), trigger);
  const fail = (message: string, field?: string): ConfigError =>
    new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), field });
  if (md.targetQueryValue === undefined || md.targetQueryValue <= 0) {
    throw fail('no targetQueryValue given (it must be a number > 0)', 'targetQueryValue');
  }
  let conn: PgConnection;
  if (md.connection) {
    try {
      conn = parseConnection(md.connection);
    } catch (err) {
      throw fail(`connection is not valid: ${errorMessage(err)}`, 'connection');
    }
  } else {
    for (const f of ['host', 'port', 'userName', 'dbName', 'sslmode'] as const) {
      if (!md[f]) throw fail(`no ${f} given (give connection / connectionFromEnv, or host, port, userName, dbName and sslmode)`, f);
    }
    conn = parseConnection(
      [
        `host=${quote(md.host ?? '')}`,
        `port=${quote(md.port ?? '')}`,
        `user=${quote(md.userName ?? '')}`,
        `dbname=${quote(md.dbName ?? '')}`,
        `sslmode=${quote(md.sslmode ?? '')}`,
        ...(md.password ? [`password=${quote(md.password)}`] : []),
      ].join(' '),
    );
  }
  const queueName = md.queueName ?? queueFromQuery(md.query);
  if (!queueName) {
    throw fail(
      "cannot tell which queue the query measures: add metadata 'queueName' (a qscale extension) or use the query " +
        "SELECT count(*) FROM <table> WHERE queue = '<queue>'",
      'query',
    );
  }
  return { queueName, target: md.targetQueryValue, activationTarget: md.activationTargetQueryValue, query: md.query, conn };
}

/** `<param>FromEnv` is normally resolved by the autoscaler; read it here too so the trigger works either way. */
function withEnv(raw: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...raw };
  for (const [k, v] of Object.entries(raw)) {
    const m = /^(.*)FromEnv$/.exec(k);
    if (m?.[1] && out[m[1]] === undefined && process.env[v] !== undefined) out[m[1]] = process.env[v] ?? '';
  }
  return out;
}

function describePgError(err: unknown, password: string | undefined): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is PostgreSQL running on that host and port?)';
  return scrub(errorMessage(err), password);
}

function quote(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

class PostgresScaler implements Scaler {
  readonly metricName: string;
  readonly metricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly pool: pg.Pool;
  private closed = false;

  constructor(
    private readonly trigger: ResolvedTrigger,
    private readonly p: ParsedTrigger,
  ) {
    this.metricName = `s${trigger.index}-postgresql`;
    this.metricType = trigger.metricType;
    this.target = p.target;
    this.activationTarget = p.activationTarget;
    this.describes = `value of the query on ${p.conn.describe} (queue ${p.queueName})`;
    this.pool = new pg.Pool({
      ...p.conn.config,
      max: 1,
      connectionTimeoutMillis: TRIGGER_READ_TIMEOUT_MS,
      query_timeout: TRIGGER_READ_TIMEOUT_MS,
      application_name: 'qscale:keda-postgresql',
    });
    this.pool.on('error', () => undefined);
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    if (this.closed) throw new TriggerClosedError(this.trigger.subject);
    const r = await boundedRead(() => this.pool.query({ text: this.p.query, rowMode: 'array' }), {
      subject: this.trigger.subject,
      what: `the query's value (queue ${this.p.queueName})`,
      where: `PostgreSQL ${this.p.conn.describe}`,
      describe: (err) => describePgError(err, this.p.conn.password),
    });
    const cell: unknown = r.rows[0]?.[0];
    const value = cell === null || cell === undefined ? 0 : Number(cell);
    if (!Number.isFinite(value)) {
      throw new BrokerError(`${this.trigger.subject}: the query must return one numeric value`);
    }
    return { value, active: value > this.activationTarget };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

export const postgresqlTrigger: TriggerDefinition = {
  type: 'postgresql',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parse(trigger);
    return { queueName, target, activationTarget };
  },
  create(trigger) {
    return new PostgresScaler(trigger, parse(trigger));
  },
};
