/**
 * What the conformance files share: a backend opened per test on a fresh queue (closed and cleaned up after), and
 * receive loops that stop on a condition.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBackend } from '../../src/backends/registry.js';
import type { Backend, HandlerResult, QueueMessage } from '../../src/backends/types.js';
import { createLogger } from '../../src/util/log.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import { QUICK_BACKOFF, type Backoff, type ConformanceRow } from './table.js';

export const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-conformance-'));
export const logger = createLogger('conformance').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
/** Guards against a hang, never asserts speed. */
export const GIVE_UP_MS = 30_000;

export interface Opened {
  queue: string;
  open(): Promise<Backend>;
}

export async function setup(t: TestContext, row: ConformanceRow, maxDeliveryCount = 10, backoff: Backoff = QUICK_BACKOFF): Promise<Opened | undefined> {
  const skipReason = row.skipReason?.();
  if (skipReason) {
    t.skip(skipReason);
    return undefined;
  }
  if (row.needs && !(await needBroker(t, row.needs))) return undefined;
  const queue = uniqueName(`conf-${row.name}`);
  const opened: Backend[] = [];
  t.after(async () => {
    for (const b of opened) await b.close();
    await row.cleanup?.(queue);
  });
  return {
    queue,
    async open() {
      const b = createBackend(row.makeComponent(queue, { maxDeliveryCount, backoff }), { logger, dataDir }, { embedded: false });
      opened.push(b);
      await b.init();
      return b;
    },
  };
}

/** Runs receive() until stop() says so (checked after each handler call), then waits for the drain. */
export async function receiveUntil(
  b: Backend,
  handler: (m: QueueMessage) => Promise<HandlerResult>,
  stop: () => boolean,
  concurrency = 1,
): Promise<void> {
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS);
  try {
    await b.receive(async (m) => {
      try {
        return await handler(m);
      } finally {
        if (stop()) ac.abort();
      }
    }, { concurrency, signal: ac.signal });
  } finally {
    clearTimeout(giveUp);
  }
}

/** Receives for a short while and returns what came: used to show that nothing more is delivered. */
export async function receiveFor(b: Backend, ms: number): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  await b.receive(async (m) => (got.push(m), true), { concurrency: 4, signal: ac.signal });
  clearTimeout(timer);
  return got;
}

export async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

