/**
 * Service Bus dead letters, browsed and replayed through the real @azure/service-bus SDK. Azure cannot be reached
 * from this machine: the SDK talks to the AMQP test peer (amqp-peer.ts: its reading of Service Bus's dead-letter
 * subqueue, peek and settlement, not Service Bus) and the management API is a recording stand-in. What only a real
 * namespace shows (its limits, its own dead-letter bookkeeping) runs in test/conformance/dead-letters.test.ts when
 * QSCALE_TEST_SERVICEBUS_CONNECTION is set.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { ServiceBusBackend, defaultClients } from '../../../src/backends/azure/servicebus/backend.js';
import {
  DEAD_LETTERED_AT_PROPERTY, DELIVERY_COUNT_PROPERTY, MAX_DEAD_LETTER_TEXT, deadLetterSettlement, requeueMessage, sentMetadataOf,
} from '../../../src/backends/azure/servicebus/dead-letters.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import { serviceBusBackend } from '../../../src/backends/azure/servicebus/index.js';
import { failed, hasDeadLetters, isPurgeable, type DeadLetter, type QueueMessage } from '../../../src/backends/types.js';
import { BrokerError } from '../../../src/errors.js';
import { createLogger } from '../../../src/util/log.js';
import { AmqpTestPeer, type PeerOptions } from './amqp-peer.js';
import { RecordingAdmin } from './peer-admin.js';
import { SECRET_KEY, seedComponent } from './support.js';
import { closedPort } from '../closed-port.js';
import { receiveUntil, until } from '../../conformance/harness.js';

const logger = createLogger('servicebus-dlq-test').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
const NAME = 'servicebus dead letters via AMQP test peer (not Service Bus)';
const ANSWER = 'app answered 500: {"error":"cannot take it"}';

interface Setup {
  peer: AmqpTestPeer;
  admin: RecordingAdmin;
  b: ServiceBusBackend;
}

/**
 * The binding on the peer. `queue`: what the stand-in management API says of the existing queue (its
 * MaxDeliveryCount, duplicate detection); 'no management API': the emulator's case, the binding knows nothing.
 */
async function setup(
  t: TestContext, metadata: Record<string, string> = {}, queue: { maxDeliveryCount: number; requiresDuplicateDetection: boolean } | 'no management API' = { maxDeliveryCount: 2, requiresDuplicateDetection: false },
  peerOpts: PeerOptions = {},
): Promise<Setup> {
  const peer = await AmqpTestPeer.start(peerOpts);
  const c = seedComponent({ maxRetriableErrorsPerSec: '0', retryBackoff: '0s', ...metadata }, peer.connectionString());
  const s = parseServiceBusComponent(c);
  const admin = new RecordingAdmin(peer);
  if (queue !== 'no management API') {
    admin.existing.add('msgqueue');
    admin.facts = queue;
  }
  const messaging = new ServiceBusClient(s.connection.withoutEntityPath, { retryOptions: { maxRetries: 1, timeoutInMs: 5000 } });
  const b = new ServiceBusBackend(c, s, { logger, dataDir: '/tmp' }, { messaging, admin: queue === 'no management API' ? undefined : admin });
  t.after(async () => {
    await b.close();
    await peer.close();
  });
  await b.init();
  assert.ok(hasDeadLetters(b) && isPurgeable(b));
  return { peer, admin, b };
}

/** The body the peer stored: a data section, as the SDK sends bytes. */
function bodyText(m: { body?: unknown } | undefined): string {
  const b = m?.body as { content?: unknown } | Buffer | undefined;
  return Buffer.isBuffer(b) ? b.toString() : Buffer.from((b?.content ?? []) as Buffer).toString();
}

/** Sends the bodies and fails each of their `deliveries` deliveries with the app's answer: then they are dead letters. */
async function poison(s: Setup, bodies: string[], deliveries: number, metadata: Record<string, string> = {}): Promise<QueueMessage[]> {
  const seen: QueueMessage[] = [];
  const before = s.peer.counts('msgqueue').deadLetter;
  for (const body of bodies) await s.b.send(Buffer.from(body), metadata);
  await receiveUntil(s.b, async (m) => (seen.push(m), failed(ANSWER)), () => seen.length === bodies.length * deliveries);
  await until(() => s.peer.counts('msgqueue').deadLetter === before + bodies.length, `${bodies.length} dead letters`);
  return seen;
}

