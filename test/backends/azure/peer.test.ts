/**
 * The binding with the real @azure/service-bus SDK against the AMQP test peer — not Service Bus (Azure cannot be
 * reached from here; see amqp-peer.ts for what the peer does and does not do). Queue depth comes from the peer's
 * counts standing in for the management API. The same cases run against a real namespace in test/conformance when
 * QSCALE_TEST_SERVICEBUS_CONNECTION is set.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusBackend } from '../../../src/backends/azure/servicebus/backend.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { BrokerError } from '../../../src/errors.js';
import { createLogger } from '../../../src/util/log.js';
import { AmqpTestPeer, type PeerOptions } from './amqp-peer.js';
import { RecordingAdmin } from './peer-admin.js';
import { SECRET_KEY, seedComponent } from './support.js';

const logger = createLogger('servicebus-peer-test').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
/** Guards against a hang, never asserts speed. */
const GIVE_UP_MS = 20_000;
const NAME = 'servicebus via AMQP test peer (not Service Bus)';

interface Setup {
  peer: AmqpTestPeer;
  admin: RecordingAdmin;
  backend: ServiceBusBackend;
}

async function setup(t: TestContext, metadata: Record<string, string> = {}, peerOpts: PeerOptions = {}): Promise<Setup> {
  const peer = await AmqpTestPeer.start(peerOpts);
  const c = seedComponent({ disableEntityManagement: 'true', ...metadata }, peer.connectionString());
  const s = parseServiceBusComponent(c);
  const admin = new RecordingAdmin(peer);
  const messaging = new ServiceBusClient(s.connection.withoutEntityPath, { retryOptions: { maxRetries: 1, timeoutInMs: 5000 } });
  const backend = new ServiceBusBackend(c, s, { logger, dataDir: '/tmp' }, { messaging, admin });
  t.after(async () => {
    await backend.close();
    await peer.close();
  });
  await backend.init();
  return { peer, admin, backend };
}

/** Receives until stop() says so (checked after each handler call), then waits for the drain. */
async function receiveUntil(b: ServiceBusBackend, handler: (m: QueueMessage) => Promise<boolean>, stop: () => boolean, concurrency = 1): Promise<void> {
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

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(`${NAME} - init opens the connection and authorizes the queue with a $cbs token`, { timeout: 120_000 }, async (t) => {
  const { peer } = await setup(t);
  assert.ok(peer.stats.putTokens.some((a) => a === `sb://127.0.0.1:${peer.port}/msgqueue`), peer.stats.putTokens.join(', '));
});

test(`${NAME} - round trip: the app gets the producer's exact bytes and Dapr's binding headers`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t);
  const body = Buffer.from(JSON.stringify({ text: 'Hello World' }));
  await backend.send(body, { id: 'm-1', correlationID: 'c-1', Label: 'greeting', tenant: 'a b&c' });
  const stored = peer.queue('msgqueue').ready[0]?.message;
  assert.equal(stored?.message_id, 'm-1');
  assert.equal(stored?.correlation_id, 'c-1');
  assert.equal(stored?.subject, 'greeting');
  assert.deepEqual(stored?.application_properties, { tenant: 'a b&c' });
  let got: QueueMessage | undefined;
  await receiveUntil(backend, async (m) => ((got = m), true), () => got !== undefined);
  assert.ok(got);
  assert.deepEqual(got.data, body);
  assert.equal(got.id, 'm-1');
  assert.equal(got.deliveryCount, 1);
  assert.equal(got.metadata.id, 'm-1');
  assert.equal(got.metadata.correlationID, 'c-1');
  assert.equal(got.metadata.label, 'greeting');
  assert.equal(got.metadata.tenant, 'a+b%26c');
  assert.equal(got.metadata.DeliveryCount, '1');
  assert.equal(got.metadata.SequenceNumber, '1');
  assert.match(got.metadata.EnqueuedTimeUtc ?? '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
});

test(`${NAME} - a bare JSON string body keeps its quotes (no JSON decoding on the way)`, { timeout: 120_000 }, async (t) => {
  const { backend } = await setup(t);
  await backend.send(Buffer.from('"hello"'), {});
  let got: QueueMessage | undefined;
  await receiveUntil(backend, async (m) => ((got = m), true), () => got !== undefined);
  assert.equal(got?.data.toString(), '"hello"');
});

test(`${NAME} - handler true completes the message: gone from the queue, not delivered again`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t);
  await backend.send(Buffer.from('{"n":1}'), {});
  let n = 0;
  await receiveUntil(backend, async () => (n++, true), () => n === 1);
  assert.equal(peer.stats.completes, 1);
  assert.deepEqual(await backend.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
});

