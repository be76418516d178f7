/**
 * The Redis stream commands the queue uses, with their replies parsed (ioredis types them loosely).
 *
 * Layout: the queue is a stream; every entry holds `data` (the exact bytes) and `meta` (JSON of the message
 * metadata). Entries are deleted when acked, so XLEN = ready + in flight. The dead-letter stream's entries add
 * `reason`, `deliveryCount`, `sourceId` (the queue entry's id), `enqueuedAt` and `deadLetteredAt` (ms since the
 * epoch; dead letters written before these two were kept read them from `sourceId` and their own id).
 */
import type { Redis } from 'ioredis';
import type { DeadLetter } from '../types.js';
import { ACK_THEN_READ, HAND_BACK, PURGE_READY, REQUEUE_DEAD_LETTERS } from './scripts.js';

/** An entry id as Redis writes it ("<ms>-<seq>"): anything else names no entry. */
const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;

export function isEntryId(id: string): boolean {
  return ENTRY_ID.test(id);
}

/** When Redis stored an entry: the milliseconds part of its id. */
export function entryTime(id: string): number | undefined {
  const ms = Number(id.slice(0, id.indexOf('-')));
  return ENTRY_ID.test(id) && Number.isSafeInteger(ms) ? ms : undefined;
}

/** A queue entry: its id, the message body and metadata. */
export interface QueueEntry {
  id: string;
  data: Buffer;
  meta: Record<string, string>;
}

/** A stream entry with every field (a pub/sub topic's entries carry fields of their own). */
export interface StreamEntry extends QueueEntry {
  fields: Map<string, Buffer>;
}

/** Turns one entry of a reply into what the caller reads (undefined: not an entry, e.g. one deleted while pending). */
export type EntryParser<E> = (raw: unknown) => E | undefined;

/** The metadata of an entry's `meta` field: {} when missing or not JSON. */
function metaOf(raw: Buffer | undefined): Record<string, string> {
  if (!raw) return {};
  try {
    return JSON.parse(raw.toString('utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/**
 * Every field of an entry of a reply read as Buffers. ioredis hands out views into the socket chunk a reply came in,
 * so each value is copied: an entry then holds its own bytes, not the whole chunk.
 */
export function entryFrom(raw: unknown): StreamEntry | undefined {
  if (!Array.isArray(raw) || raw.length < 2) return undefined;
  const [idRaw, flat] = raw as [unknown, unknown];
  if (!Array.isArray(flat)) return undefined; // an entry deleted while pending
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), Buffer.from(flat[i + 1] as Buffer));
  return { id: String(idRaw), data: fields.get('data') ?? Buffer.alloc(0), meta: metaOf(fields.get('meta')), fields };
}

/** A queue entry of a reply: only `data` is copied (see entryFrom), `meta` is parsed in place, other fields skipped. */
export function queueEntryFrom(raw: unknown): QueueEntry | undefined {
  if (!Array.isArray(raw) || raw.length < 2) return undefined;
  const [idRaw, flat] = raw as [unknown, unknown];
  if (!Array.isArray(flat)) return undefined;
  let data: Buffer | undefined;
  let meta: Buffer | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]);
    if (name === 'data') data = flat[i + 1] as Buffer;
    else if (name === 'meta') meta = flat[i + 1] as Buffer;
  }
  return { id: String(idRaw), data: data ? Buffer.from(data) : Buffer.alloc(0), meta: metaOf(meta) };
}

/** The entries of an XREADGROUP reply (nil when BLOCK ran out: none). */
function entriesOf<E>(reply: unknown, parse: EntryParser<E>): E[] {
  const out: E[] = [];
  if (!Array.isArray(reply)) return out;
  for (const s of reply as unknown[]) {
    const entries = Array.isArray(s) ? (s as unknown[])[1] : undefined;
    if (!Array.isArray(entries)) continue;
    for (const e of entries) {
      const parsed = parse(e);
      if (parsed) out.push(parsed);
    }
  }
  return out;
}

/** blockMs undefined: the read answers at once, with what is there. */
function readArgs(stream: string, group: string, consumer: string, count: number, blockMs: number | undefined): string[] {
  if (blockMs === undefined) return ['GROUP', group, consumer, 'COUNT', String(count), 'STREAMS', stream, '>'];
  return ['GROUP', group, consumer, 'COUNT', String(count), 'BLOCK', String(blockMs), 'STREAMS', stream, '>'];
}

