/**
 * KEDA's `postgresql` trigger: the metric is the number in the first column of the first row `query` returns — any
 * query, as in KEDA; AverageValue by default, active when the value is strictly above activationTargetQueryValue.
 * Connection as KEDA takes it: `connection` (from a TriggerAuthentication or connectionFromEnv) or host + port +
 * userName + dbName + sslmode + password (from a TriggerAuthentication or passwordFromEnv).
 *
 * Each read runs the query alone (one statement, extended protocol, as pgx runs it) in a read-only transaction with a
 * server-side statement_timeout inside the read bound: measuring never changes data and never outlives its poll.
 * A query returning no row, NULL or something that is not a number is an error, as in KEDA.
 *
 * The queue name (kept when --embedded serves the trigger from the embedded queue) comes from the qscale extension
 * `queueName`, or else from the documented query shape `SELECT count(*) FROM [schema.]table WHERE queue = 'name'`.
 * Another query measures no single queue: it runs against PostgreSQL, and --embedded cannot serve it.
 */
import type Pg from 'pg';
import { lazyModule } from '../lazy-require.js';
import { BrokerError, errorMessage } from '../../errors.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerClosedError, boundedRead } from '../trigger-support.js';
import { defineTriggerMetadata, positiveTarget, triggerError } from '../trigger-metadata.js';
import type { MetricAndActivity, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { parseConnection, scrub, type PgConnection } from './connection.js';

/** The pg client library, loaded on first use (see lazy-require.ts). */
const pg = lazyModule<typeof Pg>('pg');

const DEFAULT_QUERY = /^\s*select\s+count\s*\(\s*\*\s*\)\s+from\s+[\w."]+\s+where\s+queue\s*=\s*'([^']+)'\s*;?\s*$/i;

/** The queue named by a query of the documented shape, else undefined. */
export function queueFromQuery(query: string): string | undefined {
  return DEFAULT_QUERY.exec(query)?.[1];
}

const AUTH_OR_ENV = ['authParams', 'resolvedEnv'] as const;
const AUTH_FIRST = ['authParams', 'triggerMetadata'] as const;

export const postgresqlTriggerMetadata = defineTriggerMetadata([
  { name: 'query', type: 'string', required: true, description: 'A query whose first row\'s first column is a number: the metric.' },
  { name: 'targetQueryValue', type: 'float', description: 'Target value per replica (required, > 0).' },
  { name: 'activationTargetQueryValue', type: 'float', default: '0', description: 'Active when the value is above this.' },
  { name: 'connection', type: 'string', from: AUTH_OR_ENV, sensitive: true, description: 'Connection string (TriggerAuthentication or connectionFromEnv).' },
  { name: 'host', type: 'string', from: AUTH_FIRST, description: 'Host, when no connection string is given.' },
  { name: 'port', type: 'string', from: AUTH_FIRST, description: 'Port, when no connection string is given.' },
  { name: 'userName', type: 'string', from: AUTH_FIRST, description: 'User, when no connection string is given.' },
  { name: 'password', type: 'string', from: AUTH_OR_ENV, sensitive: true, description: 'Password (TriggerAuthentication or passwordFromEnv).' },
  { name: 'dbName', type: 'string', from: AUTH_FIRST, description: 'Database, when no connection string is given.' },
  { name: 'sslmode', type: 'string', from: AUTH_FIRST, description: 'sslmode, when no connection string is given (disable, require, ...).' },
  { name: 'queueName', type: 'string', extension: true, description: 'qscale extension: the queue this trigger measures, for --embedded.' },
] as const);

export interface PostgresqlTriggerSettings extends QueueTriggerParams {
  query: string;
  conn: PgConnection;
}

/** KEDA's escapePostgreConnectionParameter: quoted when it holds white space, a quote or a backslash. */
function escapeParam(v: string): string {
  if (!/[\s'\\]/.test(v)) return v;
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The keyword/value connection string KEDA builds from host, port, userName, dbName, sslmode and password. */
export function postgresqlConnectionFromFields(f: { host: string; port: string; userName: string; dbName: string; sslmode: string; password?: string }): string {
  return [
    `host=${escapeParam(f.host)}`,
    `port=${escapeParam(f.port)}`,
    `user=${escapeParam(f.userName)}`,
    `dbname=${escapeParam(f.dbName)}`,
    `sslmode=${escapeParam(f.sslmode)}`,
    `password=${escapeParam(f.password ?? '')}`,
  ].join(' ');
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

export function parsePostgresqlTrigger(trigger: ResolvedTrigger): PostgresqlTriggerSettings {
  const md = postgresqlTriggerMetadata.parse(trigger);
  if (md.connection === undefined) {
    for (const f of ['host', 'port', 'userName', 'dbName', 'sslmode'] as const) {
      if (md[f] === undefined) throw triggerError(trigger, `no ${f} given (give connection, or host, port, userName, dbName and sslmode)`, f);
    }
  }
  if (md.targetQueryValue === undefined || md.targetQueryValue === 0) throw triggerError(trigger, 'no targetQueryValue given', 'targetQueryValue');
  positiveTarget(trigger, md.targetQueryValue, 'targetQueryValue');
  if (md.connection === undefined) {
    // KEDA parses these, and its driver refuses them when the scaler connects: they can never work.
    if (!/^\d{1,5}$/.test(md.port!) || Number(md.port) < 1 || Number(md.port) > 65535) {
      throw triggerError(trigger, `port must be a port number such as 5432, got '${md.port}'`, 'port');
    }
    if (!SSL_MODES.includes(md.sslmode!)) throw triggerError(trigger, `sslmode must be one of ${SSL_MODES.join(', ')}, got '${md.sslmode}'`, 'sslmode');
  }
  const text =
    md.connection ??
    postgresqlConnectionFromFields({ host: md.host!, port: md.port!, userName: md.userName!, dbName: md.dbName!, sslmode: md.sslmode!, password: md.password });
  let conn: PgConnection;
  try {
    conn = parseConnection(text);
  } catch (err) {
    throw triggerError(trigger, `the connection is not valid: ${errorMessage(err)}`, md.connection !== undefined ? 'connection' : 'host');
  }
  return {
    queueName: md.queueName ?? queueFromQuery(md.query) ?? '',
    target: md.targetQueryValue,
    activationTarget: md.activationTargetQueryValue,
    query: md.query,
    conn,
  };
}

function describePgError(err: unknown, password: string | undefined): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is PostgreSQL running on that host and port?)';
  if (code === '25006') return `${scrub(errorMessage(err), password)} (the query runs in a read-only transaction: it may only read)`;
  return scrub(errorMessage(err), password);
}

/** database/sql's Scan into a float64, as KEDA reads the cell: numbers, and text that parses as one. */
export function queryValue(cell: unknown): number | string {
  if (typeof cell === 'number') return cell;
  if (typeof cell === 'bigint') return Number(cell);
  const text = typeof cell === 'string' ? cell : Buffer.isBuffer(cell) ? cell.toString('utf8') : undefined;
  if (text !== undefined && /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (cell === null || cell === undefined) return 'NULL';
  if (text !== undefined) return `'${text.length > 40 ? text.slice(0, 40) + '...' : text}', which is not a number`;
  return `a ${cell instanceof Date ? 'timestamp' : typeof cell}, which is not a number`;
}

/** Inside the read bound, so the server gives up on a slow query before the read does. */
const SERVER_STATEMENT_TIMEOUT_MS = TRIGGER_READ_TIMEOUT_MS - 500;

class PostgresScaler implements Scaler {
  readonly metricName: string;
  readonly metricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly pool: Pg.Pool;
  private closed = false;

  constructor(
    private readonly trigger: ResolvedTrigger,
    private readonly p: PostgresqlTriggerSettings,
  ) {
    this.metricName = `s${trigger.index}-postgresql`;
    this.metricType = trigger.metricType;
    this.target = p.target;
    this.activationTarget = p.activationTarget;
    this.describes = `value of the query on ${p.conn.describe}${p.queueName ? ` (queue ${p.queueName})` : ''}`;
    this.pool = new (pg().Pool)({
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
    const rows = await boundedRead(() => this.run(), {
      subject: this.trigger.subject,
      what: `the query's value${this.p.queueName ? ` (queue ${this.p.queueName})` : ''}`,
      where: `PostgreSQL ${this.p.conn.describe}`,
      describe: (err) => describePgError(err, this.p.conn.password),
    });
    const value = rows.length === 0 ? 'no row' : queryValue((rows[0] as unknown[])[0]);
    if (typeof value !== 'number') {
      throw new BrokerError(`${this.trigger.subject}: the query must return a number in the first column of its first row, it returned ${value}`);
    }
    return { value, active: value > this.activationTarget };
  }

  /** The query alone, read-only, bounded on the server too; the transaction never outlives the read. */
  private async run(): Promise<unknown[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN TRANSACTION READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${SERVER_STATEMENT_TIMEOUT_MS}`);
      // Extended protocol: one statement only, as pgx runs KEDA's query (no "COMMIT; DELETE ..." riding along).
      const r = await client.query({ text: this.p.query, rowMode: 'array', queryMode: 'extended' } as Pg.QueryConfig);
      return r.rows;
    } finally {
      // A connection that cannot even roll back is dropped from the pool.
      await client.query('ROLLBACK').then(
        () => client.release(),
        (e: unknown) => client.release(e instanceof Error ? e : new Error(String(e))),
      );
    }
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
    const { queueName, target, activationTarget } = parsePostgresqlTrigger(trigger);
    return { queueName, target, activationTarget };
  },
  create(trigger) {
    return new PostgresScaler(trigger, parsePostgresqlTrigger(trigger));
  },
};