test(`${NAME} - handler false abandons: delivered again with a higher count, dead-lettered at the broker's MaxDeliveryCount`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { maxRetriableErrorsPerSec: '0' }, { maxDeliveryCount: 3 });
  await backend.send(Buffer.from('{"poison":true}'), { id: 'poison' });
  const counts: number[] = [];
  await receiveUntil(backend, async (m) => (counts.push(m.deliveryCount), false), () => peer.counts('msgqueue').deadLetter === 1);
  assert.deepEqual(counts, [1, 2, 3]);
  assert.equal(peer.stats.abandons, 3);
  assert.deepEqual(await backend.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
});

test(`${NAME} - a throwing handler counts as a failure: abandoned, not completed`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { maxRetriableErrorsPerSec: '0' });
  await backend.send(Buffer.from('{}'), {});
  let calls = 0;
  await receiveUntil(backend, async () => {
    calls++;
    if (calls === 1) throw new Error('app crashed');
    return true;
  }, () => calls === 2);
  assert.equal(peer.stats.abandons, 1);
  assert.equal(peer.stats.completes, 1);
});

test(`${NAME} - lock renewal every lockRenewalInSec keeps a slow handler's message: delivered once`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { lockRenewalInSec: '1' }, { lockDurationMs: 1500 });
  await backend.send(Buffer.from('{"slow":true}'), {});
  let deliveries = 0;
  await receiveUntil(backend, async () => {
    deliveries++;
    await sleep(3500);
    return true;
  }, () => true, 2);
  assert.equal(deliveries, 1);
  assert.ok(peer.stats.renewLocks >= 1, `renewals: ${peer.stats.renewLocks}`);
  assert.equal(peer.stats.lockExpiries, 0);
  assert.equal(peer.counts('msgqueue').active, 0);
});

test(`${NAME} - without lock renewal (lockRenewalInSec 0) the same slow handler loses its lock: delivered twice`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { lockRenewalInSec: '0' }, { lockDurationMs: 1500 });
  await backend.send(Buffer.from('{"slow":true}'), {});
  let deliveries = 0;
  await receiveUntil(backend, async () => {
    deliveries++;
    if (deliveries === 1) await sleep(3000);
    return true;
  }, () => deliveries === 2, 2);
  assert.equal(deliveries, 2);
  assert.equal(peer.stats.renewLocks, 0);
  assert.ok(peer.stats.lockExpiries >= 1);
});

test(`${NAME} - never more than maxActiveMessages locked at once, whatever the sidecar allows`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { maxActiveMessages: '2', maxConcurrentHandlers: '0' });
  for (let i = 0; i < 6; i++) await backend.send(Buffer.from(`{"i":${i}}`), {});
  let done = 0;
  let inHandler = 0;
  let maxInHandler = 0;
  let maxLocked = 0;
  await receiveUntil(backend, async () => {
    inHandler++;
    maxInHandler = Math.max(maxInHandler, inHandler);
    maxLocked = Math.max(maxLocked, peer.counts('msgqueue').locked);
    await sleep(100);
    maxLocked = Math.max(maxLocked, peer.counts('msgqueue').locked);
    inHandler--;
    done++;
    return true;
  }, () => done === 6, 10);
  assert.equal(done, 6);
  assert.equal(maxInHandler, 2);
  assert.ok(maxLocked <= 2, `locked at once: ${maxLocked}`);
});

test(`${NAME} - the seed's defaults handle messages one after the other`, { timeout: 120_000 }, async (t) => {
  const { backend } = await setup(t);
  for (let i = 0; i < 3; i++) await backend.send(Buffer.from(`{"i":${i}}`), {});
  let done = 0;
  let inHandler = 0;
  let maxInHandler = 0;
  await receiveUntil(backend, async () => {
    maxInHandler = Math.max(maxInHandler, ++inHandler);
    await sleep(50);
    inHandler--;
    return (done++, true);
  }, () => done === 3, 10);
  assert.equal(maxInHandler, 1);
});

test(`${NAME} - depth: ready is ActiveMessageCount minus this process's locked messages`, { timeout: 120_000 }, async (t) => {
  const { backend } = await setup(t);
  for (let i = 0; i < 3; i++) await backend.send(Buffer.from(`{"i":${i}}`), {});
  assert.deepEqual(await backend.depth(), { ready: 3, inFlight: 0, deadLettered: 0 });
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const ac = new AbortController();
  let handled = 0;
  const receiving = backend.receive(async () => {
    handled++;
    if (handled === 1) await held;
    return true;
  }, { concurrency: 1, signal: ac.signal });
  await until(() => handled === 1, 'first message in the handler');
  assert.deepEqual(await backend.depth(), { ready: 2, inFlight: 1, deadLettered: 0 });
  ac.abort();
  release();
  await receiving;
  assert.deepEqual(await backend.depth(), { ready: 2, inFlight: 0, deadLettered: 0 });
});

