/**
 * Per-message mapping between Dapr's request metadata and AMQP properties, as Dapr's RabbitMQ binding does it
 * (bindings/rabbitmq Invoke, common/component/rabbitmq ApplyMetadataToPublishing): every metadata entry becomes a
 * header; `ttl` / `ttlInSeconds` → expiration (ms); `priority` → priority, clamped to 0–255; `contentType`,
 * `messageID`, `correlationID` and `type` → the message's properties (names matched exactly first, then
 * case-insensitively). On the way in, string headers come back as metadata with their keys query-escaped like Go's
 * url.QueryEscape and their values as they are.
 */
import { randomUUID } from 'node:crypto';
import type { Message, Options } from 'amqplib';
import { QscaleError } from '../../errors.js';
import type { MessageMetadata } from '../types.js';
import { daprTtl } from '../dapr-ttl.js';
import { withoutDeathHeaders } from './retry.js';

/**
 * qscale's own headers: a failed delivery count that survives restarts; on a dead letter, why, from which queue,
 * its id and when (ms since the epoch). Dead letters of earlier versions carry the first three only.
 */
export const DELIVERY_COUNT_HEADER = 'x-delivery-count';
export const DEAD_LETTER_REASON_HEADER = 'x-qscale-dead-letter-reason';
export const SOURCE_QUEUE_HEADER = 'x-qscale-source-queue';
export const DEAD_LETTER_ID_HEADER = 'x-qscale-dead-letter-id';
export const DEAD_LETTERED_AT_HEADER = 'x-qscale-dead-lettered-at';

/** Dapr's TryGetProperty: the exact key first, then any spelling of it; empty values do not count. */
export function lookup(md: MessageMetadata, key: string): string | undefined {
  const exact = md[key];
  if (exact !== undefined && exact !== '') return exact;
  const want = key.toLowerCase();
  for (const [k, v] of Object.entries(md)) if (v !== '' && k.toLowerCase() === want) return v;
  return undefined;
}

function badMetadata(key: string, value: string, expected: string): QscaleError {
  return new QscaleError('ERR_BAD_METADATA', `metadata '${key}' must be ${expected}, got '${value}'`);
}

export function publishOptions(md: MessageMetadata, defaultContentType: string): Options.Publish {
  const opts: Options.Publish = {
    persistent: true,
    contentType: lookup(md, 'contentType') ?? defaultContentType,
    headers: { ...md },
    // Dapr sets no id unless asked; qscale needs one to recognise a message the broker returns as unroutable.
    messageId: lookup(md, 'messageID') ?? randomUUID(),
    timestamp: Math.floor(Date.now() / 1000),
  };
  const correlationId = lookup(md, 'correlationID');
  if (correlationId !== undefined) opts.correlationId = correlationId;
  const type = lookup(md, 'type');
  if (type !== undefined) opts.type = type;
  const ttl = daprTtl(md);
  if (ttl !== undefined) {
    if ('error' in ttl) throw badMetadata(ttl.key, ttl.value, ttl.error);
    // Go's Duration.Milliseconds(): whole milliseconds, truncated. 0 is sent as is, as Dapr sends it.
    opts.expiration = String(Math.trunc(ttl.ms));
  }
  // Dapr reads exactly `priority`, and clamps what a byte cannot hold.
  const priority = md.priority;
  if (priority !== undefined && priority !== '') {
    if (!/^[+-]?\d+$/.test(priority)) throw badMetadata('priority', priority, 'an integer (0 to 255; others are clamped)');
    opts.priority = Math.min(255, Math.max(0, Number(priority)));
  }
  return opts;
}

/** Go's url.QueryEscape: only A-Z a-z 0-9 - _ . ~ stay, space becomes '+'. */
export function goQueryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

export function metadataOf(msg: Message): MessageMetadata {
  const out: MessageMetadata = {};
  for (const [k, v] of Object.entries(msg.properties.headers ?? {})) {
    if (typeof v !== 'string' || k.startsWith('x-qscale-')) continue;
    // Dapr escapes the key only: the value reaches the app as it was published.
    out[goQueryEscape(k)] = v;
  }
  return out;
}

/** A header holding a number (as qscale writes it) or its digits (as another client may). */
export function headerNumber(raw: unknown): number | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** Deliveries before this one: our header (kept across republishes) plus one when the broker says "redelivered". */
export function deliveryCountOf(msg: Message & { fields: { redelivered: boolean } }): number {
  return (headerNumber(msg.properties.headers?.[DELIVERY_COUNT_HEADER]) ?? 0) + 1 + (msg.fields.redelivered ? 1 : 0);
}

/** When it was sent: the timestamp property qscale sets at send (whole seconds), kept through retries. */
export function enqueuedAtOf(msg: Message): number | undefined {
  const t = msg.properties.timestamp as unknown;
  return typeof t === 'number' && Number.isFinite(t) && t > 0 ? t * 1000 : undefined;
}

/**
 * The properties of a delivered message, to publish it again unchanged except for its headers. A retry keeps its
 * per-message TTL (counted again from the retry); a dead letter drops it, or it would expire out of the DLQ.
 */
export function republishOptions(msg: Message, headers: Record<string, unknown>, keepExpiration: boolean): Options.Publish {
  const p = msg.properties;
  // The x-death headers RabbitMQ added on the way back from a retry queue stay behind.
  const opts: Options.Publish = { persistent: true, headers: withoutDeathHeaders({ ...(p.headers ?? {}), ...headers }) };
  if (keepExpiration && p.expiration !== undefined) opts.expiration = String(p.expiration);
  if (p.contentType !== undefined) opts.contentType = p.contentType as string;
  if (p.contentEncoding !== undefined) opts.contentEncoding = p.contentEncoding as string;
  if (p.priority !== undefined) opts.priority = p.priority as number;
  if (p.correlationId !== undefined) opts.correlationId = p.correlationId as string;
  if (p.replyTo !== undefined) opts.replyTo = p.replyTo as string;
  if (p.messageId !== undefined) opts.messageId = p.messageId as string;
  if (p.timestamp !== undefined) opts.timestamp = p.timestamp as number;
  if (p.type !== undefined) opts.type = p.type as string;
  if (p.appId !== undefined) opts.appId = p.appId as string;
  return opts;
}
