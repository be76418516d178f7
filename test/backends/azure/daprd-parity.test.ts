/**
 * The Service Bus binding's metadata read as daprd reads it (components-contrib common/component/azure/servicebus
 * metadata.go and message.go, metadata.TryGetTTL), point by point, where qscale used to read it otherwise.
 * Azure cannot be reached from here: what reaches the broker is read back from the AMQP test peer (not Service Bus).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ServiceBusBackend, defaultClients } from '../../../src/backends/azure/servicebus/backend.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import { toServiceBusMessage } from '../../../src/backends/azure/servicebus/message.js';
import { AmqpTestPeer } from './amqp-peer.js';
import { FILE, SECRET_KEY, seedComponent } from './support.js';

test('servicebus daprd parity - component TTL written as a duration (ttlInSeconds or ttl) sets the created queue\'s default TTL in seconds', { timeout: 60_000 }, () => {
  const cases: Array<[Record<string, string>, number]> = [
    [{ ttlInSeconds: '30s' }, 30],
    [{ ttlInSeconds: '1h' }, 3600],
    [{ ttlInSeconds: '86400' }, 86_400],
    [{ ttl: '2m' }, 120],
    [{ TTLInSeconds: '90s' }, 90],
    // Dapr's lookup reads ttl before ttlInSeconds.
    [{ ttlInSeconds: '10', ttl: '20s' }, 20],
    // Whole seconds, truncated.
    [{ ttlInSeconds: '1.9s' }, 1],
  ];
  for (const [md, sec] of cases) {
    assert.equal(parseServiceBusComponent(seedComponent(md)).create.defaultMessageTtlSec, sec, JSON.stringify(md));
  }
});

test('servicebus daprd parity - defaultMessageTimeToLiveInSec wins, and then ttlInSeconds is not even read (as Dapr)', { timeout: 60_000 }, () => {
  assert.equal(parseServiceBusComponent(seedComponent({ defaultMessageTimeToLiveInSec: '60', ttlInSeconds: 'whenever' })).create.defaultMessageTtlSec, 60);
});

const refusedTtl: Array<{ md: Record<string, string>; line: number; says: RegExp }> = [
  { md: { ttlInSeconds: '0' }, line: 16, says: /metadata 'ttlInSeconds' must come to at least 1 second \(Dapr: defaultMessageTimeToLiveInSec must be greater than 0\), got '0'/ },
  { md: { ttlInSeconds: '500ms' }, line: 16, says: /must come to at least 1 second .* got '500ms'/ },
  { md: { ttlInSeconds: '-5' }, line: 16, says: /metadata 'ttlInSeconds' must be a whole number of seconds above zero, got '-5'/ },
  { md: { ttl: 'soon' }, line: 16, says: /metadata 'ttl' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon'/ },
  { md: { defaultMessageTimeToLiveInSec: '0' }, line: 16, says: /metadata 'defaultMessageTimeToLiveInSec' must be >= 1, got '0'/ },
];
for (const c of refusedTtl) {
  test(`servicebus daprd parity - a component TTL daprd refuses is refused at start with file:line: ${JSON.stringify(c.md)}`, { timeout: 60_000 }, () => {
    assert.throws(() => parseServiceBusComponent(seedComponent(c.md)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG');
      assert.ok(err.message.startsWith(`${FILE}:${c.line}: component message-queue (bindings.azure.servicebusqueues): `), err.message);
      assert.match(err.message, c.says);
      assert.ok(!err.message.includes(SECRET_KEY));
      return true;
    });
  });
}

test('servicebus daprd parity - request TTLs: Go durations and whole seconds, ttl before ttlInSeconds, 0 and unreadable ones dropped with a notice', { timeout: 60_000 }, () => {
  const body = Buffer.from('{}');
  const notices: string[] = [];
  const ttl = (md: Record<string, string>): number | undefined => toServiceBusMessage(body, md, (n) => notices.push(n)).timeToLive;
  assert.equal(ttl({ ttlInSeconds: '30s' }), 30_000);
  assert.equal(ttl({ ttl: '250ms' }), 250);
  assert.equal(ttl({ ttlInSeconds: '90' }), 90_000);
  assert.equal(ttl({ ttlInSeconds: '90', ttl: '1m' }), 60_000);
  assert.equal(ttl({ ttlInSeconds: '0' }), undefined);
  assert.equal(ttl({ ttl: '-3s' }), undefined);
  assert.deepEqual(notices, []);
  assert.equal(ttl({ ttlInSeconds: 'soon' }), undefined);
  assert.deepEqual(notices, ["metadata 'ttlInSeconds' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon': the message is sent without a time to live, as daprd sends it"]);
  // Only the exact keys trigger the lookup, as in Dapr's switch; another spelling is an application property.
  const other = toServiceBusMessage(body, { TTL: '5s' });
  assert.equal(other.timeToLive, undefined);
  assert.deepEqual(other.applicationProperties, { TTL: '5s' });
});

test('servicebus daprd parity via AMQP test peer (not Service Bus) - maxConcurrentHandlers 0 or below is no limit of its own, as Dapr: the app gets maxActiveMessages at once', { timeout: 120_000 }, async (t) => {
  for (const v of ['0', '-1']) {
    const peer = await AmqpTestPeer.start();
    t.after(() => peer.close());
    const c = seedComponent({ disableEntityManagement: 'true', maxConcurrentHandlers: v, maxActiveMessages: '3' }, peer.connectionString());
    const s = parseServiceBusComponent(c);
    const b = new ServiceBusBackend(c, s, { logger: pino({ level: 'silent' }), dataDir: '/tmp' }, defaultClients(s));
    t.after(() => b.close());
    await b.init();
    for (let i = 0; i < 6; i++) await b.send(Buffer.from(`{"i":${i}}`), {});
    let inHandler = 0;
    let most = 0;
    let done = 0;
    const ac = new AbortController();
    const giveUp = setTimeout(() => ac.abort(), 20_000);
    await b.receive(async () => {
      most = Math.max(most, ++inHandler);
      await new Promise((r) => setTimeout(r, 300));
      inHandler--;
      if (++done === 6) ac.abort();
      return true;
    }, { concurrency: 10, signal: ac.signal });
    clearTimeout(giveUp);
    assert.equal(done, 6);
    assert.equal(most, 3, `maxConcurrentHandlers ${v}: handler calls at once`);
  }
});

test('servicebus daprd parity - handlerTimeoutInSec is accepted and has no effect on the binding: one notice at start says so, with file:line', { timeout: 120_000 }, async (t) => {
  const peer = await AmqpTestPeer.start();
  t.after(() => peer.close());
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const c = seedComponent({ disableEntityManagement: 'true', handlerTimeoutInSec: '30' }, peer.connectionString());
  const s = parseServiceBusComponent(c);
  const b = new ServiceBusBackend(c, s, { logger, dataDir: '/tmp' }, defaultClients(s));
  t.after(() => b.close());
  await b.init();
  const notices = lines.filter((l) => /handlerTimeoutInSec/.test(l.msg));
  assert.equal(notices.length, 1, JSON.stringify(lines));
  assert.equal(notices[0]?.level, 40);
  assert.match(notices[0]?.msg ?? '', new RegExp(`^${FILE}:18: component message-queue \\(bindings\\.azure\\.servicebusqueues\\): handlerTimeoutInSec has no effect on a binding: daprd reads it for the Service Bus pub/sub only`));
  // The default (0) says nothing.
  const quiet = parseServiceBusComponent(seedComponent({ disableEntityManagement: 'true' }, peer.connectionString()));
  assert.deepEqual(quiet.notices, []);
});
