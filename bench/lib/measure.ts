/**
 * The measuring pieces every broker benchmark shares: a rate over n operations, n operations with a fixed number in
 * flight, and draining n messages through a qscale backend's receive().
 */
import type { Backend } from '../../src/backends/types.js';

export async function rate(n: number, fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return n / ((performance.now() - t0) / 1000);
}

export async function inFlight(n: number, width: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await one(next++);
  }));
}

export async function backendDrain(b: Backend, n: number): Promise<number> {
  const ac = new AbortController();
  let seen = 0;
  let run: Promise<void> = Promise.resolve();
  const r = await rate(n, () => new Promise<void>((resolve) => {
    run = b.receive(async () => {
      if (++seen === n) {
        resolve();
        ac.abort();
      }
      return true;
    }, { concurrency: 16, signal: ac.signal });
  }));
  await run;
  return r;
}