export async function readNew(r: Redis, stream: string, group: string, consumer: string, count: number, blockMs: number | undefined): Promise<StreamEntry[]>;
export async function readNew<E>(r: Redis, stream: string, group: string, consumer: string, count: number, blockMs: number | undefined, parse: EntryParser<E>): Promise<E[]>;
export async function readNew(
  r: Redis, stream: string, group: string, consumer: string, count: number, blockMs: number | undefined, parse: EntryParser<unknown> = entryFrom,
): Promise<unknown[]> {
  return entriesOf(await r.callBuffer('XREADGROUP', ...readArgs(stream, group, consumer, count, blockMs)), parse);
}

/** ACK_THEN_READ as a command of a connection (ioredis sends EVALSHA, and the script itself when Redis lacks it). */
interface ScriptClient {
  qscaleAckThenReadBuffer(stream: string, group: string, consumer: string, count: string, ...ids: string[]): Promise<unknown>;
}

const scripted = new WeakSet<Redis>();

function withScript(r: Redis): ScriptClient {
  if (!scripted.has(r)) {
    r.defineCommand('qscaleAckThenRead', { numberOfKeys: 1, lua: ACK_THEN_READ });
    scripted.add(r);
  }
  return r as unknown as ScriptClient;
}

/** What ackThenReadNew got: whether the acks went through (undefined: yes; else why not), and the read's entries or error. */
export interface AckedRead {
  acked: Error | undefined;
  entries: QueueEntry[];
  readFailed: Error | undefined;
}

const failed = (err: unknown): AckedRead => {
  // Neither the acks nor the read are known to have run.
  const e = err instanceof Error ? err : new Error(String(err));
  return { acked: e, entries: [], readFailed: e };
};

/**
 * Acks and deletes `ids` (XACK + XDEL) and reads up to `count` new entries without blocking, in one command (the
 * ACK_THEN_READ script): Redis runs the acks before the read. count 0: the acks alone; no ids: a plain XREADGROUP.
 */
export async function ackThenReadNew(r: Redis, stream: string, group: string, consumer: string, ids: readonly string[], count: number): Promise<AckedRead> {
  let reply: unknown;
  try {
    if (ids.length === 0) {
      return { acked: undefined, entries: await readNew(r, stream, group, consumer, count, undefined, queueEntryFrom), readFailed: undefined };
    }
    reply = await withScript(r).qscaleAckThenReadBuffer(stream, group, consumer, String(count), ...ids);
  } catch (err) {
    return failed(err);
  }
  const [acked, read] = Array.isArray(reply) ? (reply as unknown[]) : [];
  return {
    acked: acked instanceof Error ? acked : undefined,
    entries: read instanceof Error ? [] : entriesOf(read, queueEntryFrom),
    readFailed: read instanceof Error ? read : undefined,
  };
}

/** Acks and deletes entries (XACK + XDEL of all the ids): one command however many. */
export async function ackAndDeleteMany(r: Redis, stream: string, group: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const { acked } = await ackThenReadNew(r, stream, group, '', ids, 0);
  if (acked) throw acked;
}

/** Takes over entries idle for at least minIdleMs (crashed consumers, or failures marked for retry). */
export async function claimIdle(r: Redis, stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]>;
export async function claimIdle<E>(r: Redis, stream: string, group: string, consumer: string, minIdleMs: number, count: number, parse: EntryParser<E>): Promise<E[]>;
export async function claimIdle(
  r: Redis, stream: string, group: string, consumer: string, minIdleMs: number, count: number, parse: EntryParser<unknown> = entryFrom,
): Promise<unknown[]> {
  const reply = (await r.callBuffer('XAUTOCLAIM', stream, group, consumer, String(minIdleMs), '0-0', 'COUNT', String(count))) as unknown;
  if (!Array.isArray(reply)) return [];
  const claimed = (reply as unknown[])[1];
  if (!Array.isArray(claimed)) return [];
  return claimed.map(parse).filter((e) => e !== undefined);
}

