/**
 * pubsub.redis against the machine's Redis: the entries daprd writes and reads, the consumer group KEDA's
 * redis-streams trigger is pointed at (its pending entries and lag against what the subscribers hold), delivery
 * counts from the group, Redis going away and coming back, and the metadata against Dapr's metadata.yaml.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse } from 'yaml';
import pino from 'pino';
import { createPubSub } from '../../../src/pubsub/registry.js';
import type { PubSub } from '../../../src/pubsub/types.js';
import type { HandlerResult, QueueMessage } from '../../../src/backends/types.js';
import { ConfigError } from '../../../src/errors.js';
import type { FieldSpec } from '../../../src/components/metadata.js';
import { redisStreamsTrigger } from '../../../src/backends/redis/index.js';
import { redisPubSubFieldUse, redisPubSubMetadata } from '../../../src/backends/redis/pubsub-metadata.js';
import { withMetadataTemplates } from '../../../src/components/templates.js';
import { componentFromYaml } from '../../conformance/component.js';
import { needBroker, uniqueName } from '../../support/brokers.js';
import { startProxy } from '../proxy.js';
import { REDIS_ADDR, deleteKeys, logger, trigger, withRedis } from './helpers.js';

const REFERENCE = '/work/shared/reference/dapr-pubsub/pubsub.redis.metadata.yaml';
/** Guards against a hang, never asserts speed. */
const GIVE_UP_MS = 30_000;

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function component(metadata: Record<string, string>, name = 'orders-pubsub'): ReturnType<typeof componentFromYaml> {
  return componentFromYaml(name, 'pubsub.redis', metadata, { initTimeout: '3s', file: 'components/pubsub.yaml' });
}

/** A pub/sub of app `appId`, initialised, closed after the test; topics deleted after the test too. */
async function open(t: TestContext, appId: string, metadata: Record<string, string> = {}, topics: string[] = []): Promise<PubSub> {
  const p = createPubSub(component({ redisHost: REDIS_ADDR, processingTimeout: '1s', redeliverInterval: '200', ...metadata }), { logger, dataDir: '.qscale-test', appId });
  t.after(async () => {
    await p.close();
    if (topics.length) await deleteKeys(...topics);
  });
  await p.init();
  return p;
}

interface Running {
  got: QueueMessage[];
  states: unknown[];
  stop(): Promise<void>;
}

function run(p: PubSub, topic: string, handler: (m: QueueMessage) => Promise<HandlerResult> = async () => true, concurrency = 10): Running {
  const got: QueueMessage[] = [];
  const states: unknown[] = [];
  const ac = new AbortController();
  const done = p.subscribe({ topic, metadata: {} }, async (m) => {
    got.push(m);
    return handler(m);
  }, { concurrency, signal: ac.signal, onBrokerState: (e) => void states.push(e) });
  return {
    got,
    states,
    async stop() {
      ac.abort();
      await done;
    },
  };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

test('redis pubsub - publish writes the entry daprd writes: data as sent, metadata as Go JSON, MAXLEN ~ maxLenApprox', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const topic = uniqueName('ps-redis-wire');
  const proxy = await startProxy(6379);
  t.after(() => proxy.close());
  const p = createPubSub(component({ redisHost: `127.0.0.1:${proxy.port}`, maxLenApprox: '10' }), { logger, dataDir: '.qscale-test', appId: 'checkout' });
  t.after(async () => {
    await p.close();
    await deleteKeys(topic);
  });
  await p.init();
  const data = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xff, 0x00, 0x7d]); // not UTF-8, with a NUL: stored byte for byte
  await p.publish(topic, data, { ttlInSeconds: '60', 'content-type': 'a<b>&c' });
  const entries = await withRedis((r) => r.xrangeBuffer(topic, '-', '+'));
  assert.equal(entries.length, 1);
  const [, flat] = entries[0] ?? assert.fail('no entry');
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] as Buffer);
  assert.deepEqual([...fields.keys()].sort(), ['data', 'metadata']);
  assert.deepEqual(fields.get('data'), data);
  // json.Marshal of a map: keys sorted, HTML characters escaped.
  assert.equal(fields.get('metadata')?.toString(), '{"content-type":"a\\u003cb\\u003e\\u0026c","ttlInSeconds":"60"}');
  assert.match(proxy.sent(), new RegExp(`XADD\\r\\n\\$${topic.length}\\r\\n${topic}\\r\\n\\$6\\r\\nMAXLEN\\r\\n\\$1\\r\\n~\\r\\n\\$2\\r\\n10\\r\\n\\$1\\r\\n\\*`));
});