test(`${NAME} - the delivery that reaches the queue's MaxDeliveryCount dead-letters the message with the app's answer`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t, {}, { maxDeliveryCount: 2, requiresDuplicateDetection: false }, { maxDeliveryCount: 10 });
  const before = Date.now();
  const seen = await poison(s, ['{"order":7}'], 2, { kind: 'poison', 'x-trace': 'trace-7', MessageId: 'order-7' });
  assert.deepEqual(seen.map((m) => m.deliveryCount), [1, 2], 'dead-lettered by qscale at the queue\'s count (2), not by the broker at its own (10)');
  assert.equal(typeof seen[0]?.enqueuedAt, 'number', 'the app\'s message carries its enqueue time');
  assert.equal(s.peer.stats.abandons, 1);
  const [info, ...more] = s.peer.stats.deadLetterings;
  assert.deepEqual(more, []);
  assert.equal(info?.DeadLetterReason, 'MaxDeliveryCountExceeded');
  assert.equal(info?.DeadLetterErrorDescription, `failed on delivery 2 of 2: ${ANSWER}`);
  assert.equal(info?.[DELIVERY_COUNT_PROPERTY], 2);
  assert.ok(info?.[DEAD_LETTERED_AT_PROPERTY] instanceof Date, 'the time, as an AMQP timestamp');

  const [dead, ...others] = await s.b.deadLetters(10);
  assert.deepEqual(others, []);
  assert.ok(dead);
  assert.equal(dead.id, '1', 'named by its sequence number');
  assert.equal(dead.data.toString(), '{"order":7}');
  assert.deepEqual(dead.metadata, { kind: 'poison', 'x-trace': 'trace-7', MessageId: 'order-7' });
  assert.equal(dead.deliveryCount, 2);
  assert.equal(dead.reason, `MaxDeliveryCountExceeded: failed on delivery 2 of 2: ${ANSWER}`);
  assert.ok((dead.enqueuedAt ?? 0) >= before - 1000 && (dead.enqueuedAt ?? 0) <= Date.now());
  assert.ok((dead.deadLetteredAt ?? 0) >= (dead.enqueuedAt ?? 0) && (dead.deadLetteredAt ?? 0) <= Date.now());
  assert.deepEqual(await s.b.deadLetter('1'), dead);
  assert.equal(await s.b.deadLetter('2'), undefined, 'no dead letter with that sequence number');
  assert.equal(await s.b.deadLetter('1-no-such'), undefined, 'not a sequence number');
  assert.ok(s.peer.stats.peeks >= 3, 'read by peek');
  assert.deepEqual(s.peer.counts('msgqueue'), { active: 0, deadLetter: 1, locked: 0 }, 'browsing moves nothing');
  assert.deepEqual(await s.b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
});

test(`${NAME} - a throwing handler's error is the dead letter's description`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t);
  await s.b.send(Buffer.from('"boom"'), {});
  let calls = 0;
  await receiveUntil(s.b, async () => {
    calls++;
    throw new Error('connect ECONNREFUSED 127.0.0.1:3000');
  }, () => calls === 2);
  await until(() => s.peer.counts('msgqueue').deadLetter === 1, 'dead-lettered');
  assert.equal((await s.b.deadLetters(1))[0]?.reason, 'MaxDeliveryCountExceeded: failed on delivery 2 of 2: the handler threw: connect ECONNREFUSED 127.0.0.1:3000');
});

test(`${NAME} - without the queue's MaxDeliveryCount the component's is used; a lower one on the queue has Service Bus dead-letter first, in its own words`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t, { maxDeliveryCount: '5' }, 'no management API', { maxDeliveryCount: 3 });
  const seen = await poison(s, ['"x"'], 3);
  assert.deepEqual(seen.map((m) => m.deliveryCount), [1, 2, 3]);
  assert.deepEqual(s.peer.stats.deadLetterings, [], 'qscale would have dead-lettered on delivery 5');
  const [dead] = await s.b.deadLetters(1);
  assert.equal(dead?.reason, 'MaxDeliveryCountExceeded: Message could not be consumed after 3 delivery attempts.');
  assert.equal(dead?.deliveryCount, 3, 'peek reports the count as it stands');
  assert.equal(dead?.deadLetteredAt, undefined, 'Service Bus records no time of its own');
});

