/**
 * Broker client libraries are loaded only when a component of that type is used: a sidecar serving the embedded
 * queue never pays for @azure/service-bus, amqplib, pg, ioredis or nats (start-up time is scale-from-zero time,
 * and memory is per replica).
 */
import type { Backend, MessageHandler, MessageMetadata, QueueDepth, ReceiveOptions } from './types.js';
import type { MetricAndActivity, MetricType, Scaler } from '../autoscaler/scaler.js';

/** A Backend whose implementation module is imported on init(). */
export function lazyBackend(name: string, type: string, load: () => Promise<Backend>): Backend {
  let real: Backend | undefined;
  let loading: Promise<Backend> | undefined;
  const get = (): Promise<Backend> => (loading ??= load().then((b) => (real = b)));
  const ready = (): Backend => {
    if (!real) throw new Error(`component ${name} (${type}) used before init()`);
    return real;
  };
  return {
    name,
    type,
    async init() {
      await (await get()).init();
    },
    send: (data: Buffer, metadata: MessageMetadata) => ready().send(data, metadata),
    receive: (handler: MessageHandler, options: ReceiveOptions) => ready().receive(handler, options),
    depth: (): Promise<QueueDepth> => ready().depth(),
    async close() {
      if (loading) await (await loading).close();
    },
    // Optional features pass through when the real backend has them.
    ...({
      ping: async () => {
        const b = ready() as Backend & { ping?: () => Promise<void> };
        if (b.ping) await b.ping();
      },
    } as object),
  };
}

/** A Scaler whose implementation module is imported on first use; its targets are known up front. */
export function lazyScaler(
  info: { metricName: string; metricType: MetricType; target: number; activationTarget: number; describes: string },
  load: () => Promise<Scaler>,
): Scaler {
  let loading: Promise<Scaler> | undefined;
  const get = (): Promise<Scaler> => (loading ??= load());
  return {
    ...info,
    metricAndActivity: async (): Promise<MetricAndActivity> => (await get()).metricAndActivity(),
    async close() {
      if (loading) await (await loading).close();
    },
  };
}
