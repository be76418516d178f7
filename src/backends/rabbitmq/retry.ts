/**
 * Redelivery backoff on RabbitMQ, which has no per-message delay of its own: one retry queue per wait of the policy
 * (`<queue>-retry-1000ms`, `-2000ms`, ... up to retryBackoffMax), each with that wait as its x-message-ttl and the
 * default exchange + the work queue as its dead-letter target. A failed message is published (confirmed) to the queue
 * of its wait, then acked: when the wait is over RabbitMQ moves it back to the tail of the work queue, delivery count
 * in its header. One TTL per queue keeps every retry queue first-in first-out, so no message waits behind a longer
 * one, and nothing is held in qscale's memory: a restart of qscale or of the broker (durable queues) loses no wait.
 */
import type { Options } from 'amqplib';

export function retryQueueName(queue: string, delayMs: number): string {
  return `${queue}-retry-${Math.round(delayMs)}ms`;
}

export function retryQueueOptions(queue: string, delayMs: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-message-ttl': Math.round(delayMs),
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': queue,
    },
  };
}

/** Headers RabbitMQ adds when it dead-letters a message: not carried into the next publish. */
export function withoutDeathHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k === 'x-death' || k.startsWith('x-first-death-') || k.startsWith('x-last-death-')) continue;
    out[k] = v;
  }
  return out;
}
