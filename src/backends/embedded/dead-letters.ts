/**
 * Dead letters read by data folder and queue name, without a component (tests of a sidecar's queue use it). Requeue
 * and purge go through the backend (EmbeddedBackend implements DeadLetterReader).
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
