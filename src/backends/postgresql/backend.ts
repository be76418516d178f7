/**
 * The PostgreSQL queue behind `bindings.qscale.postgresql`. Leases (visibility timeout) with a token, renewed while
 * the handler works; delivery count and a dead-letter table; LISTEN/NOTIFY for instant wake-up. The SQL is in
 * sql.ts. A dropped connection loses nothing: the pool replaces it, outcome writes are retried for as long as the
 * lease lasts, and a lease that runs out simply makes the message deliverable again.
 */
import { randomUUID } from 'node:crypto';
import type Pg from 'pg';
import { lazyModule } from '../lazy-require.js';
import type {
  Backend, BackendContext, DeadLetter, DeadLetterReader, HandlerResult, MessageHandler, MessageMetadata, Pingable, Purgeable,
  QueueDepth, QueueMessage, ReceiveOptions, ResolvedComponent,
} from '../types.js';
import { settle as settleResult } from '../types.js';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { postgresqlMetadata } from './metadata.js';
import { parseConnection, type PgConnection } from './connection.js';
import { Redactor, redactorFor } from '../../components/redact.js';
import { isIdentifier, queueSql, type QueueSql } from './sql.js';
import { PgListener } from './listener.js';
import { Wakeup } from '../../util/wakeup.js';
import { DEPTH, SEND, bounded, receiveUnreachable, unreachable, type BrokerAddress } from '../unreachable.js';
import { BrokerState } from '../broker-state.js';
import { redeliveryDelayMs, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';

/** The pg client library, loaded on first use (see lazy-require.ts). */
const pg = lazyModule<typeof Pg>('pg');

interface Row {
  id: string;
  data: Buffer;
  metadata: MessageMetadata | null;
  delivery_count: number;
  /** ms since the epoch */
  enqueued_at: number;
}

interface DeadRow extends Row {
  reason: string;
  dead_lettered_at: number;
}

/** A dead letter's reason keeps at most this many characters of what the handler said. */
const REASON_CHARS = 1000;
/** The largest bigint: a longer id names no dead letter. */
const MAX_ID = 2n ** 63n - 1n;

export class PostgresBackend implements Backend, Pingable, DeadLetterReader, Purgeable {
  readonly name: string;
  readonly type: string;
  private readonly subject: string;
  private readonly queue: string;
  private readonly leaseSec: number;
  private readonly maxDeliveries: number;
  private readonly handlerCap: number;
  private readonly pollMs: number;
  private readonly redelivery: RedeliveryPolicy;
  private readonly initTimeoutMs: number;
  private readonly conn: PgConnection;
  private readonly sql: QueueSql;
  private readonly logger: Logger;
  /** Cuts the connection string, its password and any other secret of the component out of messages. */
  private readonly redactor: Redactor;
  private pool: Pg.Pool | undefined;
  private listener: PgListener | undefined;
  private closed = false;

  constructor(component: ResolvedComponent, ctx: BackendContext) {
    this.name = component.name;
    this.type = component.type;
    this.subject = `component ${component.name} (${component.type})`;
    const md = postgresqlMetadata.parse(component.metadata, { subject: this.subject, where: component.where });
    for (const field of ['schema', 'table'] as const) {
      if (!isIdentifier(md[field])) {
        throw new ConfigError(
          `${this.subject}: metadata '${field}' must be a plain SQL identifier (letters, digits, _), got '${md[field]}'`,
          { ...component.where(field), field },
        );
      }
    }
    try {
      this.conn = parseConnection(md.connectionString);
    } catch (err) {
      throw new ConfigError(`${this.subject}: metadata 'connectionString' is not valid: ${errorMessage(err)}`, {
        ...component.where('connectionString'),
        field: 'connectionString',
      });
    }
    this.redactor = redactorFor(postgresqlMetadata.fields, component.metadata, [this.conn.password]);
    this.queue = md.queueName;
    this.leaseSec = md.visibilityTimeoutInSec;
    this.maxDeliveries = md.maxDeliveryCount;
    this.handlerCap = md.maxConcurrentHandlers ?? Number.POSITIVE_INFINITY;
    this.pollMs = md.pollInterval;
    this.redelivery = redeliveryPolicy(md, { subject: this.subject, where: component.where });
    this.initTimeoutMs = component.initTimeoutMs;
    this.sql = queueSql(md.schema, md.table);
    this.logger = ctx.logger.child({ component: component.name, queue: this.queue });
  }

  private clientConfig(): Pg.ClientConfig {
    return {
      ...this.conn.config,
      application_name: this.conn.config.application_name ?? `qscale:${this.name}`,
      connectionTimeoutMillis: this.initTimeoutMs,
    };
  }

  private brokerError(what: string, err: unknown): BrokerError {
    const detail = this.redactor.text(errorMessage(err));
    return new BrokerError(`${this.subject}: ${what} PostgreSQL at ${this.conn.describe}: ${detail}`, { cause: err });
  }

  async init(): Promise<void> {
    if (this.pool) return;
    const pool = new (pg().Pool)({ ...this.clientConfig(), max: 10, idleTimeoutMillis: 30_000 });
    // A server-side kill makes idle clients emit 'error'; the pool drops them and the next query reconnects. Debug
    // only: an outage is reported once by what fails next (a receive loop's onBrokerState, send, depth).
    pool.on('error', (err) => this.logger.debug(`idle PostgreSQL connection lost: ${this.redactor.text(errorMessage(err))}`));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within initTimeout (${this.initTimeoutMs} ms)`)), this.initTimeoutMs);
    });
    try {
      await Promise.race([this.ensureTables(pool), timeout]);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw this.brokerError('cannot use', err);
    } finally {
      clearTimeout(timer);
    }
    this.pool = pool;
    this.logger.info({ server: this.conn.describe }, 'PostgreSQL queue ready');
  }

  private async ensureTables(pool: Pg.Pool): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const stmt of this.sql.ensure) await client.query(stmt);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private db(): Pg.Pool {
    if (!this.pool) throw new BrokerError(`${this.subject}: used before init() or after close()`);
    return this.pool;
  }

  async send(data: Buffer, metadata: MessageMetadata): Promise<void> {
    await this.call(SEND, (db) => db.query(this.sql.insert, [this.queue, data, JSON.stringify(metadata), this.sql.channel]));
  }

  /**
   * One statement of send / depth / ping, bounded by initTimeout. A pooled connection the server dropped (restart,
   * pg_terminate_backend) is retried once on a fresh one; a server that refuses connections fails the call at once,
   * naming the cause.
   */
  private get address(): BrokerAddress {
    return { subject: this.subject, broker: 'PostgreSQL', where: this.conn.describe };
  }

  private async call<T>(doing: string, run: (db: Pg.Pool) => Promise<T>): Promise<T> {
    const db = this.db();
    const address = this.address;
    const attempts = async (): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await run(db);
        } catch (err) {
          if (isRefused(err)) {
            throw unreachable(address, doing, this.redactor.text(errorMessage(err)), 'qscale connects again on the next call');
          }
          if (attempt === 1 && isConnectionError(err) && !this.closed) continue;
          throw this.brokerError(`cannot ${doing}:`, err);
        }
      }
    };
    return bounded(address, doing, this.initTimeoutMs, attempts());
  }

  async receive(handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    const pool = this.db();
    const limit = Math.max(1, Math.min(options.concurrency, this.handlerCap));
    const { signal } = options;
    if (!this.listener) {
      this.listener = new PgListener(this.clientConfig(), this.sql.channel, this.queue, this.logger, this.conn.password);
      this.listener.start();
    }
    const inFlight = new Set<Promise<void>>();
    let lastSweep = 0;
    let failures = 0;
    const state = new BrokerState(options.onBrokerState, this.logger);
    // A notification, a finished handler or a stop wakes the loop; nothing is left behind per wait.
    const wake = new Wakeup();
    signal.addEventListener('abort', wake.poke);
    const unsubscribe = this.listener.subscribe(wake.poke);
    const completions = new Completions((batch) => this.completeMany(batch, state));
    while (!signal.aborted && !this.closed) {
      const free = limit - inFlight.size;
      if (free <= 0) {
        await wake.wait(this.pollMs);
        continue;
      }
      let rows: Row[];
      const token = randomUUID();
      try {
        if (Date.now() - lastSweep >= this.pollMs) {
          lastSweep = Date.now();
          await pool.query(this.sql.deadLetterExhausted, [this.queue, this.maxDeliveries,
            `MaxDeliveryCountExceeded: lease expired on the last of ${this.maxDeliveries} deliveries ` +
            '(its process stopped or overran the visibility timeout)']);
        }
        rows = (await pool.query<Row>(this.sql.claim, [this.queue, free, this.leaseSec, token, this.maxDeliveries])).rows;
        failures = 0;
        state.working();
      } catch (err) {
        if (signal.aborted || this.closed) break;
        // A pooled connection the server dropped fails one statement; the next gets a fresh one. Only a failure
        // that repeats (or a server that refuses) is an outage.
        if (++failures > 1 || !isConnectionError(err) || isRefused(err)) state.lost(this.claimError(err));
        else this.logger.debug(`cannot claim messages: ${this.redactor.text(errorMessage(err))}; trying again on a fresh connection`);
        if (failures > 1) await wake.wait(Math.min(this.pollMs, 1000));
        continue;
      }
      if (rows.length === 0) {
        await wake.wait(this.pollMs);
        continue;
      }
      rows.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
      if (signal.aborted || this.closed) {
        await Promise.allSettled(rows.map((r) => this.settle(this.sql.unclaim, [r.id, token])));
        break;
      }
      for (const row of rows) {
        completions.working++;
        const p: Promise<void> = this.handle(row, token, handler, state, completions).finally(() => {
          inFlight.delete(p);
          wake.poke();
        });
        inFlight.add(p);
      }
    }
    unsubscribe();
    signal.removeEventListener('abort', wake.poke);
    await Promise.allSettled([...inFlight]);
  }

  private claimError(err: unknown): BrokerError {
    const cause = this.redactor.text(errorMessage(err));
    return isRefused(err) || isConnectionError(err) ? receiveUnreachable(this.address, cause) : this.brokerError('cannot claim messages from', err);
  }

  private async handle(row: Row, token: string, handler: MessageHandler, state: BrokerState, completions: Completions): Promise<void> {
    const msg: QueueMessage = {
      id: row.id,
      data: row.data,
      metadata: row.metadata ?? {},
      deliveryCount: row.delivery_count,
      enqueuedAt: row.enqueued_at,
    };
    let leaseEnds = Date.now() + this.leaseSec * 1000;
    const renew = setInterval(() => {
      this.db()
        .query(this.sql.renew, [row.id, token, this.leaseSec])
        .then((r) => {
          // With every slot taken no claim runs: renewals are how the loop learns the server is away, or back.
          state.working();
          if (r.rowCount === 1) leaseEnds = Date.now() + this.leaseSec * 1000;
          else this.logger.warn({ id: row.id }, 'lease lost while the handler works: the message will be delivered again');
        })
        .catch((err: unknown) => {
          if (isConnectionError(err) && !isRefused(err)) this.logger.debug(`lease renewal of message ${row.id} failed: ${this.redactor.text(errorMessage(err))}`);
          else state.lost(this.claimError(err));
        });
    }, Math.max(200, (this.leaseSec * 1000) / 3));
    let result: HandlerResult | undefined;
    let thrown: unknown;
    try {
      result = await handler(msg);
    } catch (err) {
      thrown = err ?? new Error(String(err));
      this.logger.warn({ id: row.id, error: errorMessage(err) }, 'handler threw: message not processed');
    } finally {
      clearInterval(renew);
      completions.working--;
    }
    const { ok, reason } = settleResult(result, thrown);
    const deadline = leaseEnds;
    if (ok) {
      const done = await completions.add({ id: row.id, token, deadline });
      if (done === 0) {
        const there = await this.stillQueued(row.id);
        if (there === true) this.logger.warn({ id: row.id }, 'lease had expired before completion: the message may be delivered again');
        // The server went away again: the outage is reported as such; whether this one comes again is not known.
        else if (there === undefined) this.logger.debug({ id: row.id }, 'completion deleted nothing and the server cannot be asked why: the message may be delivered again');
      }
    } else if (msg.deliveryCount >= this.maxDeliveries) {
      const why = `MaxDeliveryCountExceeded: failed on delivery ${msg.deliveryCount} of ${this.maxDeliveries}: ${reason.slice(0, REASON_CHARS)}`;
      await this.settle(this.sql.deadLetterOne, [row.id, token, why], deadline, state);
      this.logger.warn({ id: row.id, deliveries: msg.deliveryCount }, 'message dead-lettered');
    } else {
      await this.settle(this.sql.release, [row.id, token, redeliveryDelayMs(this.redelivery, msg.deliveryCount) / 1000], deadline, state);
    }
  }

  /**
   * Applies an outcome, retrying through dropped connections until the lease would have ended anyway (then the
   * message is redelivered, which is the at-least-once promise). Returns the rows changed, or undefined.
   */
  private async settle(sql: string, params: unknown[], deadline = Date.now() + this.leaseSec * 1000, state?: BrokerState): Promise<number | undefined> {
    try {
      const r = await this.retrying(deadline, () => this.db().query(sql, params), state);
      return r.rowCount ?? 0;
    } catch (err) {
      this.logger.warn({ error: this.redactor.text(errorMessage(err)) }, 'could not record a message outcome; it will be delivered again');
      return undefined;
    }
  }

  /**
   * Whether a message whose completion deleted nothing is still in the queue. A completion retried through a dropped
   * connection finds nothing to delete when its first attempt went through and only the answer was lost: the message
   * is done then, and nothing is to be said. undefined: the server cannot be asked (it is away again).
   */
  private async stillQueued(id: string): Promise<boolean | undefined> {
    try {
      const r = await this.db().query(this.sql.stillQueued, [id]);
      return (r.rowCount ?? 0) > 0;
    } catch {
      return undefined;
    }
  }

  /** The completions of one turn: one DELETE, each row under its own lease token, retried like settle(). */
  private async completeMany(batch: readonly Completion[], state?: BrokerState): Promise<void> {
    if (batch.length === 1) {
      const [one] = batch as [Completion];
      one.resolve(await this.settle(this.sql.complete, [one.id, one.token], one.deadline, state));
      return;
    }
    const deadline = Math.max(...batch.map((c) => c.deadline));
    try {
      const r = await this.retrying(deadline, () =>
        this.db().query<{ id: string }>(this.sql.completeMany, [batch.map((c) => c.id), batch.map((c) => c.token)]), state);
      const deleted = new Set(r.rows.map((row) => row.id));
      for (const c of batch) c.resolve(deleted.has(c.id) ? 1 : 0);
    } catch (err) {
      this.logger.warn({ error: this.redactor.text(errorMessage(err)), messages: batch.length },
        'could not record the outcome of messages; they will be delivered again');
      for (const c of batch) c.resolve(undefined);
    }
  }

  /**
   * With `state` (a receive loop's), a failure that repeats or a refused connection is reported as the loop's outage:
   * while an outcome waits for the server, no claim runs, so this is how the user learns the server is away.
   */
  private async retrying<T>(deadline: number, op: () => Promise<T>, state?: BrokerState): Promise<T> {
    let wait = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await op();
        if (attempt > 1) state?.working();
        return r;
      } catch (err) {
        if (state && isConnectionError(err) && (attempt > 1 || isRefused(err)) && !this.closed) state.lost(this.claimError(err));
        if (!isConnectionError(err) || Date.now() + wait >= deadline || this.closed) throw err;
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 1000);
      }
    }
  }

  async depth(): Promise<QueueDepth> {
    const r = await this.call(DEPTH, (db) => db.query<{ ready: number; in_flight: number; dead: number }>(this.sql.depth, [this.queue, this.maxDeliveries]));
    const row = r.rows[0];
    return { ready: row?.ready ?? 0, inFlight: row?.in_flight ?? 0, deadLettered: row?.dead ?? 0 };
  }

  async ping(): Promise<void> {
    await this.call('reach the server', (db) => db.query('SELECT 1'));
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const max = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : null;
    const r = await this.call('read the dead letters', (db) => db.query<DeadRow>(this.sql.deadLetters, [this.queue, max]));
    return r.rows.map(toDeadLetter);
  }

  /** Dead letters are named by the message's id (its place in the table). */
  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    const [key] = rowIds([id]);
    if (key === undefined) return undefined;
    const r = await this.call('read a dead letter', (db) => db.query<DeadRow>(this.sql.deadLetter, [this.queue, key]));
    return r.rows[0] && toDeadLetter(r.rows[0]);
  }

  async requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const keys = ids === 'all' ? null : rowIds(ids);
    if (keys?.length === 0) return 0;
    const r = await this.call('requeue dead letters', (db) =>
      db.query<{ n: number }>(this.sql.requeueDeadLetters, [this.queue, keys, this.sql.channel]));
    return r.rows[0]?.n ?? 0;
  }

  async purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number> {
    const keys = ids === 'all' ? null : rowIds(ids);
    if (keys?.length === 0) return 0;
    const r = await this.call('purge dead letters', (db) => db.query(this.sql.purgeDeadLetters, [this.queue, keys]));
    return r.rowCount ?? 0;
  }

  async purge(): Promise<number> {
    const r = await this.call('purge the queue', (db) => db.query(this.sql.purge, [this.queue, this.maxDeliveries]));
    return r.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.close();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => undefined);
  }
}

interface Completion {
  id: string;
  token: string;
  /** When its lease ends: retrying past it is pointless (the message is delivered again). */
  deadline: number;
  /** Rows deleted (1, or 0 when the lease was lost), undefined when the outcome could not be recorded. */
  resolve(n: number | undefined): void;
}

/**
 * The completions of one receive loop, sent together after the event-loop turn in which their handlers answered;
 * one that arrives with no other handler working is sent at once (no wait for a lone message).
 */
class Completions {
  /** Handlers that have not answered yet. */
  working = 0;
  private batch: Completion[] = [];
  private queued = false;

  constructor(private readonly send: (batch: readonly Completion[]) => Promise<void>) {}

  add(c: Omit<Completion, 'resolve'>): Promise<number | undefined> {
    return new Promise((resolve) => {
      this.batch.push({ ...c, resolve });
      if (this.working === 0) this.flush();
      else if (!this.queued) {
        this.queued = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.queued = false;
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    void this.send(batch);
  }
}

function toDeadLetter(row: DeadRow): DeadLetter {
  return {
    id: row.id,
    data: row.data,
    metadata: row.metadata ?? {},
    deliveryCount: row.delivery_count,
    reason: row.reason,
    enqueuedAt: row.enqueued_at,
    deadLetteredAt: row.dead_lettered_at,
  };
}

/** The ids that can name a row (a bigint in decimal); any other names no dead letter and is left out. */
function rowIds(ids: readonly string[]): string[] {
  return ids.filter((id) => /^[0-9]{1,19}$/.test(id) && BigInt(id) <= MAX_ID);
}

/** The server cannot be reached at all: trying again now would fail the same way. */
function isRefused(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', '57P03'].includes(code)) return true;
  return /connection timeout|timeout expired/i.test(errorMessage(err));
}

/** Errors after which the same statement can be tried again on a fresh connection. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
    if (['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true;
  }
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(errorMessage(err));
}
