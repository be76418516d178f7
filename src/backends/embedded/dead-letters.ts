/**
 * Dead-letter inspection and requeue by data folder and queue name, without a component: what a CLI command needs.
 */
import type { DeadLetter } from '../types.js';
import { QueueStore } from './store.js';

export function readDeadLetters(dataDir: string, queueName: string, limit: number): DeadLetter[] {
  const store = QueueStore.acquire(dataDir);
  try {
    return store.deadLetters(queueName, limit);
  } finally {
    store.unref();
  }
}

/** Moves up to limit dead letters (oldest first) back to the end of the queue with a fresh delivery count. */
export function requeueDeadLetters(dataDir: string, queueName: string, limit = Number.MAX_SAFE_INTEGER): number {
  const store = QueueStore.acquire(dataDir);
  try {
    return store.requeueDeadLetters(queueName, limit);
  } finally {
    store.unref();
  }
}