test(`${NAME} - aborting receive lets handlers in progress finish and completes them: nothing redelivered`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { maxActiveMessages: '2', maxConcurrentHandlers: '2' });
  for (let i = 0; i < 2; i++) await backend.send(Buffer.from(`{"i":${i}}`), {});
  const ac = new AbortController();
  let started = 0;
  let finished = 0;
  const receiving = backend.receive(async () => {
    started++;
    await sleep(300);
    finished++;
    return true;
  }, { concurrency: 2, signal: ac.signal });
  await until(() => started === 2, 'both messages in handlers');
  ac.abort();
  await receiving;
  assert.equal(finished, 2);
  assert.equal(peer.stats.completes, 2);
  assert.deepEqual(peer.counts('msgqueue'), { active: 0, deadLetter: 0, locked: 0 });
});

test(`${NAME} - handlerTimeoutInSec is daprd's pub/sub setting: a handler slower than it keeps its message, processed once`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t, { handlerTimeoutInSec: '1', maxRetriableErrorsPerSec: '0' });
  await backend.send(Buffer.from('{}'), {});
  let calls = 0;
  let finished = 0;
  await receiveUntil(backend, async () => {
    calls++;
    // Well past handlerTimeoutInSec: a binding that timed the handler out would have abandoned it by now.
    await sleep(2500);
    finished++;
    return true;
  }, () => finished === 1, 2);
  assert.equal(calls, 1, 'the app saw the message once');
  assert.equal(peer.stats.abandons, 0);
  assert.equal(peer.stats.completes, 1);
  assert.equal(peer.counts('msgqueue').active, 0);
});

test(`${NAME} - request TTLs as daprd reads them: ttl or ttlInSeconds, a Go duration or whole seconds; one it cannot read is dropped, and the message still sent`, { timeout: 120_000 }, async (t) => {
  const { peer, backend } = await setup(t);
  const cases: Array<[Record<string, string>, number | undefined]> = [
    [{ ttlInSeconds: '30s' }, 30_000],
    [{ ttl: '1m30s' }, 90_000],
    [{ ttlInSeconds: '45' }, 45_000],
    [{ ttl: '1500ms', ttlInSeconds: '99' }, 1500],
    // 0 and what Dapr cannot read: no TTL of the message's own (the queue's default applies).
    [{ ttlInSeconds: '0' }, undefined],
    [{ ttlInSeconds: 'soon' }, undefined],
  ];
  for (const [md] of cases) await backend.send(Buffer.from('{}'), md);
  const stored = peer.queue('msgqueue').ready.map((e) => ({ ttl: e.message.ttl, props: e.message.application_properties ?? {} }));
  assert.deepEqual(stored.map((m) => m.ttl), cases.map(([, ttl]) => ttl));
  // The TTL keys are read, never passed on as application properties.
  for (const m of stored) assert.deepEqual(Object.keys(m.props).filter((k) => /^ttl/i.test(k)), []);
});

test(`${NAME} - a failed message keeps its lock, renewed, for the redelivery backoff before it is abandoned; a drain abandons it at once`, { timeout: 60_000 }, async (t) => {
  const { peer, backend } = await setup(t, { retryBackoff: '30s', lockRenewalInSec: '1', maxRetriableErrorsPerSec: '0' }, { lockDurationMs: 1500 });
  await backend.send(Buffer.from('{"flaky":true}'), {});
  let calls = 0;
  let renewalsAtFailure = 0;
  const ac = new AbortController();
  const receiving = backend.receive(async () => {
    calls++;
    renewalsAtFailure = peer.stats.renewLocks;
    return false;
  }, { concurrency: 1, signal: ac.signal });
  await until(() => calls >= 1, 'the first delivery');
  // Two renewals after the failure: the backend has had every chance to abandon it, and still holds it.
  await until(() => peer.stats.renewLocks >= renewalsAtFailure + 2, 'lock renewals while the message waits');
  assert.equal(peer.stats.abandons, 0, 'not abandoned during the backoff');
  assert.equal(peer.stats.lockExpiries, 0);
  assert.deepEqual(peer.counts('msgqueue'), { active: 1, deadLetter: 0, locked: 1 });
  assert.equal(calls, 1);
  ac.abort();
  await receiving;
  assert.equal(peer.stats.abandons, 1, 'the drain gives it back at once');
  assert.deepEqual(peer.counts('msgqueue'), { active: 1, deadLetter: 0, locked: 0 });
});

test(`${NAME} - a namespace that went away: a send fails within timeoutInSec with an error naming the component and the address`, { timeout: 60_000 }, async (t) => {
  // (Depth here comes from the peer's in-process counts standing in for the management API: not part of the outage.)
  const { peer, backend } = await setup(t, { timeoutInSec: '2' });
  await backend.send(Buffer.from('{"before":true}'), {});
  const port = peer.port;
  await peer.close();
  const err = await backend.send(Buffer.from('{"during":true}'), {}).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, `the send failed with a BrokerError: ${String(err)}`);
  assert.match(err.message, new RegExp(`^component message-queue \\(bindings\\.azure\\.servicebusqueues\\): .*127\\.0\\.0\\.1:${port}`));
  assert.doesNotMatch(err.message, new RegExp(SECRET_KEY.slice(0, 12)));
});
