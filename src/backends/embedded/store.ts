/**
 * The embedded queue file: `<dataDir>/queue.db`, SQLite in WAL mode, shared by every process on the machine.
 * Each write is one short IMMEDIATE transaction (or a single statement), so processes take turns on the write lock
 * for microseconds; busy_timeout makes them wait instead of failing. synchronous=NORMAL in WAL survives any process
 * being killed (the OS keeps what was written); only a power cut can lose the last commits.
 * A process opens the file once and shares the handle between its backends and scalers (reference counted).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BrokerError, errorMessage } from '../../errors.js';
import type { DeadLetter, MessageMetadata, QueueDepth } from '../types.js';
import { ChangeFeed } from './changes.js';
import { SCHEMA, SQL } from './sql.js';

export const QUEUE_FILE = 'queue.db';
const BUSY_TIMEOUT_MS = 10_000;
const FAST_POLL_MS = 3;
const SLOW_POLL_MS = 200;

export interface LeasedMessage {
  seq: number;
  id: string;
  data: Buffer;
  metadata: MessageMetadata;
  deliveryCount: number;
  /** When it was sent (ms since the epoch). */
  enqueuedAt: number;
  /** Proves this delivery: completing or releasing with an older token does nothing. */
  token: string;
}

/** The answer for one delivery: complete it, or (with release) give it back or set it aside. */
export interface Ack {
  seq: number;
  token: string;
  release?: Release;
}

export interface Release {
  /** The wait before the message is ready again, from the delivery count it had. */
  backoffMs: (deliveryCount: number) => number;
  maxDeliveryCount: number;
  /** Kept with the dead letter when this was the last allowed delivery. */
  reason: string;
}

/** What one Ack did: 'completed', a ReleaseOutcome, or 'lease-lost' when the token no longer held the message. */
export type AckOutcome = 'completed' | ReleaseOutcome;

export interface LeaseResult {
  leased: LeasedMessage[];
  /** outcomes[i]: what acks[i] did. */
  outcomes: AckOutcome[];
  /**
   * When nothing was leased: the file's data_version as the transaction saw it, the baseline to pass to onChange
   * before waiting (a commit of another process after this lease wakes the waiter at once). Read inside the lease's
   * own transaction, so a busy receiver pays no separate read of it per lease.
   */
  version?: number | undefined;
}

interface PendingSend {
  queue: string;
  /** Set for a publish: the message goes to every queue bound to this topic key instead (queue is unused). */
  topic?: string;
  id: string;
  data: Buffer;
  metadata: MessageMetadata;
  done(err?: Error): void;
}

export type ReleaseOutcome = 'released' | 'dead-lettered' | 'lease-lost';

/** Dead letters named by id, or every one of the queue. */
export type DeadLetterIds = readonly string[] | 'all';

interface DeadRow {
  seq: number;
  id: string;
  data: Buffer;
  metadata: string;
  deliveryCount: number;
  reason: string;
  enqueuedAt: number;
  deadLetteredAt: number;
}

function toDeadLetter(r: DeadRow): DeadLetter {
  return {
    id: r.id, data: r.data, metadata: JSON.parse(r.metadata) as MessageMetadata, deliveryCount: r.deliveryCount,
    reason: r.reason, enqueuedAt: r.enqueuedAt, deadLetteredAt: r.deadLetteredAt,
  };
}

/** The reason of a message whose last allowed delivery ended without an answer. */
function leaseExpiredReason(deliveryCount: number): string {
  return `MaxDeliveryCountExceeded: delivered ${deliveryCount} times and the last lease expired ` +
    '(its process stopped or overran the visibility timeout)';
}

interface LeasedRow { seq: number; id: string; data: Buffer; metadata: string; deliveryCount: number; enqueuedAt: number }

/** A message's stored metadata; most messages carry none, and need no parse for it. */
function parseMetadata(text: string): MessageMetadata {
  return text === '{}' ? {} : (JSON.parse(text) as MessageMetadata);
}

/** SQLite's LIMIT: -1 is none. */
function sqlLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : -1;
}

type Statements = { [K in keyof typeof SQL]: Database.Statement };

const tokenPrefix = randomBytes(6).toString('base64url');
let tokenCounter = 0;
function newToken(): string {
  tokenCounter += 1;
  return `${tokenPrefix}.${tokenCounter.toString(36)}`;
}

const open = new Map<string, { store: QueueStore; refs: number }>();

