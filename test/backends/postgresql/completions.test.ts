/**
 * Completions of one event-loop turn go out as one DELETE, each row still guarded by its own lease token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { needBroker } from '../../support/brokers.js';
import pino from 'pino';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import { uniqueName } from '../../support/brokers.js';
import { component, dropQueue, open, PG_URL } from './support.js';

async function sql(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

test('postgresql completions - answers of one turn complete together; a row whose lease another receiver took stays', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b, table } = await open(t);
  for (const word of ['a', 'b', 'taken', 'c']) await b.send(Buffer.from(JSON.stringify(word)), {});
  const ac = new AbortController();
  let started = 0;
  let answer!: () => void;
  const gate = new Promise<void>((r) => (answer = r));
  let allStarted!: () => void;
  const allStartedP = new Promise<void>((r) => (allStarted = r));
  const run = b.receive(async () => {
    if (++started === 4) allStarted();
    await gate;
    return true;
  }, { concurrency: 4, signal: ac.signal });
  await allStartedP;
  // Another receiver holds 'taken' now (its lease ran out here and was claimed again under a new token).
  await sql(`UPDATE public."${table}" SET lease_token = '00000000-0000-4000-8000-000000000001', lease_until = now() + interval '1 hour'
             WHERE data = convert_to('"taken"', 'UTF8')`);
  ac.abort();
  answer(); // all four answer in the same turn
  await run;
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 1, deadLettered: 0 }, "only the row under the other receiver's lease is left");
});

test('postgresql completions - mixed outcomes at 16 in flight: each message succeeds exactly once, none stays behind', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const { b } = await open(t, { retryBackoff: '0s', pollInterval: '100ms' });
  const N = 300;
  for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => b.send(Buffer.from(String(i + k)), {})));
  const ac = new AbortController();
  const succeeded = new Map<number, number>();
  let failedOnce = 0;
  const run = b.receive(async (m) => {
    const i = Number(m.data.toString());
    if (i % 5 === 0) await new Promise((r) => setTimeout(r, i % 3));
    if (i % 7 === 0 && m.deliveryCount === 1) {
      failedOnce++;
      return false;
    }
    succeeded.set(i, (succeeded.get(i) ?? 0) + 1);
    if (succeeded.size === N) ac.abort();
    return true;
  }, { concurrency: 16, signal: ac.signal });
  const giveUp = setTimeout(() => ac.abort(), 100_000);
  await run;
  clearTimeout(giveUp);
  assert.equal(succeeded.size, N, 'every message succeeded');
  assert.deepEqual([...succeeded].filter(([, n]) => n !== 1), [], 'no message was delivered again after it succeeded');
  assert.equal(failedOnce, Math.ceil(N / 7));
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

/**
 * A completion that deletes nothing: the receiver warns that the message may come again only if it is still in the
 * queue (its lease was taken); a message already gone — as when a completion retried through a dropped connection
 * finds its own first attempt went through — is done, and nothing is printed.
 */
for (const { what, change, warned, left } of [
  { what: 'its lease taken by another receiver: one warning, the message stays', change: "UPDATE %T SET lease_token = '00000000-0000-4000-8000-000000000002', lease_until = now() + interval '1 hour'", warned: 1, left: 1 },
  { what: 'already deleted (a first attempt that landed): no warning', change: 'DELETE FROM %T', warned: 0, left: 0 },
]) {
  test(`postgresql completions - a completion that deletes nothing, the message ${what}`, { timeout: 60_000 }, async (t) => {
    if (!(await needBroker(t, 'postgresql'))) return;
    const table = `qscale_c${uniqueName('').replace(/[^a-z0-9]/gi, '').slice(-12).toLowerCase()}`;
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const b = new PostgresBackend(component({ connectionString: PG_URL, queueName: uniqueName('q'), table }), { logger, dataDir: '.qscale' });
    t.after(async () => {
      await b.close();
      await dropQueue(table);
    });
    await b.init();
    await b.send(Buffer.from('"one"'), {});
    const ac = new AbortController();
    let handled = 0;
    const run = b.receive(async () => {
      handled++;
      await sql(`${change.replace('%T', `public."${table}"`)} WHERE data = convert_to('"one"', 'UTF8')`);
      ac.abort();
      return true;
    }, { concurrency: 1, signal: ac.signal });
    await run;
    assert.equal(handled, 1);
    const warnings = lines.filter((l) => l.level >= 40 && /lease had expired/.test(l.msg));
    assert.equal(warnings.length, warned, lines.map((l) => `${l.level} ${l.msg}`).join('\n'));
    const d = await b.depth();
    assert.equal(d.ready + d.inFlight, left);
  });
}
