/**
 * Service Bus dead letters as qscale writes and reads them. The binding dead-letters a message itself on the
 * delivery that reaches the queue's MaxDeliveryCount (deadLetterMessage, with the handler's answer as the
 * description) instead of abandoning it for the broker to dead-letter with its own words. The dead-letter subqueue
 * ($DeadLetterQueue) is read with peek (list, show: nothing moves) and, to requeue or purge, with receive.
 * A dead letter is named by its sequence number in the subqueue, which Service Bus keeps for as long as it stays.
 */
import { randomUUID } from 'node:crypto';
import type { ServiceBusMessage, ServiceBusReceivedMessage } from '@azure/service-bus';
import type { DeadLetter, MessageMetadata } from '../../types.js';
import { bodyBytes, requestFieldsOf } from './message.js';

/** Service Bus refuses a dead-letter reason or description longer than this (the .NET SDK checks it up front). */
export const MAX_DEAD_LETTER_TEXT = 4096;
/** The reason Service Bus itself gives a message it dead-letters for its delivery count: the same words here. */
export const MAX_DELIVERY_REASON = 'MaxDeliveryCountExceeded';
/**
 * Application properties set with the dead-lettering (Service Bus records no time of its own for it, and a receive
 * of the subqueue adds to the message's delivery count): when, and after how many deliveries.
 */
export const DEAD_LETTERED_AT_PROPERTY = 'x-qscale-dead-lettered-at';
export const DELIVERY_COUNT_PROPERTY = 'x-qscale-delivery-count';
/** What Service Bus puts in the properties of a dead letter: not the sender's metadata. */
const DEAD_LETTER_PROPERTIES = new Set(['DeadLetterReason', 'DeadLetterErrorDescription', DEAD_LETTERED_AT_PROPERTY, DELIVERY_COUNT_PROPERTY]);

export type DeadLetterSettlement = {
  deadLetterReason: string;
  deadLetterErrorDescription: string;
} & Record<string, number | string | Date>;

function clip(text: string): string {
  return text.length > MAX_DEAD_LETTER_TEXT ? `${text.slice(0, MAX_DEAD_LETTER_TEXT - 1)}…` : text;
}

/** What deadLetterMessage() is given on the last delivery: why, the handler's answer (cut to the service's limit), when. */
export function deadLetterSettlement(deliveryCount: number, maxDeliveryCount: number, lastFailure: string, now = Date.now()): DeadLetterSettlement {
  return {
    deadLetterReason: MAX_DELIVERY_REASON,
    deadLetterErrorDescription: clip(`failed on delivery ${deliveryCount} of ${maxDeliveryCount}: ${lastFailure}`),
    // A timestamp, Service Bus's own type for times in properties.
    [DEAD_LETTERED_AT_PROPERTY]: new Date(now),
    [DELIVERY_COUNT_PROPERTY]: deliveryCount,
  };
}

/** The dead letter's name: its sequence number. */
export function deadLetterIdOf(m: ServiceBusReceivedMessage): string {
  return m.sequenceNumber === undefined ? String(m.messageId ?? '') : m.sequenceNumber.toString();
}

function numberProperty(m: ServiceBusReceivedMessage, key: string): number | undefined {
  const v = m.applicationProperties?.[key] as unknown;
  const n = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

export function deadLetteredAtOf(m: ServiceBusReceivedMessage): number | undefined {
  return numberProperty(m, DEAD_LETTERED_AT_PROPERTY);
}

/**
 * The metadata as the producer's request gave it (what toServiceBusMessage reads back): the broker fields a request
 * can set, under the keys Dapr reads, and the string application properties, keys as sent.
 */
export function sentMetadataOf(m: ServiceBusReceivedMessage): MessageMetadata {
  const out: MessageMetadata = {};
  for (const [k, v] of Object.entries(m.applicationProperties ?? {})) {
    if (typeof v === 'string' && !DEAD_LETTER_PROPERTIES.has(k)) out[k] = v;
  }
  for (const [k, v] of requestFieldsOf(m)) if (v !== undefined && v !== null && v !== '') out[k] = String(v);
  return out;
}

/** A peeked dead letter. Peek reports the delivery count as it stands (a received message reports one less). */
export function toDeadLetter(m: ServiceBusReceivedMessage): DeadLetter {
  const dl: DeadLetter = {
    id: deadLetterIdOf(m),
    data: bodyBytes(m),
    metadata: sentMetadataOf(m),
    deliveryCount: numberProperty(m, DELIVERY_COUNT_PROPERTY) ?? m.deliveryCount ?? 0,
    reason: [m.deadLetterReason, m.deadLetterErrorDescription].filter((s) => typeof s === 'string' && s !== '').join(': ') ||
      'dead-lettered (no reason recorded)',
  };
  if (m.enqueuedTimeUtc) dl.enqueuedAt = m.enqueuedTimeUtc.getTime();
  const deadAt = deadLetteredAtOf(m);
  if (deadAt !== undefined) dl.deadLetteredAt = deadAt;
  return dl;
}

/**
 * A dead letter sent again as a fresh message: body, broker fields and application properties as sent, without
 * what dead-lettering added. It gets the queue's default time to live (one counted from the first send may long have
 * passed) and, unless the queue is known not to detect duplicates, a new MessageId: duplicate detection would
 * otherwise drop it as a copy of the message it is, and the dead letter would be gone with it.
 */
export function requeueMessage(m: ServiceBusReceivedMessage, keepMessageId: boolean): ServiceBusMessage {
  const applicationProperties: Record<string, number | boolean | string | Date | null> = {};
  for (const [k, v] of Object.entries(m.applicationProperties ?? {})) {
    if (!DEAD_LETTER_PROPERTIES.has(k)) applicationProperties[k] = v;
  }
  const out: ServiceBusMessage = { body: bodyBytes(m), applicationProperties };
  out.messageId = keepMessageId && m.messageId !== undefined ? m.messageId : randomUUID();
  if (m.correlationId !== undefined) out.correlationId = m.correlationId;
  if (m.sessionId !== undefined) out.sessionId = m.sessionId;
  if (m.subject !== undefined) out.subject = m.subject;
  if (m.replyTo !== undefined) out.replyTo = m.replyTo;
  if (m.to !== undefined) out.to = m.to;
  if (m.partitionKey !== undefined) out.partitionKey = m.partitionKey;
  if (m.contentType !== undefined) out.contentType = m.contentType;
  return out;
}
