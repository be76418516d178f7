/**
 * Broker client libraries load the first time a component of that broker is used, not when qscale starts: a
 * sidecar serving the embedded queue never pays for @azure/service-bus, ioredis, pg, amqplib or nats. Start-up time
 * is scale-from-zero time, and memory is per replica. (Every one of them ships CommonJS, so a synchronous require
 * keeps constructors synchronous.)
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function lazyModule<T>(name: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= load(name) as T);
}
