/**
 * The publish API over HTTP, compared field by field with what daprd does (dapr/dapr pkg/api/http/http.go onPublish
 * and onBulkPublish, pkg/api/errors/pubsub.go, components-contrib pubsub/envelope.go): the envelope the subscriber
 * gets, and every error's status, errorCode, message and details.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import path from 'node:path';
import { pubsubYaml, publish, resources, sidecarOn, startPubSubApp, type Delivery } from '../pubsub/support.js';
import { waitFor } from './support.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/;

/** A producer sidecar and a consumer app (subscribed to `topics` at /events) behind its own sidecar. */
async function pair(t: import('node:test').TestContext, topics: string[], files: Record<string, string> = {}, subMeta: Record<string, string> = {}) {
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events'), ...files });
  const app = await startPubSubApp(topics.map((topic) => ({ pubsubname: 'events', topic, route: '/events', metadata: subMeta })));
  const consumer = await sidecarOn(dir, 'consumer', { appPort: app.port });
  const producer = await sidecarOn(dir, 'producer');
  t.after(async () => {
    await producer.close();
    await consumer.close();
    await app.close();
  });
  // The consumer's subscription exists once its sidecar asked the app.
  await waitFor('the consumer subscribed', async () => {
    const r = await fetch(`http://127.0.0.1:${consumer.port}/v1.0/metadata`);
    const m = (await r.json()) as { qscale: { subscriptions: Array<{ state: string }> } };
    return m.qscale.subscriptions.length === topics.length && m.qscale.subscriptions.every((s) => s.state === 'receiving');
  });
  return { dir, app, producer, consumer };
}

async function one(app: { got: Delivery[] }, n = 1): Promise<Delivery[]> {
  await waitFor(`${n} deliveries`, () => app.got.length >= n);
  return app.got;
}

test('publish - a JSON body becomes the CloudEvent daprd builds: fields, sorted keys, numbers as written, trace continued', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['orders']);
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const r = await publish(producer.port, 'events', 'orders', '{"b": 1.0, "a": 12345678901234567890, "html": "<b>&</b>"}  trailing', {
    'content-type': 'application/json', traceparent, tracestate: 'congo=t61rcWkgMzE',
  }, '?metadata.cloudevent.subject=order-1');
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  const [d] = await one(app);
  const text = d!.body.toString();
  const e = d!.json!;
  assert.deepEqual(Object.keys(e), [...Object.keys(e)].sort(), 'keys in Go map order');
  assert.match(String(e.id), UUID);
  assert.equal(e.source, 'producer');
  assert.equal(e.type, 'com.dapr.event.sent');
  assert.equal(e.specversion, '1.0');
  assert.equal(e.datacontenttype, 'application/json');
  assert.equal(e.topic, 'orders');
  assert.equal(e.pubsubname, 'events');
  assert.equal(e.subject, 'order-1');
  assert.match(String(e.time), RFC3339);
  assert.equal(e.traceid, e.traceparent);
  assert.match(String(e.traceparent), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/, 'same trace, a span of its own, sampled as the caller');
  assert.notEqual(e.traceparent, traceparent);
  assert.equal(e.tracestate, 'congo=t61rcWkgMzE');
  // UseNumber: the literals reach the subscriber as written; json.Marshal escapes < > &.
  assert.match(text, /"data":\{"a":12345678901234567890,"b":1\.0,"html":"\\u003cb\\u003e\\u0026\\u003c\/b\\u003e"\}/);
  assert.equal('data_base64' in e, false);
});

