/**
 * The Redis stream commands the queue uses, with their replies parsed (ioredis types them loosely).
 *
 * Layout: the queue is a stream; every entry holds `data` (the exact bytes) and `meta` (JSON of the message
 * metadata). Entries are deleted when acked, so XLEN = ready + in flight. The dead-letter stream's entries add
 * `reason`, `deliveryCount` and `sourceId`.
 */
import type { Redis } from 'ioredis';

export interface StreamEntry {
  id: string;
  data: Buffer;
  meta: Record<string, string>;
  fields: Map<string, Buffer>;
}

function entryFrom(raw: unknown): StreamEntry | undefined {
  if (!Array.isArray(raw) || raw.length < 2) return undefined;
  const [idRaw, flat] = raw as [unknown, unknown];
  if (!Array.isArray(flat)) return undefined; // an entry deleted while pending
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), Buffer.from(flat[i + 1] as Buffer));
  let meta: Record<string, string> = {};
  const metaRaw = fields.get('meta');
  if (metaRaw) {
    try {
      meta = JSON.parse(metaRaw.toString('utf8')) as Record<string, string>;
    } catch {
      meta = {};
    }
  }
  return { id: String(idRaw), data: fields.get('data') ?? Buffer.alloc(0), meta, fields };
}

export async function readNew(r: Redis, stream: string, group: string, consumer: string, count: number, blockMs: number): Promise<StreamEntry[]> {
  const reply = (await r.callBuffer(
    'XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), 'BLOCK', String(blockMs), 'STREAMS', stream, '>',
  )) as unknown;
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const s of reply as unknown[]) {
    const entries = Array.isArray(s) ? (s as unknown[])[1] : undefined;
    if (!Array.isArray(entries)) continue;
    for (const e of entries) {
      const parsed = entryFrom(e);
      if (parsed) out.push(parsed);
    }
  }
  return out;
}

/** Takes over entries idle for at least minIdleMs (crashed consumers, or failures marked for retry). */
export async function claimIdle(r: Redis, stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
  const reply = (await r.callBuffer('XAUTOCLAIM', stream, group, consumer, String(minIdleMs), '0-0', 'COUNT', String(count))) as unknown;
  if (!Array.isArray(reply)) return [];
  const claimed = (reply as unknown[])[1];
  if (!Array.isArray(claimed)) return [];
  return claimed.map(entryFrom).filter((e): e is StreamEntry => e !== undefined);
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

/** Makes a failed entry look idle for idleMs: a claim sweep (of any consumer) takes it once idle for its minimum. */
export async function releaseForRetry(r: Redis, stream: string, group: string, consumer: string, id: string, idleMs: number): Promise<void> {
  await r.call('XCLAIM', stream, group, consumer, '0', id, 'IDLE', String(idleMs), 'JUSTID');
}

export async function ackAndDelete(r: Redis, stream: string, group: string, id: string): Promise<void> {
  await r.multi().xack(stream, group, id).xdel(stream, id).exec();
}

export async function deadLetter(
  r: Redis, stream: string, group: string, dlq: string, e: StreamEntry, deliveryCount: number, reason: string,
): Promise<void> {
  await r
    .multi()
    .xadd(dlq, '*', 'data', e.data, 'meta', JSON.stringify(e.meta), 'reason', reason, 'deliveryCount', String(deliveryCount), 'sourceId', e.id)
    .xack(stream, group, e.id)
    .xdel(stream, e.id)
    .exec();
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
    const lag = lagRaw === null || lagRaw === undefined ? Math.max(0, length - pending) : Number(lagRaw);
    return { lag, pending, length };
  }
  // No group yet: nothing was delivered, everything is waiting.
  return { lag: length, pending: 0, length };
}