test('redis pubsub - an entry daprd wrote is delivered with its metadata, a delivery count of 1 and its stream time', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const topic = uniqueName('ps-redis-daprd');
  const p = await open(t, 'checkout', {}, [topic]);
  await p.prepare({ topic, metadata: {} });
  const id = await withRedis((r) => r.xadd(topic, '*', 'data', '{"orderId":7}', 'metadata', '{"traceparent":"00-abc-01"}'));
  const sub = run(p, topic);
  await until(() => sub.got.length === 1, 'the entry');
  await sub.stop();
  const m = sub.got[0] ?? assert.fail('none');
  assert.equal(m.id, id);
  assert.equal(m.data.toString(), '{"orderId":7}');
  assert.deepEqual(m.metadata, { traceparent: '00-abc-01' });
  assert.equal(m.deliveryCount, 1);
  assert.equal(m.enqueuedAt, Number(String(id).split('-')[0]));
  // Acked, and kept in the stream as daprd keeps it.
  assert.equal(await withRedis((r) => r.xlen(topic)), 1);
  assert.deepEqual(await withRedis((r) => r.call('XPENDING', topic, 'checkout')), [0, null, null, null]);
});

test('redis pubsub - the consumer group is consumerID (default the app id): KEDA\'s pending entries and lag read what the subscribers hold', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const topic = uniqueName('ps-redis-keda');
  const byApp = await open(t, 'checkout', { queueDepth: '3', concurrency: '2' }, [topic]);
  const named = await open(t, 'checkout', { consumerID: '{appID}-audit' });
  await byApp.prepare({ topic, metadata: {} });
  await named.prepare({ topic, metadata: {} });
  const groups = (await withRedis((r) => r.call('XINFO', 'GROUPS', topic))) as unknown[][];
  assert.deepEqual(groups.map((g) => g[1]).sort(), ['checkout', 'checkout-audit']);
  for (let i = 0; i < 9; i++) await byApp.publish(topic, Buffer.from(String(i)), {});
  const pending = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: topic, consumerGroup: 'checkout' }));
  const lag = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: topic, consumerGroup: 'checkout', lagCount: '5' }));
  t.after(async () => {
    await pending.close();
    await lag.close();
  });
  assert.deepEqual(await pending.metricAndActivity(), { value: 0, active: false }, 'nothing delivered yet');
  assert.deepEqual(await lag.metricAndActivity(), { value: 9, active: true });
  const g = gate();
  const sub = run(byApp, topic, async () => (await g.wait, true), 10);
  // concurrency 2 handlers, and queueDepth 3 more held by the replica: 5 delivered and unacked, as daprd holds them.
  await until(() => sub.got.length === 2, 'two handlers');
  await until(async () => (await pending.metricAndActivity()).value === 5, 'five pending');
  assert.deepEqual(await lag.metricAndActivity(), { value: 4, active: true }, 'the rest not yet delivered');
  g.open();
  await until(() => sub.got.length === 9, 'all processed');
  await until(async () => (await pending.metricAndActivity()).value === 0, 'all acked');
  assert.deepEqual(await lag.metricAndActivity(), { value: 0, active: false });
  await sub.stop();
  // The other app's group still has every entry waiting.
  const audit = redisStreamsTrigger.create(trigger({ address: REDIS_ADDR, stream: topic, consumerGroup: 'checkout-audit', lagCount: '5' }));
  t.after(() => audit.close());
  assert.deepEqual(await audit.metricAndActivity(), { value: 9, active: true });
});

test('redis pubsub - a failed entry stays pending and comes again with the group\'s delivery count', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const topic = uniqueName('ps-redis-retry');
  const p = await open(t, 'checkout', {}, [topic]);
  await p.prepare({ topic, metadata: {} });
  await p.publish(topic, Buffer.from('"flaky"'), {});
  const sub = run(p, topic, async (m) => m.deliveryCount >= 3);
  await until(() => sub.got.length === 3, 'three deliveries');
  await sub.stop();
  assert.deepEqual(sub.got.map((m) => m.deliveryCount), [1, 2, 3]);
  assert.equal(new Set(sub.got.map((m) => m.id)).size, 1, 'the same entry each time');
  assert.equal(new Set(sub.got.map((m) => m.enqueuedAt)).size, 1, 'with its first stream time');
  assert.deepEqual(await withRedis((r) => r.call('XPENDING', topic, 'checkout')), [0, null, null, null], 'acked once processed');
});

