/**
 * What the embedded queue's tests share: a backend on a data folder, and receive loops any queue test can use (the
 * PostgreSQL tests use them too).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedBackend, parseEmbeddedComponent, type SettledOutcome } from '../../../src/backends/embedded/index.js';
import type { Backend, HandlerResult, QueueMessage } from '../../../src/backends/types.js';
import { createLogger } from '../../../src/util/log.js';
import { componentFromYaml } from '../../conformance/component.js';

export const logger = createLogger('embedded-test').child({}, { level: 'silent' });
/** Guards against a hang, never asserts speed. */
export const GIVE_UP_MS = 30_000;

export const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-embedded-'));

/** A backend on queue of dataDir (no redelivery backoff unless metadata sets one); outcomes collects what it settled. */
export function open(dataDir: string, queue: string, metadata: Record<string, string> = {}, outcomes?: SettledOutcome[]): EmbeddedBackend {
  const c = componentFromYaml(queue, 'bindings.qscale.embedded', { queueName: queue, retryBackoff: '0s', ...metadata });
  return new EmbeddedBackend(c, parseEmbeddedComponent(c), { logger, dataDir }, { onSettled: (_m, o) => outcomes?.push(o) });
}

/** Receives for ms and returns what came, in the order handlers were called. */
export async function receiveFor(
  b: Backend,
  ms: number,
  handler: (m: QueueMessage) => Promise<HandlerResult> = async () => true,
  concurrency = 4,
): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  await b.receive(async (m) => (got.push(m), handler(m)), { concurrency, signal: ac.signal });
  clearTimeout(timer);
  return got;
}

export async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A receiver (one handler at a time) whose handler holds the first message it gets until stop(), then acks it and
 * stops. Call stop() in a finally: a failed assertion must not leave the handler waiting.
 */
export function holdOne(b: Backend): { seen: string[]; stop(): Promise<void> } {
  const ac = new AbortController();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const seen: string[] = [];
  const receiving = b.receive(async (m) => (seen.push(m.data.toString()), await held, ac.abort(), true), { concurrency: 1, signal: ac.signal });
  return { seen, stop: async () => (release(), await receiving) };
}
