/**
 * The server goes away while a message's outcome is being recorded (the handler answered, the DELETE cannot reach
 * PostgreSQL). The receive loop runs no claim meanwhile, so the outcome's retries are what tells the user: the outage is
 * reported at once, and once the server is back the outcome lands — the message is processed once, not redelivered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { startProxy } from '../proxy.js';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import { component, ctx, dropQueue, tableName } from './support.js';

test('postgresql backend - an outage while an outcome is recorded is reported at once, and the outcome lands when the server is back', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'postgresql'))) return;
  const proxy = await startProxy(5432);
  const table = tableName();
  const b = new PostgresBackend(component({
    connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, queueName: uniqueName('q'), table, pollInterval: '300ms',
  }), ctx());
  t.after(async () => {
    await proxy.setMode('relay');
    await b.close();
    await proxy.close();
    await dropQueue(table);
  });
  await b.init();
  await b.send(Buffer.from('"only"'), {});
  const states: string[] = [];
  let deliveries = 0;
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), 90_000);
  let recovered!: () => void;
  const back = new Promise<void>((r) => (recovered = r));
  const receiving = b.receive(async () => {
    deliveries++;
    await proxy.setMode('refuse'); // the server goes away while the app works; its answer must still be recorded
    return true;
  }, {
    concurrency: 1,
    signal: ac.signal,
    onBrokerState: (err) => {
      states.push(err === undefined ? 'working' : 'lost');
      if (err !== undefined && states.filter((s) => s === 'lost').length === 1) void proxy.setMode('relay');
      if (err === undefined) recovered();
    },
  });
  await back;
  for (let i = 0; i < 100 && (await b.depth().catch(() => ({ ready: 1, inFlight: 1, deadLettered: 0 }))).inFlight + (await b.depth()).ready > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  ac.abort();
  clearTimeout(giveUp);
  await receiving;
  assert.equal(states[0], 'lost', 'the outage was reported');
  assert.ok(states.includes('working'), 'and the recovery');
  assert.equal(deliveries, 1, 'the answer was recorded once the server was back: not delivered again');
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});