/** How many times each entry was delivered (XAUTOCLAIM and XREADGROUP count; a JUSTID XCLAIM does not). */
export async function deliveryCounts(r: Redis, stream: string, group: string, ids: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const p = r.pipeline();
  for (const id of ids) p.call('XPENDING', stream, group, id, id, '1');
  const results = (await p.exec()) ?? [];
  results.forEach(([err, rows], i) => {
    const id = ids[i];
    if (err || id === undefined || !Array.isArray(rows)) return;
    const row = (rows as unknown[])[0];
    if (Array.isArray(row)) out.set(id, Number(row[3]));
  });
  return out;
}

/** Resets the idle time of entries still being worked on (without counting a delivery), so nobody takes them. */
export async function renew(r: Redis, stream: string, group: string, consumer: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await r.call('XCLAIM', stream, group, consumer, '0', ...ids, 'JUSTID');
}

/**
 * The consumer of the group that holds entries handed back (see handBack): never one that reads, so whatever it
 * holds waits for the next claim sweep of any receiver, and depth() counts it as ready.
 */
export const HANDED_BACK = 'qscale:handed-back';

/**
 * Hands back entries this consumer read and never delivered (see scripts.ts): held by HANDED_BACK and claimable by
 * any consumer at once, each with the delivery count it had before the read (`before`), so the claim that delivers
 * it counts right. Returns how many it handed back (an entry another consumer took meanwhile is not).
 */
export async function handBack(
  r: Redis, stream: string, group: string, consumer: string, idleMs: number, entries: ReadonlyArray<{ id: string; before: number }>,
): Promise<number> {
  if (entries.length === 0) return 0;
  const args = entries.flatMap((e) => [e.id, String(e.before)]);
  return Number(await r.eval(HAND_BACK, 1, stream, group, consumer, String(idleMs), HANDED_BACK, ...args));
}

/** How many entries HANDED_BACK holds (XPENDING's summary: per consumer); 0 for a missing stream or group. */
export async function handedBackCount(r: Redis, stream: string, group: string): Promise<number> {
  let summary: unknown;
  try {
    summary = await r.call('XPENDING', stream, group);
  } catch (err) {
    if (/NOGROUP|no such key/i.test(String((err as Error).message))) return 0;
    throw err;
  }
  const consumers = Array.isArray(summary) ? (summary as unknown[])[3] : undefined;
  for (const row of Array.isArray(consumers) ? (consumers as unknown[]) : []) {
    if (Array.isArray(row) && String(row[0]) === HANDED_BACK) return Number(row[1]);
  }
  return 0;
}

/** Makes a failed entry look idle for idleMs: a claim sweep (of any consumer) takes it once idle for its minimum. */
export async function releaseForRetry(r: Redis, stream: string, group: string, consumer: string, id: string, idleMs: number): Promise<void> {
  await r.call('XCLAIM', stream, group, consumer, '0', id, 'IDLE', String(idleMs), 'JUSTID');
}

export async function deadLetter(
  r: Redis, stream: string, group: string, dlq: string, e: QueueEntry, deliveryCount: number, reason: string,
): Promise<void> {
  const enqueuedAt = entryTime(e.id);
  await r
    .multi()
    .xadd(dlq, '*', 'data', e.data, 'meta', JSON.stringify(e.meta), 'reason', reason, 'deliveryCount', String(deliveryCount),
      'sourceId', e.id, ...(enqueuedAt === undefined ? [] : ['enqueuedAt', String(enqueuedAt)]), 'deadLetteredAt', String(Date.now()))
    .xack(stream, group, e.id)
    .xdel(stream, e.id)
    .exec();
}

function deadLetterFrom(e: StreamEntry): DeadLetter {
  const text = (field: string): string | undefined => e.fields.get(field)?.toString('utf8');
  const time = (field: string): number | undefined => {
    const v = text(field);
    return v !== undefined && Number.isFinite(Number(v)) ? Number(v) : undefined;
  };
  const sourceId = text('sourceId');
  const enqueuedAt = time('enqueuedAt') ?? (sourceId === undefined ? undefined : entryTime(sourceId));
  const deadLetteredAt = time('deadLetteredAt') ?? entryTime(e.id);
  return {
    id: e.id,
    data: e.data,
    metadata: e.meta,
    deliveryCount: Number(text('deliveryCount') ?? 0) || 0,
    reason: text('reason') ?? 'dead-lettered',
    ...(enqueuedAt === undefined ? {} : { enqueuedAt }),
    ...(deadLetteredAt === undefined ? {} : { deadLetteredAt }),
  };
}