export class QueueStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly st: Statements;
  private readonly feed: ChangeFeed;
  private readonly leaseTx: (queue: string, max: number, visibilityMs: number, maxDelivery: number, acks: readonly Ack[]) => LeaseResult;
  private readonly settleTx: (acks: readonly Ack[]) => AckOutcome[];
  private readonly renewTx: (leases: ReadonlyArray<{ seq: number; token: string }>, visibilityMs: number) => number[];
  private readonly requeueTx: (queue: string, ids: DeadLetterIds) => number;
  private readonly purgeDeadTx: (queue: string, ids: DeadLetterIds) => number;
  private readonly purgeTx: (queue: string, maxDelivery: number) => number;
  private readonly depthTx: (queue: string) => QueueDepth;
  private readonly insertTx: (rows: readonly PendingSend[]) => void;
  /** Sends of this event-loop turn, written together in one transaction. */
  private sends: PendingSend[] = [];
  private sendsFlush: NodeJS.Immediate | undefined;

  /** Opens (or shares) the queue file of dataDir. Pair every call with unref(). */
  static acquire(dataDir: string): QueueStore {
    const file = path.resolve(dataDir, QUEUE_FILE);
    const entry = open.get(file);
    if (entry) {
      entry.refs += 1;
      return entry.store;
    }
    const store = new QueueStore(file);
    open.set(file, { store, refs: 1 });
    return store;
  }

  private constructor(file: string) {
    this.file = file;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.db = new Database(file);
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
      this.st = Object.fromEntries(Object.entries(SQL).map(([k, sql]) => [k, this.db.prepare(sql)])) as Statements;
    } catch (err) {
      throw new BrokerError(`embedded queue ${file}: cannot open: ${errorMessage(err)}`, { cause: err });
    }
    for (const k of ['total', 'inFlight', 'deadCount', 'nextVisible', 'topicQueues'] as const) this.st[k].pluck();
    const versionStmt = this.db.prepare('PRAGMA data_version').pluck();
    const readVersion = (): number => versionStmt.get() as number;
    this.feed = new ChangeFeed(readVersion, {
      watchFile: `${file}-wal`, fastPollMs: FAST_POLL_MS, slowPollMs: SLOW_POLL_MS,
    });

    this.settleTx = this.db.transaction((acks: readonly Ack[]) => this.applyAcks(acks, Date.now()))
      .immediate as QueueStore['settleTx'];

    this.leaseTx = this.db.transaction((queue: string, max: number, visibilityMs: number, maxDelivery: number, acks: readonly Ack[]) => {
      const now = Date.now();
      const outcomes = this.applyAcks(acks, now);
      const out: LeasedMessage[] = [];
      const token = newToken();
      // Rows whose count is already at the maximum only come from expired leases: they go aside, not out again.
      for (let round = 0; round < 4 && out.length < max; round++) {
        const rows = this.st.candidates.all(queue, now, max - out.length) as Array<{ seq: number; deliveryCount: number }>;
        if (rows.length === 0) break;
        let deadLettered = 0;
        for (const r of rows) {
          if (r.deliveryCount >= maxDelivery) {
            this.setAside(r.seq, leaseExpiredReason(r.deliveryCount), now);
            deadLettered += 1;
          }
        }
        if (deadLettered < rows.length) {
          // One statement leases them all (not one per message).
          const leased = this.st.leaseRange.all(token, now + visibilityMs, queue, rows[0]!.seq, rows[rows.length - 1]!.seq, now, maxDelivery) as LeasedRow[];
          if (leased.length > 1) leased.sort((a, b) => a.seq - b.seq);
          for (const row of leased) {
            out.push({
              seq: row.seq, id: row.id, data: row.data, metadata: parseMetadata(row.metadata), deliveryCount: row.deliveryCount,
              enqueuedAt: row.enqueuedAt, token,
            });
          }
        }
        if (deadLettered === 0) break;
      }
      if (out.length > 0) return { leased: out, outcomes };
      let version: number | undefined;
      try {
        version = readVersion();
      } catch {
        // Without a baseline the waiter relies on the feed's own polling, as after any failed read of the version.
      }
      return { leased: out, outcomes, version };
    }).immediate as QueueStore['leaseTx'];

    this.renewTx = this.db.transaction((leases: ReadonlyArray<{ seq: number; token: string }>, visibilityMs: number) => {
      const until = Date.now() + visibilityMs;
      const lost: number[] = [];
      for (const l of leases) if (this.st.renew.run(until, l.seq, l.token).changes === 0) lost.push(l.seq);
      return lost;
    }).immediate as QueueStore['renewTx'];

    // Inserted at the end of the queue and deleted from the dead letters in one transaction: never both, never neither.
    this.requeueTx = this.db.transaction((queue: string, ids: DeadLetterIds) => {
      const now = Date.now();
      if (ids === 'all') {
        this.st.requeueAll.run(now, now, queue);
        return this.st.deleteDeadAll.run(queue).changes;
      }
      const list = JSON.stringify(ids);
      this.st.requeueIds.run(now, now, queue, list);
      return this.st.deleteDeadIds.run(queue, list).changes;
    }).immediate as QueueStore['requeueTx'];

    this.purgeDeadTx = this.db.transaction((queue: string, ids: DeadLetterIds) =>
      (ids === 'all' ? this.st.deleteDeadAll.run(queue) : this.st.deleteDeadIds.run(queue, JSON.stringify(ids))).changes)
      .immediate as QueueStore['purgeDeadTx'];

    // A lease that ran out on the last delivery is a dead letter waiting for the next lease to set it aside: it is
    // set aside here, not purged, so a purge never takes what a receiver would have dead-lettered.
    this.purgeTx = this.db.transaction((queue: string, maxDelivery: number) => {
      const now = Date.now();
      for (const r of this.st.exhausted.all(queue, now, maxDelivery) as Array<{ seq: number; deliveryCount: number }>) {
        this.setAside(r.seq, leaseExpiredReason(r.deliveryCount), now);
      }
      return this.st.purgeReady.run(queue, now).changes;
    }).immediate as QueueStore['purgeTx'];

    this.insertTx = this.db.transaction((rows: readonly PendingSend[]) => {
      const now = Date.now();
      for (const r of rows) {
        const meta = JSON.stringify(r.metadata);
        // A publish reads the bound queues in the transaction that inserts: a binding is either before it or after.
        const queues = r.topic === undefined ? [r.queue] : (this.st.topicQueues.all(r.topic) as string[]);
        for (const q of queues) this.st.insert.run(q, r.id, r.data, meta, now, now);
      }
    }).immediate as QueueStore['insertTx'];

    this.depthTx = this.db.transaction((queue: string) => {
      const total = this.st.total.get(queue) as number;
      const inFlight = this.st.inFlight.get(queue, Date.now()) as number;
      const deadLettered = this.st.deadCount.get(queue) as number;
      return { ready: total - inFlight, inFlight, deadLettered };
    }) as QueueStore['depthTx'];
  }

  /**
   * Stores a message; resolves once it is committed. Sends made in the same turn of the event loop (concurrent HTTP
   * requests to a sidecar) share one transaction, in call order.
   */
  enqueue(queue: string, data: Buffer, metadata: MessageMetadata): Promise<string> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      this.sends.push({ queue, id, data, metadata, done: (err) => (err ? reject(err) : resolve(id)) });
      this.sendsFlush ??= setImmediate(() => this.flushSends());
    });
  }

  /**
   * Stores a message in every queue bound to `topic` (bindTopic) at the time of the commit, one transaction with the
   * other sends of this turn; a topic no queue is bound to keeps nothing.
   */
  publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<string> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      this.sends.push({ queue: '', topic, id, data, metadata, done: (err) => (err ? reject(err) : resolve(id)) });
      this.sendsFlush ??= setImmediate(() => this.flushSends());
    });
  }

  /** Makes every later publish to `topic` land in `queue` too (idempotent, durable). */
  bindTopic(topic: string, queue: string): void {
    this.guard('bind a queue to a topic', () => this.st.bindQueue.run(topic, queue, Date.now()));
  }

  /** The queues bound to `topic`, by name. */
  topicQueues(topic: string): string[] {
    return this.guard('read topic bindings', () => this.st.topicQueues.all(topic) as string[]);
  }

  private flushSends(): void {
    if (this.sendsFlush) clearImmediate(this.sendsFlush);
    this.sendsFlush = undefined;
    const rows = this.sends;
    if (rows.length === 0) return;
    this.sends = [];
    let failure: Error | undefined;
    try {
      this.guard('send', () => this.insertTx(rows));
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    for (const r of rows) r.done(failure);
    if (!failure) this.feed.announce();
  }

  /**
   * Leases up to max ready messages, oldest first, each for visibilityMs (none when max is 0). The answers given in
   * acks are applied first, in the same transaction (outcomes[i]: what acks[i] did).
   */
  lease(queue: string, max: number, visibilityMs: number, maxDeliveryCount: number, acks: readonly Ack[] = []): LeaseResult {
    const r = this.guard('lease', () => this.leaseTx(queue, max, visibilityMs, maxDeliveryCount, acks));
    this.announceReleases(r.outcomes);
    return r;
  }

  /** Applies several answers in one transaction; result[i]: what acks[i] did. */
  settle(acks: readonly Ack[]): AckOutcome[] {
    if (acks.length === 0) return [];
    const outcomes = this.guard(acks.some((a) => a.release) ? 'release' : 'complete', () => this.settleTx(acks));
    this.announceReleases(outcomes);
    return outcomes;
  }

  /** Deletes the message if this lease still holds it. false: the lease expired and someone else may have it. */
  complete(seq: number, token: string): boolean {
    return this.guard('complete', () => this.st.complete.run(seq, token).changes === 1);
  }

  release(seq: number, token: string, release: Release): ReleaseOutcome {
    return this.settle([{ seq, token, release }])[0] as ReleaseOutcome;
  }

  /** Extends the leases; returns the seqs whose lease was already lost. */
  renew(leases: ReadonlyArray<{ seq: number; token: string }>, visibilityMs: number): number[] {
    if (leases.length === 0) return [];
    return this.guard('renew leases', () => this.renewTx(leases, visibilityMs));
  }

  depth(queue: string): QueueDepth {
    return this.guard('depth', () => this.depthTx(queue));
  }

  /** True when the queue holds any message, ready or in flight. */
  hasAny(queue: string): boolean {
    return this.guard('depth', () => this.st.any.get(queue) !== undefined);
  }

  /** Milliseconds until the next leased or backed-off message of the queue becomes ready, if any. */
  nextVisibleIn(queue: string): number | undefined {
    const now = Date.now();
    const at = this.guard('depth', () => this.st.nextVisible.get(queue, now) as number | null);
    return at === null ? undefined : Math.max(0, at - now);
  }

  /** Oldest first, at most limit (Infinity: all). */
  deadLetters(queue: string, limit: number): DeadLetter[] {
    const rows = this.guard('read dead letters', () => this.st.deadLetters.all(queue, sqlLimit(limit))) as DeadRow[];
    return rows.map(toDeadLetter);
  }

  deadLetter(queue: string, id: string): DeadLetter | undefined {
    const row = this.guard('read a dead letter', () => this.st.deadLetter.get(queue, id)) as DeadRow | undefined;
    return row && toDeadLetter(row);
  }

  /**
   * Moves the named dead letters (or all) back to the end of the queue as new messages: same id, body and metadata,
   * delivery count 0, enqueued now. Returns how many moved; unknown ids are ignored.
   */
  requeueDeadLetters(queue: string, ids: DeadLetterIds): number {
    if (ids !== 'all' && ids.length === 0) return 0;
    const n = this.guard('requeue dead letters', () => this.requeueTx(queue, ids));
    if (n > 0) this.feed.announce();
    return n;
  }

  /** Deletes the named dead letters (or all); returns how many. */
  purgeDeadLetters(queue: string, ids: DeadLetterIds): number {
    if (ids !== 'all' && ids.length === 0) return 0;
    const n = this.guard('purge dead letters', () => this.purgeDeadTx(queue, ids));
    if (n > 0) this.feed.announce();
    return n;
  }

  /** Deletes the queue's ready messages (under no live lease); returns how many. Dead letters stay. */
  purge(queue: string, maxDeliveryCount: number): number {
    const n = this.guard('purge', () => this.purgeTx(queue, maxDeliveryCount));
    if (n > 0) this.feed.announce();
    return n;
  }

  /** Calls back on any change to the file (this process's writes at once, other processes' within milliseconds). */
  onChange(listener: () => void, baseline?: number): () => void {
    return this.feed.subscribe(listener, baseline);
  }

  /** Changes when another process commits to the file: read it before a query, pass it to onChange after. */
  dataVersion(): number | undefined {
    return this.feed.version();
  }

  /** Gives back what acquire() took; the last user closes the file. */
  unref(): void {
    const entry = open.get(this.file);
    if (!entry || entry.store !== this) return;
    entry.refs -= 1;
    if (entry.refs > 0) return;
    open.delete(this.file);
    this.flushSends();
    this.feed.stop();
    this.db.close();
  }

  /** Inside a transaction: completes or releases each delivery whose token still holds its message. */
  private applyAcks(acks: readonly Ack[], now: number): AckOutcome[] {
    return acks.map((a): AckOutcome => {
      if (!a.release) return this.st.complete.run(a.seq, a.token).changes === 1 ? 'completed' : 'lease-lost';
      const count = this.st.deliveryCountOf.get(a.seq, a.token) as { deliveryCount: number } | undefined;
      if (!count) return 'lease-lost';
      const { backoffMs, maxDeliveryCount, reason } = a.release;
      if (count.deliveryCount >= maxDeliveryCount) {
        this.setAside(a.seq, `MaxDeliveryCountExceeded: failed on delivery ${count.deliveryCount} of ${maxDeliveryCount}: ${reason}`, now);
        return 'dead-lettered';
      }
      this.st.release.run(now + backoffMs(count.deliveryCount), a.seq, a.token);
      return 'released';
    });
  }

  /** A message given back (or set aside) is news to receivers and dead-letter readers: once per transaction. */
  private announceReleases(outcomes: readonly AckOutcome[]): void {
    if (outcomes.some((o) => o === 'released' || o === 'dead-lettered')) this.feed.announce();
  }

  private setAside(seq: number, reason: string, now: number): void {
    this.st.toDeadLetters.run(reason, now, seq);
    this.st.deleteBySeq.run(seq);
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new BrokerError(`embedded queue ${this.file}: ${what} failed: ${errorMessage(err)}`, { cause: err });
    }
  }
}