test('redis pubsub - Redis going away and coming back: one outage report, one recovery, and events flow again', { timeout: 90_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const topic = uniqueName('ps-redis-outage');
  const proxy = await startProxy(6379);
  const p = createPubSub(component({ redisHost: `127.0.0.1:${proxy.port}` }), { logger, dataDir: '.qscale-test', appId: 'checkout' });
  t.after(async () => {
    await proxy.setMode('relay');
    await p.close();
    await proxy.close();
    await deleteKeys(topic);
  });
  await p.init();
  await p.prepare({ topic, metadata: {} });
  const sub = run(p, topic);
  await p.publish(topic, Buffer.from('"before"'), {});
  await until(() => sub.got.length === 1, 'the first event');
  await proxy.setMode('refuse');
  await until(() => sub.states.length >= 1, 'an outage report');
  const lost = sub.states[0];
  assert.ok(lost instanceof Error);
  assert.equal(lost.message, `component orders-pubsub (pubsub.redis): Redis at redis://127.0.0.1:${proxy.port}/0 is unreachable (connection refused (is Redis running on that host and port?)). Check that Redis is running and reachable at that address`);
  const refused = await p.publish(topic, Buffer.from('"during"'), {}).then(() => undefined, (e: unknown) => e);
  assert.ok(refused instanceof Error);
  assert.match(refused.message, /^component orders-pubsub \(pubsub\.redis\): cannot send \(the message was not stored\): Redis at .* is unreachable/);
  await proxy.setMode('relay');
  await until(() => sub.states.at(-1) === undefined, 'the recovery');
  await p.publish(topic, Buffer.from('"after"'), {});
  await until(() => sub.got.length === 2, 'the event after the outage');
  await sub.stop();
  assert.deepEqual(sub.got.map((m) => m.data.toString()), ['"before"', '"after"']);
  assert.equal(sub.states.filter((s) => s !== undefined).length, 1, sub.states.map(String).join(' | '));
});

test('redis pubsub metadata - every field of Dapr\'s metadata.yaml is declared with its name, default and secrecy', { timeout: 30_000 }, (t) => {
  if (!fs.existsSync(REFERENCE)) {
    t.skip(`reference file ${REFERENCE} is not on this machine`);
    return;
  }
  type RefField = { name: string; default?: string; type?: string; sensitive?: boolean };
  const ref = parse(fs.readFileSync(REFERENCE, 'utf8')) as {
    metadata: RefField[];
    authenticationProfiles: Array<{ metadata: RefField[] }>;
    builtinAuthenticationProfiles: Array<{ metadata: RefField[] }>;
  };
  // A field listed in more than one profile (redisUsername) counts with the default one of them gives.
  const refFields: RefField[] = [];
  for (const r of [...ref.metadata, ...ref.authenticationProfiles.flatMap((p) => p.metadata), ...ref.builtinAuthenticationProfiles.flatMap((p) => p.metadata)]) {
    const seen = refFields.find((x) => x.name === r.name);
    if (!seen) refFields.push({ ...r });
    else seen.default ??= r.default;
  }
  const declared = new Map<string, FieldSpec>(redisPubSubMetadata.fields.map((f) => [f.name, f]));
  // daprd's code starts from these, metadata.yaml has the two swapped (components-contrib common/component/redis).
  const codeDefaults: Record<string, string> = { redeliverInterval: '15s', processingTimeout: '60s' };
  // Secrets the reference does not flag: qscale never prints them.
  const extraSecrets = ['clientKey'];
  const unquote = (v: string | undefined): string | undefined => v?.replace(/^"(.*)"$/, '$1');
  for (const r of refFields) {
    const f = declared.get(r.name);
    assert.ok(f, `'${r.name}' is declared`);
    const want = codeDefaults[r.name] ?? unquote(r.default);
    if (want !== undefined) assert.equal(String(f.default), want, `default of '${r.name}'`);
    else assert.equal(f.default, undefined, `'${r.name}' has no default`);
    assert.equal(f.sensitive === true, r.sensitive === true || extraSecrets.includes(r.name), `secrecy of '${r.name}'`);
    if (redisPubSubFieldUse(f) === 'used') {
      if (r.type === 'bool') assert.equal(f.type, 'boolean', `type of '${r.name}'`);
      if (r.type === 'duration') assert.equal(f.type, 'duration', `type of '${r.name}'`);
      if (r.type === 'number') assert.ok(f.type === 'integer' || f.type === 'number', `type of '${r.name}'`);
    }
  }
  assert.deepEqual([...declared.keys()].filter((n) => !refFields.some((r) => r.name === n)), [], 'nothing beyond the reference');
  const use = (u: string): string[] => redisPubSubMetadata.fields.filter((f) => redisPubSubFieldUse(f) === u).map((f) => f.name).sort();
  assert.deepEqual(use('refused'), ['clientCert', 'clientKey', 'failover', 'insecureSkipTLSVerify', 'redisType', 'useEntraID', 'useOIDC']);
  assert.equal(use('ignored').length, 24, 'go-redis tuning (12), Sentinel (3) and OIDC (9) fields');
});

