/**
 * The dead-letter queue as a user browses and replays it. RabbitMQ has no random access to a queue and no peek: the
 * dead letters are read with basic.get (unacked, on a channel of their own) and every one not taken is given back
 * with a nack (requeue), which a classic queue puts back at its place in line. Only the dead-letter queue is read,
 * on its own channel: a consumer of the work queue, in this process or another, sees nothing of it.
 *
 * What a browse costs: a message being looked at is unacked, so depth() counts it out of the dead letters meanwhile,
 * and two browses at the same moment each see only what the other is not holding. Nothing is lost either way.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { GetMessage, Options } from 'amqplib';
import type { DeadLetter, MessageMetadata } from '../types.js';
import {
  DEAD_LETTERED_AT_HEADER, DEAD_LETTER_ID_HEADER, DEAD_LETTER_REASON_HEADER, DELIVERY_COUNT_HEADER, SOURCE_QUEUE_HEADER,
  enqueuedAtOf, headerNumber, republishOptions,
} from './message.js';

/**
 * The reason kept in a header: a header table travels in one frame with the message's properties (128 KiB by
 * default), so an app's very long error text is cut here rather than have the dead letter refused.
 */
export const MAX_REASON_CHARS = 4096;

/** What a dead letter says about why: the maximum was hit, and what went wrong on the last delivery. */
export function deadLetterReason(deliveryCount: number, maxDeliveryCount: number, lastFailure: string): string {
  const text = `MaxDeliveryCountExceeded: failed on delivery ${deliveryCount} of ${maxDeliveryCount}: ${lastFailure}`;
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 1)}…` : text;
}

/** The headers a message gets when it is moved to the dead-letter queue. */
export function deadLetterHeaders(deliveryCount: number, reason: string, sourceQueue: string, now = Date.now()): Record<string, unknown> {
  return {
    [DELIVERY_COUNT_HEADER]: deliveryCount,
    [DEAD_LETTER_REASON_HEADER]: reason,
    [SOURCE_QUEUE_HEADER]: sourceQueue,
    // Its name while it stays dead-lettered: unique even when the app gave two messages the same messageID.
    [DEAD_LETTER_ID_HEADER]: randomUUID(),
    [DEAD_LETTERED_AT_HEADER]: now,
  };
}

/** Headers qscale or RabbitMQ added on the way: not the message's metadata, and not sent again by a requeue. */
function isBookkeeping(key: string): boolean {
  return key === DELIVERY_COUNT_HEADER || key.startsWith('x-qscale-');
}

/** The metadata as the producer sent it: string headers with their keys as given (not escaped as for the app). */
export function sentMetadataOf(m: GetMessage): MessageMetadata {
  const out: MessageMetadata = {};
  for (const [k, v] of Object.entries(m.properties.headers ?? {})) {
    if (typeof v === 'string' && !isBookkeeping(k)) out[k] = v;
  }
  return out;
}

/**
 * The dead letter's name: the id given when it was dead-lettered; for one dead-lettered before that header existed,
 * its message id; for a message with neither (put there by another client), a digest of its content and headers.
 */
export function deadLetterIdOf(m: GetMessage): string {
  const h = m.properties.headers ?? {};
  const given = h[DEAD_LETTER_ID_HEADER] as unknown;
  if (typeof given === 'string' && given !== '') return given;
  const messageId = m.properties.messageId as unknown;
  if (typeof messageId === 'string' && messageId !== '') return messageId;
  const digest = createHash('sha256').update(m.content).update(JSON.stringify(h)).digest('hex');
  return `sha256-${digest.slice(0, 24)}`;
}

interface Death {
  reason?: unknown;
  queue?: unknown;
  time?: unknown;
}

/** RabbitMQ's own dead-lettering (a queue's x-dead-letter-exchange): the x-death entry of the latest death. */
function lastDeath(m: GetMessage): Death | undefined {
  const deaths = m.properties.headers?.['x-death'] as unknown;
  return Array.isArray(deaths) && deaths[0] && typeof deaths[0] === 'object' ? (deaths[0] as Death) : undefined;
}

function amqpTimestampMs(v: unknown): number | undefined {
  const seconds = typeof v === 'object' && v !== null && 'value' in v ? (v as { value: unknown }).value : v;
  return typeof seconds === 'number' && Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

export function toDeadLetter(m: GetMessage): DeadLetter {
  const h = m.properties.headers ?? {};
  const death = lastDeath(m);
  const reason = h[DEAD_LETTER_REASON_HEADER] as unknown;
  const dl: DeadLetter = {
    id: deadLetterIdOf(m),
    data: m.content,
    metadata: sentMetadataOf(m),
    deliveryCount: headerNumber(h[DELIVERY_COUNT_HEADER]) ?? 0,
    reason: typeof reason === 'string' && reason !== ''
      ? reason
      : death ? `RabbitMQ dead-lettered it from queue '${String(death.queue ?? '?')}': ${String(death.reason ?? 'no reason given')}` : 'dead-lettered (no reason recorded)',
  };
  const enqueuedAt = enqueuedAtOf(m);
  if (enqueuedAt !== undefined) dl.enqueuedAt = enqueuedAt;
  const deadAt = headerNumber(h[DEAD_LETTERED_AT_HEADER]) ?? amqpTimestampMs(death?.time);
  if (deadAt !== undefined) dl.deadLetteredAt = deadAt;
  return dl;
}

/**
 * A dead letter sent back to its queue as a fresh message: the same body, metadata headers and properties (message
 * id included), a new timestamp, and none of the bookkeeping (delivery count, reason, x-death), so the next
 * delivery is the first. It gets no per-message TTL: one counted from the first send may long have passed.
 */
export function requeueOptions(m: GetMessage): Options.Publish {
  const opts = republishOptions(m, {}, false);
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (!isBookkeeping(k)) headers[k] = v;
  return { ...opts, headers, timestamp: Math.floor(Date.now() / 1000), messageId: opts.messageId ?? randomUUID(), mandatory: true };
}

/** Which dead letters an operation takes: visit() says of each one read, done() ends the scan early. */
export interface Selection {
  visit(m: GetMessage): 'keep' | 'take';
  done(): boolean;
}

/** The dead letters named (the first one of each id; unknown ids are ignored), or every one. */
export function pick(ids: readonly string[] | 'all'): Selection {
  if (ids === 'all') return { visit: () => 'take', done: () => false };
  const wanted = new Set(ids);
  return { visit: (m) => (wanted.delete(deadLetterIdOf(m)) ? 'take' : 'keep'), done: () => wanted.size === 0 };
}
