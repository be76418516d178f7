/**
 * The one redelivery policy of every backend: a message whose handler failed comes back after a wait that starts at
 * retryBackoff and doubles with each failed delivery up to retryBackoffMax; the delivery that reaches
 * maxDeliveryCount and fails moves it to the dead letters. A downstream blip of a few seconds is then ridden out
 * instead of burning every delivery at once. How each broker holds the message back is in its backend (and in
 * docs/backends.md).
 */
import type { MetadataContext } from '../components/metadata.js';
import { ConfigError } from '../errors.js';

/** Declared by every queue binding, so the names, defaults and parsing are the same whatever the broker. */
export const redeliveryFields = [
  { name: 'retryBackoff', type: 'duration', default: '1s', binding: 'input',
    description: 'Wait before a failed message is delivered again; doubles with each failed delivery. 0s: at once.' },
  { name: 'retryBackoffMax', type: 'duration', default: '30s', binding: 'input',
    description: 'Upper bound of the doubling retryBackoff.' },
] as const;

export interface RedeliveryPolicy {
  /** Wait after the first failed delivery; 0 = redeliver at once. */
  firstMs: number;
  maxMs: number;
}

export const DEFAULT_REDELIVERY: RedeliveryPolicy = { firstMs: 1000, maxMs: 30_000 };

/** The policy from a binding's parsed metadata; a maximum below the first wait is refused with file:line. */
export function redeliveryPolicy(m: { retryBackoff: number; retryBackoffMax: number }, ctx: MetadataContext): RedeliveryPolicy {
  if (m.retryBackoff > 0 && m.retryBackoffMax < m.retryBackoff) {
    throw new ConfigError(
      `${ctx.subject}: retryBackoffMax (${m.retryBackoffMax} ms) is below retryBackoff (${m.retryBackoff} ms)`,
      { ...ctx.where('retryBackoffMax'), field: 'retryBackoffMax' },
    );
  }
  return { firstMs: m.retryBackoff, maxMs: m.retryBackoffMax };
}

/** The wait before the next delivery of a message whose delivery number `failedDelivery` (1 = first) failed. */
export function redeliveryDelayMs(p: RedeliveryPolicy, failedDelivery: number): number {
  if (p.firstMs <= 0) return 0;
  return Math.min(p.maxMs, p.firstMs * 2 ** Math.min(30, Math.max(0, failedDelivery - 1)));
}

/** Every distinct wait a message can meet before it is dead-lettered, shortest first (RabbitMQ's retry queues). */
export function redeliveryDelays(p: RedeliveryPolicy, maxDeliveryCount: number): number[] {
  const out = new Set<number>();
  for (let n = 1; n < maxDeliveryCount; n++) {
    const d = redeliveryDelayMs(p, n);
    if (d > 0) out.add(d);
    if (d >= p.maxMs) break;
  }
  return [...out].sort((a, b) => a - b);
}