test('publish - text, no content type and octet-stream: data as text, text/plain by default, data_base64 for bytes', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['mixed']);
  assert.equal((await publish(producer.port, 'events', 'mixed', 'hello <world>', { 'content-type': 'text/plain; charset=utf-8' })).status, 204);
  assert.equal((await publish(producer.port, 'events', 'mixed', Buffer.from('no type'), {})).status, 204);
  assert.equal((await publish(producer.port, 'events', 'mixed', Buffer.from([0, 1, 2, 255]), { 'content-type': 'application/octet-stream' })).status, 204);
  assert.equal((await publish(producer.port, 'events', 'mixed', '{not json', { 'content-type': 'application/json' })).status, 204);
  const got = await one(app, 4);
  const by = (ct: string): Record<string, unknown> => got.map((d) => d.json!).find((e) => e.datacontenttype === ct)!;
  assert.equal(by('text/plain; charset=utf-8').data, 'hello <world>');
  assert.equal(by('text/plain').data, 'no type', 'no Content-Type is text/plain, as daprd');
  assert.equal(by('application/octet-stream').data_base64, 'AAEC/w==');
  assert.equal('data' in by('application/octet-stream'), false);
  assert.equal(by('application/json').data, '{not json', 'JSON that does not parse is kept as text');
});

test('publish - a body sent as application/cloudevents+json is kept, with topic, pubsubname, time and trace filled as daprd fills them', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['ce']);
  const own = { specversion: '1.0', id: 'my-id', source: 'my-source', type: 'my.type', data: { n: 1.50 }, time: '2020-01-01T00:00:00Z', topic: 'ignored' };
  assert.equal((await publish(producer.port, 'events', 'ce', JSON.stringify(own).replace('1.5', '1.50'), { 'content-type': 'application/cloudevents+json' })).status, 204);
  assert.equal((await publish(producer.port, 'events', 'ce', '{"data":"bare"}', { 'content-type': 'application/cloudevents+json' })).status, 204);
  const got = await one(app, 2);
  const mine = got.find((d) => d.json!.id === 'my-id')!;
  assert.equal(mine.json!.source, 'my-source');
  assert.equal(mine.json!.type, 'my.type');
  assert.equal(mine.json!.time, '2020-01-01T00:00:00Z');
  assert.equal(mine.json!.topic, 'ce', 'topic is always the one published to');
  assert.equal(mine.json!.pubsubname, 'events');
  assert.match(mine.body.toString(), /"data":\{"n":1\.50\}/);
  const bare = got.find((d) => d.json!.data === 'bare')!.json!;
  assert.equal(bare.source, 'Dapr', 'a CloudEvent without source gets Dapr, not the app id');
  assert.equal(bare.type, 'com.dapr.event.sent');
  assert.equal(bare.specversion, '1.0');
  assert.equal('id' in bare, false, 'daprd adds no id to an app\'s CloudEvent');
  assert.equal('datacontenttype' in bare, false);
  assert.equal(bare.traceid, bare.traceparent);
  assert.match(String(bare.time), RFC3339);
});

test('publish - ttlInSeconds writes an expiration (UTC) and an event past it is dropped, never delivered', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['ttl']);
  const before = Date.now();
  assert.equal((await publish(producer.port, 'events', 'ttl', '{"keep":true}', undefined, '?metadata.ttlInSeconds=3600')).status, 204);
  assert.equal((await publish(producer.port, 'events', 'ttl', '{"keep":false}', undefined, '?metadata.ttl=-1s')).status, 204);
  assert.equal((await publish(producer.port, 'events', 'ttl', '{"keep":"last"}')).status, 204);
  await waitFor('the last event', () => app.got.some((d) => (d.json!.data as { keep: unknown }).keep === 'last'));
  await new Promise((r) => setTimeout(r, 300));
  const kept = app.got.map((d) => d.json!);
  assert.deepEqual(kept.map((e) => (e.data as { keep: unknown }).keep).sort(), ['last', true].sort() as unknown[]);
  const withTtl = kept.find((e) => (e.data as { keep: unknown }).keep === true)!;
  assert.match(String(withTtl.expiration), /Z$/);
  const exp = Date.parse(String(withTtl.expiration));
  assert.ok(exp >= before + 3599_000 - 1000 && exp <= Date.now() + 3600_000, `expiration ${String(withTtl.expiration)} is an hour away`);
});

