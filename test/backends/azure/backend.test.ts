/**
 * What the binding asks of Service Bus and how it fails. Azure cannot be reached from here: failures are shown with
 * a closed port on 127.0.0.1, and the management calls with a recording stand-in for the management API (named so).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusBackend, defaultClients } from '../../../src/backends/azure/servicebus/backend.js';
import { createQueueOptions } from '../../../src/backends/azure/servicebus/admin.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import { serviceBusBackend } from '../../../src/backends/azure/servicebus/index.js';
import { createLogger } from '../../../src/util/log.js';
import { AmqpTestPeer } from './amqp-peer.js';
import { RecordingAdmin } from './peer-admin.js';
import { SECRET_KEY, seedComponent } from './support.js';
import { closedPort } from '../closed-port.js';

const logger = createLogger('servicebus-test').child({}, { level: 'silent' });
const ctx = { logger, dataDir: '/tmp' };


test('servicebus backend - unreachable namespace (closed port, emulator mode): init fails fast, names component and broker, no key', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const c = seedComponent({ disableEntityManagement: 'true' },
    `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY};UseDevelopmentEmulator=true`, '3s');
  const b = serviceBusBackend.create(c, ctx);
  await assert.rejects(b.init(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_BROKER');
    assert.match(err.message, new RegExp(`^component message-queue \\(bindings\\.azure\\.servicebusqueues\\): cannot connect \\(Service Bus 127\\.0\\.0\\.1:${port}, queue 'msgqueue'\\): `));
    assert.ok(!err.message.includes(SECRET_KEY), err.message);
    return true;
  });
  await b.close();
});

test('servicebus backend - unreachable management API (closed port over TLS): init gives up at initTimeout with a clear error, no key', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  const c = seedComponent({}, `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY}`, '2s');
  const b = serviceBusBackend.create(c, ctx);
  await assert.rejects(b.init(), (err: Error) => {
    assert.match(err.message, /^component message-queue \(bindings\.azure\.servicebusqueues\): cannot read the queue through the management API \(Service Bus 127\.0\.0\.1:\d+, queue 'msgqueue'\): /);
    assert.ok(!err.message.includes(SECRET_KEY), err.message);
    return true;
  });
  await b.close();
});

test('servicebus backend - entity management: a missing queue is created with Dapr\'s creation properties (recording stand-in for the management API)', { timeout: 120_000 }, async (t) => {
  const peer = await AmqpTestPeer.start();
  t.after(() => peer.close());
  const c = seedComponent({ lockDurationInSec: '30', maxDeliveryCount: '4', defaultMessageTimeToLiveInSec: '3600' }, peer.connectionString());
  const s = parseServiceBusComponent(c);
  const admin = new RecordingAdmin(peer);
  const b = new ServiceBusBackend(c, s, ctx, { messaging: defaultClients(s).messaging, admin });
  await b.init();
  await b.close();
  assert.deepEqual(admin.calls, [
    { op: 'queueFacts', queue: 'msgqueue' },
    { op: 'createQueue', queue: 'msgqueue', props: { lockDurationSec: 30, maxDeliveryCount: 4, defaultMessageTtlSec: 3600, autoDeleteOnIdleSec: undefined } },
  ]);
  assert.deepEqual(createQueueOptions(s.create), { lockDuration: 'PT30S', defaultMessageTimeToLive: 'PT3600S', maxDeliveryCount: 4 });
});

test('servicebus backend - entity management: an existing queue is left alone; disableEntityManagement asks nothing', { timeout: 120_000 }, async (t) => {
  const peer = await AmqpTestPeer.start();
  t.after(() => peer.close());
  for (const [md, want] of [[{}, ['queueFacts']], [{ disableEntityManagement: 'true' }, []]] as const) {
    const c = seedComponent(md, peer.connectionString());
    const s = parseServiceBusComponent(c);
    const admin = new RecordingAdmin(peer);
    admin.existing.add('msgqueue');
    const b = new ServiceBusBackend(c, s, ctx, { messaging: defaultClients(s).messaging, admin });
    await b.init();
    await b.close();
    assert.deepEqual(admin.calls.map((x) => x.op), want);
  }
});

test('servicebus backend - emulator connection strings skip the management API, and depth says why it cannot count', { timeout: 120_000 }, async (t) => {
  const peer = await AmqpTestPeer.start();
  t.after(() => peer.close());
  const c = seedComponent({}, peer.connectionString());
  const s = parseServiceBusComponent(c);
  const clients = defaultClients(s);
  assert.equal(clients.admin, undefined);
  const b = new ServiceBusBackend(c, s, ctx, clients);
  await b.init();
  await assert.rejects(b.depth(), /queue depth needs the Service Bus management API, which the emulator \(UseDevelopmentEmulator=true\) does not offer/);
  await b.close();
  await b.close();
});
