/**
 * Acks of handlers answering in one event-loop turn go out together: each is still confirmed by JetStream before
 * receive lets go of its message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatsBackend } from '../../../src/backends/nats/backend.js';
import { needBroker } from '../../support/brokers.js';
import { component, ctx, deleteNatsStreams, LOCAL_NATS, streamName } from './support.js';

test('nats backend - handlers answering together: every ack is confirmed by the time receive returns, none comes again', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: LOCAL_NATS, stream, retryBackoff: '0s' }), ctx());
  await b.init();
  t.after(async () => {
    await b.close();
    await deleteNatsStreams(stream).catch(() => undefined);
  });
  for (let n = 0; n < 8; n++) await b.send(Buffer.from(String(n)), {});
  const seen: Array<{ n: number; count: number }> = [];
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const ac = new AbortController();
  const done = new Set<number>();
  const give = setTimeout(() => (openGate(), ac.abort()), 60_000);
  await b.receive(async (m) => {
    const n = Number(m.data.toString());
    seen.push({ n, count: m.deliveryCount });
    // The first eight deliveries answer in one turn once all are in hand; the odd ones fail once.
    if (seen.length === 8) setImmediate(openGate);
    await gate;
    const ok = n % 2 === 0 || m.deliveryCount > 1;
    if (ok) done.add(n);
    if (done.size === 8) ac.abort();
    return ok;
  }, { concurrency: 8, signal: ac.signal });
  clearTimeout(give);
  assert.equal(done.size, 8, 'every message handled');
  assert.deepEqual(seen.filter((s) => s.count > 1).map((s) => s.n).sort(), [1, 3, 5, 7], 'only the failed ones came again');
  // Confirmed acks: JetStream holds nothing more, at once.
  assert.deepEqual(await b.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});