for (const [queue, kept] of [
  [{ maxDeliveryCount: 2, requiresDuplicateDetection: false }, true],
  [{ maxDeliveryCount: 2, requiresDuplicateDetection: true }, false],
  ['no management API', false],
] as const) {
  const what = queue === 'no management API' ? 'duplicate detection unknown' : `duplicate detection ${queue.requiresDuplicateDetection ? 'on' : 'off'}`;
  test(`${NAME} - requeue sends body, properties and metadata again as a fresh message, then completes the dead letter; MessageId ${kept ? 'kept' : 'new'} (${what})`, { timeout: 120_000 }, async (t) => {
    const s = await setup(t, { maxDeliveryCount: '2' }, queue);
    await poison(s, ['{"order":8}'], 2, { kind: 'poison', 'content-type': 'application/json', MessageId: 'order-8', CorrelationId: 'c-8', Label: 'orders' });
    const [dead] = await s.b.deadLetters(1);
    assert.ok(dead);
    assert.equal(await s.b.requeueDeadLetters([dead.id]), 1);
    assert.deepEqual(s.peer.counts('msgqueue'), { active: 1, deadLetter: 0, locked: 0 });
    const sent = s.peer.queue('msgqueue').ready[0]?.message;
    assert.equal(bodyText(sent), '{"order":8}');
    assert.deepEqual(sent?.application_properties, { kind: 'poison', 'content-type': 'application/json' }, 'no DeadLetterReason, description or qscale property');
    assert.equal(sent?.correlation_id, 'c-8');
    assert.equal(sent?.subject, 'orders');
    if (kept) assert.equal(sent?.message_id, 'order-8');
    else assert.match(String(sent?.message_id), /^[0-9a-f-]{36}$/);
    const got: QueueMessage[] = [];
    await receiveUntil(s.b, async (m) => (got.push(m), true), () => got.length === 1);
    // The app gets property values query-escaped, as from daprd's Service Bus binding.
    assert.deepEqual(got.map((m) => [m.data.toString(), m.deliveryCount, m.metadata.kind, m.metadata['content-type']]), [['{"order":8}', 1, 'poison', 'application%2Fjson']]);
    assert.deepEqual(s.peer.counts('msgqueue'), { active: 0, deadLetter: 0, locked: 0 });
  });
}

test(`${NAME} - requeue and purge by id take only the dead letters named; the others stay as they were, in order; 'all' takes the rest`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t);
  await poison(s, ['"a"', '"b"', '"c"', '"d"'], 2);
  const dead = await s.b.deadLetters(10);
  assert.deepEqual(dead.map((d) => d.data.toString()), ['"a"', '"b"', '"c"', '"d"'], 'oldest first');
  const [a, bee, c, d] = dead as [DeadLetter, DeadLetter, DeadLetter, DeadLetter];
  assert.equal(await s.b.purgeDeadLetters([bee.id, '12345', 'not-a-number']), 1);
  assert.equal(await s.b.requeueDeadLetters([c.id]), 1);
  const left = await s.b.deadLetters(10);
  assert.deepEqual(left, [a, d], 'the ones passed over on the way are unchanged: same delivery count, reason and order');
  assert.equal(await s.b.deadLetters(1).then((l) => l.length), 1, 'a limit');
  assert.equal(await s.b.requeueDeadLetters(['999']), 0, 'an unknown id moves nothing');
  assert.equal(await s.b.purgeDeadLetters('all'), 2);
  assert.equal(await s.b.requeueDeadLetters('all'), 0);
  assert.deepEqual(await s.b.deadLetters(10), []);
  assert.deepEqual(s.peer.queue('msgqueue').ready.map((e) => bodyText(e.message)), ['"c"'], 'only the requeued one is back');
});

test(`${NAME} - requeue of all takes the dead letters there when it began and leaves one stamped later (dead-lettered again meanwhile)`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t, {}, { maxDeliveryCount: 1, requiresDuplicateDetection: false });
  await poison(s, ['"p"', '"q"'], 1);
  assert.equal(await s.b.requeueDeadLetters('all'), 2);
  assert.deepEqual(s.peer.counts('msgqueue'), { active: 2, deadLetter: 0, locked: 0 });
  let failures = 0;
  await receiveUntil(s.b, async () => (failures++, failed(ANSWER)), () => failures === 2);
  await until(() => s.peer.counts('msgqueue').deadLetter === 2, 'dead-lettered again');
  // A dead letter stamped later than the requeue's start is left where it is.
  const late = s.peer.addDeadLetter('msgqueue', { body: Buffer.from('"late"'), application_properties: { [DEAD_LETTERED_AT_PROPERTY]: new Date(Date.now() + 60_000) } }, 1);
  assert.equal(await s.b.requeueDeadLetters('all'), 2);
  assert.deepEqual((await s.b.deadLetters(10)).map((d) => d.id), [String(late.seq)]);
});

