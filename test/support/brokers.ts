/**
 * Broker tests talk to the real servers on this machine. When one cannot be reached, the test fails under CI=true
 * (CI must start every broker) and skips with a visible reason elsewhere.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';

export async function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export const BROKER_PORTS = { rabbitmq: 5672, redis: 6379, postgresql: 5432, nats: 4222 } as const;
export type LocalBroker = keyof typeof BROKER_PORTS;

/**
 * Returns true when the broker is reachable. Otherwise: under CI=true throws (the run goes red); elsewhere marks the
 * test skipped with the reason and returns false.
 */
export async function needBroker(t: TestContext, broker: LocalBroker): Promise<boolean> {
  const port = BROKER_PORTS[broker];
  if (await portOpen(port)) return true;
  const reason = `${broker} is not reachable on 127.0.0.1:${port}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: every broker must be running)`);
  t.skip(`${reason}: start it to run this test`);
  return false;
}

/** A queue name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