test('redis pubsub metadata - what qscale cannot do is refused naming the field and its line; client tuning is accepted', { timeout: 30_000 }, () => {
  const ctx = { logger, dataDir: '.qscale-test', appId: 'checkout' };
  const refused: Array<[Record<string, string>, string, RegExp]> = [
    [{ redisType: 'cluster' }, 'redisType', /'cluster' is not supported: qscale connects to one Redis node/],
    [{ failover: 'true', sentinelMasterName: 'mymaster' }, 'failover', /not through Sentinel/],
    [{ useEntraID: 'true' }, 'useEntraID', /no Entra ID login/],
    [{ useOIDC: 'true' }, 'useOIDC', /no OIDC login/],
    [{ insecureSkipTLSVerify: 'true' }, 'insecureSkipTLSVerify', /always verifies/],
    [{ clientCert: 'PEM' }, 'clientCert', /no client-certificate TLS/],
    [{ redisHost: 'a:6379,b:6379' }, 'redisHost', /must be one host:port/],
    [{ redisPort: '6380' }, 'redisPort', /is 6380 but redisHost '127\.0\.0\.1:6379' already has port 6379/],
  ];
  for (const [md, field, why] of refused) {
    const err = (() => {
      try {
        createPubSub(component({ redisHost: REDIS_ADDR, ...md }), ctx);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, `${field}: ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, /^components\/pubsub\.yaml:\d+: component orders-pubsub \(pubsub\.redis\): metadata '/);
    assert.match(err.message, why);
  }
  // Every go-redis tuning field, with the values daprd's docs show (-1 = off, a bare number = milliseconds).
  createPubSub(component({
    redisHost: '127.0.0.1', redisPort: '6379', redisMaxRetries: '5', redisMinRetryInterval: '-1', redisMaxRetryInterval: '5s', dialTimeout: '5s',
    readTimeout: '3', writeTimeout: '3s', poolSize: '20', poolTimeout: '5s', maxConnAge: '30m', minIdleConns: '2', idleCheckFrequency: '-1',
    idleTimeout: '10m', sentinelUsername: 'x', oidcScopes: 'openid',
  }), ctx);
});

test('redis pubsub metadata - a bare number in redeliverInterval and processingTimeout is milliseconds, as daprd reads it; a duration in redeliverInterval is said once', { timeout: 30_000 }, async (t) => {
  if (!(await needBroker(t, 'redis'))) return;
  const lines: Array<{ level: number; msg: string }> = [];
  const captured = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  const p = createPubSub(component({ redisHost: REDIS_ADDR, redeliverInterval: '1s', processingTimeout: '1500' }), { logger: captured, dataDir: '.qscale-test', appId: 'a' });
  t.after(() => p.close());
  await p.init();
  const warned = lines.filter((l) => l.level === 40).map((l) => l.msg);
  assert.deepEqual(warned, [
    "component orders-pubsub (pubsub.redis): metadata 'redeliverInterval' is '1s': daprd reads only a bare number of milliseconds there and keeps its 15s for anything else; write it in milliseconds for the same behaviour on a cluster",
  ]);
  assert.equal((p as unknown as { s: { processingTimeoutMs: number; redeliverIntervalMs: number } }).s.processingTimeoutMs, 1500);
  assert.equal((p as unknown as { s: { redeliverIntervalMs: number } }).s.redeliverIntervalMs, 1000);
});

test('redis pubsub metadata - templates are filled as daprd fills them; {podName} without a pod name is an error naming the field', { timeout: 30_000 }, () => {
  const c = component({ redisHost: REDIS_ADDR, consumerID: '{appID}-{namespace}', redisUsername: '{uuid}' });
  const filled = withMetadataTemplates(c, 'checkout', { NAMESPACE: 'shop' });
  assert.equal(filled.metadata.consumerID, 'checkout-shop.checkout');
  assert.match(filled.metadata.redisUsername ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-/);
  assert.equal(withMetadataTemplates(component({ redisHost: REDIS_ADDR, consumerID: '{podName}' }), 'a', { POD_NAME: 'web-0' }).metadata.consumerID, 'web-0');
  assert.throws(() => withMetadataTemplates(component({ redisHost: REDIS_ADDR, consumerID: '{podName}' }), 'a', {}), (e: unknown) =>
    e instanceof ConfigError && e.field === 'consumerID' && /refers to \{podName\} but no pod name is set/.test(e.message));
});

test('redis pubsub metadata - docs/pubsub-brokers.md names every field in its table', { timeout: 30_000 }, () => {
  const doc = fs.readFileSync(new URL('../../../../docs/pubsub-brokers.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((x) => x.startsWith('pubsub.redis\n')) ?? assert.fail('no ## pubsub.redis section');
  const table = section.slice(section.indexOf('### Metadata'));
  const missing = redisPubSubMetadata.fields.map((f) => f.name).filter((n) => !table.split('\n').some((l) => l.startsWith('| ') && (l.split('|')[1] ?? '').split(',').some((c) => c.trim() === n)));
  assert.deepEqual(missing, []);
});