/** Dead letters with ids from `start` up to `end` (both inclusive, '-' and '+' for the ends), oldest first. */
export async function readDeadLetters(r: Redis, dlq: string, start: string, end: string, limit: number): Promise<DeadLetter[]> {
  const reply = (await r.callBuffer('XRANGE', dlq, start, end, 'COUNT', String(Math.max(1, Math.floor(limit))))) as unknown;
  const out: DeadLetter[] = [];
  for (const raw of Array.isArray(reply) ? (reply as unknown[]) : []) {
    const e = entryFrom(raw);
    if (e) out.push(deadLetterFrom(e));
  }
  return out;
}

/** The newest entry's id, or undefined for an empty or missing stream. */
export async function lastEntryId(r: Redis, stream: string): Promise<string | undefined> {
  const reply = (await r.call('XREVRANGE', stream, '+', '-', 'COUNT', '1')) as unknown;
  const first = Array.isArray(reply) ? (reply as unknown[])[0] : undefined;
  return Array.isArray(first) ? String(first[0]) : undefined;
}

/** The id right after `id`: XTRIM MINID keeps entries from it on. */
function nextEntryId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** Moves the named dead letters back to the queue as new entries (see scripts.ts); returns how many moved. */
export async function requeueDeadLetters(r: Redis, dlq: string, stream: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return Number(await r.eval(REQUEUE_DEAD_LETTERS, 2, dlq, stream, ...ids));
}

export async function deleteDeadLetters(r: Redis, dlq: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return r.xdel(dlq, ...ids);
}

/** Deletes every dead letter up to `lastId` (inclusive): the ones written while this runs stay. */
export async function deleteDeadLettersUpTo(r: Redis, dlq: string, lastId: string): Promise<number> {
  return Number(await r.call('XTRIM', dlq, 'MINID', nextEntryId(lastId)));
}

/**
 * One step of the queue purge (see scripts.ts): deletes up to `count` entries the group was never handed, up to
 * `lastId`; fewer than `count` once it got there. `before`: how many the purge's earlier steps deleted.
 */
export async function purgeReady(r: Redis, stream: string, group: string, lastId: string, count: number, before: number): Promise<number> {
  return Number(await r.eval(PURGE_READY, 1, stream, group, lastId, String(count), String(before)));
}

export async function ensureGroup(r: Redis, stream: string, group: string): Promise<void> {
  try {
    // From id 0: entries added before the group existed (a producer that started first) are delivered too.
    await r.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!/BUSYGROUP/.test(String((err as Error).message))) throw err;
  }
}

export interface GroupCounts {
  /** Entries not yet delivered to the group. */
  lag: number;
  /** Delivered and not acked. */
  pending: number;
  length: number;
}

/** lag from XINFO GROUPS (Redis 7); where Redis cannot tell it, length − pending, exact here since acked entries are deleted. */
export async function groupCounts(r: Redis, stream: string, group: string): Promise<GroupCounts> {
  const length = await r.xlen(stream);
  let groups: unknown;
  try {
    groups = await r.call('XINFO', 'GROUPS', stream);
  } catch (err) {
    if (/no such key/i.test(String((err as Error).message))) return { lag: 0, pending: 0, length: 0 };
    throw err;
  }
  for (const g of Array.isArray(groups) ? (groups as unknown[]) : []) {
    if (!Array.isArray(g)) continue;
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
    if (String(info.get('name')) !== group) continue;
    const pending = Number(info.get('pending') ?? 0);
    const lagRaw = info.get('lag');
    // Every entry is pending or not yet delivered (acked ones are deleted): the lag Redis estimates never exceeds that.
    const undelivered = Math.max(0, length - pending);
    const lag = lagRaw === null || lagRaw === undefined ? undelivered : Math.min(Number(lagRaw), undelivered);
    return { lag, pending, length };
  }
  // No group yet: nothing was delivered, everything is waiting.
  return { lag: length, pending: 0, length };
}
