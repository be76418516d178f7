/**
 * The embedded queue as a KEDA trigger: the metric is ready + in-flight messages of one queue (what Service Bus
 * reports as its active message count), so work still in a handler keeps its replica.
 * watchArrivals lets the autoscaler activate from zero the moment a message lands, instead of a pollingInterval later.
 */
import type { MetricAndActivity, QueueTriggerParams, Scaler } from '../../autoscaler/scaler.js';
import { TriggerClosedError, boundedRead } from '../trigger-support.js';
import { QueueStore } from './store.js';

/** While a queue holds messages, re-check at most this often whether it emptied (counting on every change is waste). */
const NON_EMPTY_RECHECK_MS = 50;

/**
 * Calls onArrival when a message lands on queueName while it was empty (no message ready or in flight), within a few
 * milliseconds of the send, from this process or any other. Returns the unsubscribe function.
 */
export function watchArrivals(dataDir: string, queueName: string, onArrival: () => void): () => void {
  const store = QueueStore.acquire(dataDir);
  let nonEmpty = false;
  let recheck: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let done = false;
  // While the queue holds messages only the step back to empty matters: a slow timer sees it, instead of a query on
  // every change of a busy file. While empty, every change to the file is checked at once.
  const check = (): void => {
    if (done) return;
    const baseline = store.dataVersion();
    let has: boolean;
    try {
      has = store.hasAny(queueName);
    } catch {
      has = nonEmpty; // a busy file: the timer or the next change looks again
    }
    const arrived = has && !nonEmpty;
    nonEmpty = has;
    if (nonEmpty) {
      unsubscribe?.();
      unsubscribe = undefined;
      recheck ??= setInterval(check, NON_EMPTY_RECHECK_MS);
    } else {
      if (recheck) clearInterval(recheck);
      recheck = undefined;
      unsubscribe ??= store.onChange(check, baseline);
    }
    if (arrived) onArrival();
  };
  const baseline = store.dataVersion();
  nonEmpty = store.hasAny(queueName);
  if (nonEmpty) recheck = setInterval(check, NON_EMPTY_RECHECK_MS);
  else unsubscribe = store.onChange(check, baseline);
  return () => {
    if (done) return;
    done = true;
    if (recheck) clearInterval(recheck);
    unsubscribe?.();
    store.unref();
  };
}

export function createEmbeddedScaler(
  dataDir: string,
  params: QueueTriggerParams,
  triggerType: string,
  index = 0,
  subject = `trigger ${index} (${triggerType})`,
): Scaler {
  const store = QueueStore.acquire(dataDir);
  const unwatch = new Set<() => void>();
  let closed = false;
  return {
    metricName: `s${index}-${triggerType}-${params.queueName}`.replace(/[^A-Za-z0-9-]/g, '-'),
    metricType: 'AverageValue',
    target: params.target,
    activationTarget: params.activationTarget,
    describes: `ready + in flight messages of queue ${params.queueName} (embedded queue ${store.file})`,
    async metricAndActivity(): Promise<MetricAndActivity> {
      // After close() the store may be closed under this scaler: say so rather than read a closed file.
      if (closed) throw new TriggerClosedError(subject);
      const d = await boundedRead(async () => store.depth(params.queueName), {
        subject,
        what: `queue '${params.queueName}'`,
        where: `the embedded queue ${store.file}`,
      });
      const value = d.ready + d.inFlight;
      return { value, active: value > params.activationTarget };
    },
    watchArrivals(onArrival) {
      const stop = watchArrivals(dataDir, params.queueName, onArrival);
      unwatch.add(stop);
      return () => {
        unwatch.delete(stop);
        stop();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const stop of unwatch) stop();
      unwatch.clear();
      store.unref();
    },
  };
}