test('publish - rawPayload stores the body as it is: the subscriber gets daprd\'s delivery envelope with data_base64', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['raw'], {}, { rawPayload: 'true' });
  assert.equal((await publish(producer.port, 'events', 'raw', 'plain bytes', { 'content-type': 'text/plain' }, '?metadata.rawPayload=true')).status, 204);
  const [d] = await one(app);
  const e = d!.json!;
  assert.equal(d!.headers['content-type'], 'application/cloudevents+json');
  assert.equal(Buffer.from(String(e.data_base64), 'base64').toString(), 'plain bytes');
  assert.equal(e.datacontenttype, 'application/octet-stream');
  assert.equal(e.source, 'Dapr');
  assert.equal(e.topic, 'raw');
  assert.match(String(e.id), UUID);
});

interface ErrBody {
  errorCode: string;
  message: string;
  details: Array<Record<string, unknown>>;
}

test('publish - errors as daprd answers them: status, errorCode, message and details', { timeout: 60_000 }, async (t) => {
  const dir = resources({
    'pubsub.yaml': pubsubYaml('events', { publishingScopes: 'producer=allowed-topic', allowedTopics: 'allowed-topic,other' }),
  });
  const sc = await sidecarOn(dir, 'producer', { maxBodyBytes: 64 });
  t.after(() => sc.close());
  const cases: Array<{ path: string; body?: string; ct?: string; status: number; code: string; message: string; reason: string; resource: boolean; meta?: Record<string, string> }> = [
    { path: '/v1.0/publish/nope/orders', status: 404, code: 'ERR_PUBSUB_NOT_FOUND', message: 'pubsub nope is not found', reason: 'DAPR_PUBSUB_NOT_FOUND', resource: false, meta: {} },
    { path: '/v1.0/publish/events/', status: 404, code: 'ERR_TOPIC_NAME_EMPTY', message: 'topic is empty in pubsub events', reason: 'DAPR_PUBSUB_TOPIC_NAME_EMPTY', resource: true },
    { path: '/v1.0/publish/events/allowed-topic?metadata.rawPayload=yes', status: 400, code: 'ERR_PUBSUB_REQUEST_METADATA', message: "failed deserializing metadata. Error: rawPayload value must be a valid boolean: actual is 'yes'", reason: 'DAPR_PUBSUB_METADATA_DESERIALIZATION', resource: true, meta: { rawPayload: 'yes' } },
    { path: '/v1.0/publish/events/allowed-topic', body: '[1,2]', ct: 'application/cloudevents+json', status: 500, code: 'ERR_PUBSUB_CLOUD_EVENTS_SER', message: 'cannot create cloudevent', reason: 'DAPR_PUBSUB_CLOUD_EVENT_CREATION', resource: true },
    { path: '/v1.0/publish/events/other', status: 403, code: 'ERR_PUBSUB_FORBIDDEN', message: 'topic other is not allowed for app id producer', reason: 'DAPR_PUBSUB_FORBIDDEN', resource: true },
    { path: '/v1.0/publish/events/not-allowed', status: 403, code: 'ERR_PUBSUB_FORBIDDEN', message: 'topic not-allowed is not allowed for app id producer', reason: 'DAPR_PUBSUB_FORBIDDEN', resource: true },
    { path: '/v1.0/publish/events/allowed-topic', body: 'x'.repeat(100), status: 500, code: 'ERR_PUBSUB_PUBLISH_MESSAGE', message: 'error when publishing to topic allowed-topic in pubsub events: http: request body too large', reason: 'DAPR_PUBSUB_PUBLISH_MESSAGE', resource: true },
  ];
  for (const c of cases) {
    const res = await fetch(`http://127.0.0.1:${sc.port}${c.path}`, { method: 'POST', body: c.body ?? '{}', headers: { 'content-type': c.ct ?? 'application/json' } });
    const text = await res.text();
    assert.equal(res.status, c.status, `${c.path}: ${text}`);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const b = JSON.parse(text) as ErrBody;
    assert.deepEqual(Object.keys(b), ['errorCode', 'message', 'details']);
    assert.equal(b.errorCode, c.code, c.path);
    assert.equal(b.message, c.message, c.path);
    const info = b.details.at(-1)!;
    assert.equal(info['@type'], 'type.googleapis.com/google.rpc.ErrorInfo');
    assert.equal(info.domain, 'dapr.io');
    assert.equal(info.reason, c.reason);
    if (c.meta) assert.deepEqual(info.metadata, c.meta);
    assert.equal(b.details.length, c.resource ? 2 : 1, `${c.path}: ResourceInfo ${c.resource ? 'present' : 'absent'}`);
    if (c.resource) assert.deepEqual(b.details[0], { '@type': 'type.googleapis.com/google.rpc.ResourceInfo', description: c.message, owner: '', resource_name: 'events', resource_type: 'pubsub' });
  }
  // A path without a topic segment is no route at all.
  const none = await fetch(`http://127.0.0.1:${sc.port}/v1.0/publish/events`, { method: 'POST', body: '{}' });
  assert.equal(none.status, 404);
  assert.equal(((await none.json()) as ErrBody).errorCode, 'ERR_NOT_FOUND');
});