test(`${NAME} - queue purge deletes what can be received: a message locked by a handler and the dead letters stay`, { timeout: 120_000 }, async (t) => {
  const s = await setup(t);
  await poison(s, ['"dead"'], 2);
  for (let i = 0; i < 5; i++) await s.b.send(Buffer.from(`{"n":${i}}`), {});
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const handled: string[] = [];
  const ac = new AbortController();
  const receiving = s.b.receive(async (m) => {
    await gate;
    handled.push(m.data.toString());
    return true;
  }, { concurrency: 1, signal: ac.signal });
  await until(() => s.peer.counts('msgqueue').locked === 1, 'one message in the handler');
  assert.equal(await s.b.purge(), 4);
  assert.deepEqual(s.peer.counts('msgqueue'), { active: 1, deadLetter: 1, locked: 1 });
  ac.abort();
  release();
  await receiving;
  assert.deepEqual(handled, ['{"n":0}'], 'the locked one was handled and completed');
  assert.deepEqual(await s.b.depth(), { ready: 0, inFlight: 0, deadLettered: 1 });
  assert.equal(await s.b.purge(), 0, 'purging an empty queue is harmless');
});

test('servicebus dead letters - what deadLetterMessage() is given: the reason Service Bus uses, the answer cut to the service\'s 4096 characters, the time and count', { timeout: 60_000 }, () => {
  const at = Date.UTC(2030, 0, 2, 3, 4, 5);
  const short = deadLetterSettlement(3, 3, 'app answered 503: busy', at);
  assert.deepEqual(short, {
    deadLetterReason: 'MaxDeliveryCountExceeded', deadLetterErrorDescription: 'failed on delivery 3 of 3: app answered 503: busy',
    [DEAD_LETTERED_AT_PROPERTY]: new Date(at), [DELIVERY_COUNT_PROPERTY]: 3,
  });
  const long = deadLetterSettlement(3, 3, `app answered 500: ${'é'.repeat(10_000)}`, at);
  assert.equal(long.deadLetterErrorDescription.length, MAX_DEAD_LETTER_TEXT);
  assert.match(long.deadLetterErrorDescription, /^failed on delivery 3 of 3: app answered 500: é+…$/);
});

test('servicebus dead letters - the message a requeue sends, and the metadata shown, leave out what dead-lettering added', { timeout: 60_000 }, () => {
  const dead = {
    body: Buffer.from('{"a":1}'), messageId: 'm-1', correlationId: 'c-1', subject: 'greeting', contentType: 'application/json',
    sequenceNumber: { toString: () => '42' }, deliveryCount: 3, enqueuedTimeUtc: new Date(0), timeToLive: 60_000,
    applicationProperties: {
      tenant: 'contoso', retries: 2, DeadLetterReason: 'MaxDeliveryCountExceeded', DeadLetterErrorDescription: 'failed',
      [DEAD_LETTERED_AT_PROPERTY]: 1, [DELIVERY_COUNT_PROPERTY]: 3,
    },
  } as unknown as ServiceBusReceivedMessage;
  const again = requeueMessage(dead, true);
  assert.deepEqual(again, {
    body: Buffer.from('{"a":1}'), messageId: 'm-1', correlationId: 'c-1', subject: 'greeting', contentType: 'application/json',
    applicationProperties: { tenant: 'contoso', retries: 2 },
  }, 'no time to live of its own: the queue\'s default applies');
  assert.notEqual(requeueMessage(dead, false).messageId, 'm-1');
  assert.deepEqual(sentMetadataOf(dead), { tenant: 'contoso', MessageId: 'm-1', CorrelationId: 'c-1', Label: 'greeting', ContentType: 'application/json' });
});

test('servicebus dead letters - unreachable namespace (closed port, emulator mode): each operation fails within timeoutInSec naming the component, what it did and where, never the key', { timeout: 120_000 }, async (t) => {
  const port = await closedPort();
  const c = seedComponent({ timeoutInSec: '2', publishMaxRetries: '0' },
    `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY};UseDevelopmentEmulator=true`);
  const b = serviceBusBackend.create(c, { logger, dataDir: '/tmp' });
  t.after(() => b.close());
  assert.ok(hasDeadLetters(b) && isPurgeable(b));
  assert.equal(defaultClients(parseServiceBusComponent(c)).admin, undefined, 'the emulator has no management API');
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['cannot list the dead letters', () => b.deadLetters(10)],
    ['cannot show a dead letter', () => b.deadLetter('7')],
    ['cannot requeue dead letters', () => b.requeueDeadLetters('all')],
    ['cannot purge dead letters', () => b.purgeDeadLetters(['7'])],
    ['cannot purge dead letters', () => b.purgeDeadLetters('all')],
    ['cannot purge the queue', () => b.purge()],
  ];
  for (const [doing, call] of calls) {
    await assert.rejects(call(), (err: Error) => {
      assert.ok(err instanceof BrokerError, String(err));
      assert.match(err.message, new RegExp(`^component message-queue \\(bindings\\.azure\\.servicebusqueues\\): ${doing} \\(Service Bus 127\\.0\\.0\\.1:${port}, queue 'msgqueue'\\): `));
      assert.ok(!err.message.includes(SECRET_KEY), err.message);
      return true;
    });
  }
});