test('publish - a sidecar with no pub/sub component answers 404 ERR_PUBSUB_NOT_FOUND, as daprd 1.18 does', { timeout: 60_000 }, async (t) => {
  const sc = await sidecarOn(resources({}), 'lonely');
  t.after(() => sc.close());
  const r = await publish(sc.port, 'events', 'orders', '{}');
  assert.equal(r.status, 404);
  assert.equal((JSON.parse(r.text) as ErrBody).errorCode, 'ERR_PUBSUB_NOT_FOUND');
});

test('publish - a topic with slashes and escapes is read from the path as Go\'s router reads it', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['a/b', 'c%2Fd']);
  assert.equal((await publish(producer.port, 'events', 'a/b', '{"t":1}')).status, 204);
  assert.equal((await publish(producer.port, 'events', 'c%2Fd', '{"t":2}')).status, 204);
  const got = await one(app, 2);
  assert.deepEqual(got.map((d) => d.json!.topic).sort(), ['a/b', 'c%2Fd']);
});

test('bulk publish - every entry published as its own CloudEvent; 204', { timeout: 60_000 }, async (t) => {
  const { app, producer } = await pair(t, ['bulk']);
  const entries = [
    { entryId: '1', event: { n: 1 }, contentType: 'application/json' },
    { entryID: '2', event: 'text', contentType: 'text/plain', metadata: { 'cloudevent.type': 'my.type' } },
    { entryId: '3', event: Buffer.from('bytes').toString('base64'), contentType: 'application/octet-stream' },
  ];
  const res = await fetch(`http://127.0.0.1:${producer.port}/v1.0-alpha1/publish/bulk/events/bulk`, { method: 'POST', body: JSON.stringify(entries), headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 204, await res.text());
  const got = (await one(app, 3)).map((d) => d.json!);
  assert.deepEqual(got.find((e) => e.datacontenttype === 'application/json')!.data, { n: 1 });
  const text = got.find((e) => e.datacontenttype === 'text/plain')!;
  assert.equal(text.data, 'text');
  assert.equal(text.type, 'my.type', 'an entry\'s metadata overrides the envelope as a single publish\'s does');
  assert.equal(Buffer.from(String(got.find((e) => e.datacontenttype === 'application/octet-stream')!.data_base64), 'base64').toString(), 'bytes');
  const ids = new Set(got.map((e) => String(e.traceparent).split('-')[2]));
  assert.equal(ids.size, 3, 'each entry has a span of its own');
});

test('bulk publish - a body daprd cannot read: 400 ERR_PUBSUB_EVENTS_SER with daprd\'s three messages', { timeout: 60_000 }, async (t) => {
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events') });
  const sc = await sidecarOn(dir, 'producer');
  t.after(() => sc.close());
  const bulk = async (body: string): Promise<ErrBody & { status: number }> => {
    const res = await fetch(`http://127.0.0.1:${sc.port}/v1.0-alpha1/publish/bulk/events/t`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    return { status: res.status, ...((await res.json()) as ErrBody) };
  };
  const notList = await bulk('{"entryId":"1"}');
  assert.equal(notList.status, 400);
  assert.equal(notList.errorCode, 'ERR_PUBSUB_EVENTS_SER');
  assert.match(notList.message, /^error when unmarshaling the request for topic t pubsub events: json: cannot unmarshal object/);
  assert.equal(notList.details.at(-1)!.reason, 'DAPR_PUBSUB_UNMARSHAL_EVENTS');
  const mismatch = await bulk('[{"entryId":"1","event":{"a":1},"contentType":"text/plain"}]');
  assert.equal(mismatch.message, 'error when marshalling cloud event envelope for topic t pubsub events: error: mismatch between contentType and event');
  assert.equal(mismatch.details.at(-1)!.reason, 'DAPR_PUBSUB_MARSHAL_ENVELOPE');
  const dup = await bulk('[{"entryId":"1","event":1,"contentType":"application/json"},{"entryId":"1","event":2,"contentType":"application/json"}]');
  assert.equal(dup.message, 'error marshaling events to bytes for topic t pubsub events. error: entryId is duplicated or not present for entry');
  assert.equal(dup.details.at(-1)!.reason, 'DAPR_PUBSUB_MARSHAL_EVENTS');
});

test('bulk publish - entries the broker does not take: 500 with failedEntries, errorCode and daprd\'s metadata headers', { timeout: 60_000 }, async (t) => {
  const dir = resources({ 'pubsub.yaml': pubsubYaml('events') });
  const sc = await sidecarOn(dir, 'producer', { outputBindingTimeoutMs: 300 });
  t.after(() => sc.close());
  // Another process holds the queue file's write lock: every publish waits past its bound.
  const db = new Database(path.join(dir, '.qscale', 'queue.db'));
  db.exec('BEGIN IMMEDIATE');
  t.after(() => {
    db.exec('ROLLBACK');
    db.close();
  });
  const res = await fetch(`http://127.0.0.1:${sc.port}/v1.0-alpha1/publish/bulk/events/t`, {
    method: 'POST', body: JSON.stringify([{ entryId: 'a', event: 1, contentType: 'application/json' }]), headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  assert.equal(res.status, 500, text);
  const b = JSON.parse(text) as { failedEntries: Array<{ entryId: string; error: string }>; errorCode: string };
  assert.deepEqual(Object.keys(b), ['failedEntries', 'errorCode']);
  assert.equal(b.errorCode, 'ERR_PUBSUB_PUBLISH_MESSAGE');
  assert.deepEqual(b.failedEntries.map((f) => f.entryId), ['a']);
  // The lock holder is in this process, so SQLite's busy wait ends first: the queue file's own error.
  assert.match(b.failedEntries[0]!.error, /database is locked|no answer from the broker within 300 ms/);
  assert.equal(res.headers.get('metadata.responsedata'), text);
  assert.match(res.headers.get('metadata.error') ?? '', /^api error: code = Internal desc = error when publishing to topic t in pubsub events: /);
  // A single publish fails the same way, with daprd's 500.
  const one = await publish(sc.port, 'events', 't', '{}');
  assert.equal(one.status, 500);
  assert.equal((JSON.parse(one.text) as ErrBody).errorCode, 'ERR_PUBSUB_PUBLISH_MESSAGE');
});
