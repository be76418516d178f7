/**
 * CloudEvent envelopes against daprd's rules (components-contrib pubsub/envelope.go, dapr pkg/runtime/pubsub/
 * cloudevents.go): defaults, cloudevent.* metadata overrides, an app's own CloudEvent completed, ttl, expiry, the
 * rawPayload delivery envelope, trace context, and the bytes json.Marshal writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyTtl, childSpan, envelopeBytes, hasExpired, newCloudEvent, rawPayloadEvent, rfc3339, type CloudEvent,
} from '../../src/pubsub/cloudevents.js';

const trace = { traceparent: '00-11111111111111111111111111111111-2222222222222222-01', tracestate: 'k=v' };
const base = { appId: 'app', topic: 't', pubsubName: 'ps', trace, metadata: {}, now: new Date('2026-05-04T03:02:01.999Z') };

function built(o: Partial<Parameters<typeof newCloudEvent>[0]> & { data: Buffer; contentType: string }): CloudEvent {
  const r = newCloudEvent({ ...base, ...o });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.envelope;
}

test('envelope - daprd\'s fields and defaults; cloudevent.* metadata overrides, case-insensitive; traceparent supersedes traceid', { timeout: 30_000 }, () => {
  const e = built({ data: Buffer.from('{"x":1}'), contentType: 'application/json' });
  assert.deepEqual(Object.keys(e).sort(), ['data', 'datacontenttype', 'id', 'pubsubname', 'source', 'specversion', 'time', 'topic', 'traceid', 'traceparent', 'tracestate', 'type']);
  assert.equal(e.traceid, trace.traceparent);
  assert.equal(e.tracestate, 'k=v');
  const o = built({
    data: Buffer.from('x'), contentType: 'text/plain',
    metadata: { 'CloudEvent.ID': 'my-id', 'cloudevent.source': '', 'cloudevent.type': 'my.type', 'cloudevent.traceid': 'tid', 'cloudevent.traceparent': 'tp', 'cloudevent.subject': 's', 'cloudevent.topic': 'no' },
  });
  assert.equal(o.id, 'my-id');
  assert.equal(o.source, 'Dapr', 'an empty source override falls back to Dapr');
  assert.equal(o.type, 'my.type');
  assert.equal(o.traceid, 'tp');
  assert.equal(o.traceparent, 'tp');
  assert.equal(o.subject, 's');
  assert.equal(o.topic, 't', 'topic cannot be overridden');
});

test('envelope - an app\'s CloudEvent: only what is missing is filled; traceid decides both trace fields; topic and pubsubname set', { timeout: 30_000 }, () => {
  const withTrace = newCloudEvent({ ...base, contentType: 'application/cloudevents+json; charset=utf-8', data: Buffer.from('{"traceid":"mine","source":null,"time":null}') });
  assert.ok(withTrace.ok);
  assert.deepEqual(withTrace.envelope, { traceid: 'mine', source: 'Dapr', time: null, tracestate: 'k=v', topic: 't', pubsubname: 'ps', type: 'com.dapr.event.sent', specversion: '1.0' });
  const onlyParent = newCloudEvent({ ...base, contentType: 'application/cloudevents+json', data: Buffer.from('{"traceparent":"theirs"}') });
  assert.ok(onlyParent.ok);
  assert.equal(onlyParent.envelope.traceparent, trace.traceparent, 'without traceid, daprd overwrites traceparent too');
  for (const bad of ['', 'null', '"s"', '{"a":']) assert.equal(newCloudEvent({ ...base, contentType: 'application/cloudevents+json', data: Buffer.from(bad) }).ok, false, bad);
});

test('envelope - json.Marshal bytes: sorted keys, number literals as written, <>& escaped, the first JSON value only', { timeout: 30_000 }, () => {
  const e = built({ data: Buffer.from('{"z": 1e3, "a": [1.10, -0, 3]} {"ignored": true}'), contentType: 'application/json' });
  const text = envelopeBytes(e).toString();
  assert.match(text, /^\{"data":\{"a":\[1\.10,-0,3\],"z":1e3\},"datacontenttype":"application\/json","id":/);
  const html = envelopeBytes(built({ data: Buffer.from('<a href="x">&</a>'), contentType: 'text/html' })).toString();
  assert.match(html, /"data":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c\/a\\u003e"/);
});

test('ttl - expiration is now + ttl in UTC when the component does not expire messages; an unreadable ttl is ignored', { timeout: 30_000 }, () => {
  const now = new Date('2026-01-01T00:00:00.700Z');
  const e: CloudEvent = {};
  applyTtl(e, { TTLInSeconds: '90' }, false, now);
  assert.equal(e.expiration, '2026-01-01T00:01:30Z');
  const d: CloudEvent = {};
  applyTtl(d, { ttl: '1m30s' }, false, now);
  assert.equal(d.expiration, '2026-01-01T00:01:30Z');
  const zero: CloudEvent = {};
  applyTtl(zero, { ttlInSeconds: '0' }, false, now);
  assert.equal(zero.expiration, '2026-01-01T00:00:00Z', '"0" is a Go duration: expires at once');
  const unreadable: Array<Record<string, string>> = [{ ttlInSeconds: '-5' }, { ttlInSeconds: 'soon' }, { ttl: '' }];
  for (const meta of unreadable) {
    const x: CloudEvent = {};
    applyTtl(x, meta, false, now);
    assert.equal('expiration' in x, false, JSON.stringify(meta));
  }
  const own: CloudEvent = {};
  applyTtl(own, { ttlInSeconds: '5' }, true, now);
  assert.equal('expiration' in own, false, 'a component with MESSAGE_TTL expires messages itself');
  assert.equal(hasExpired({ expiration: '2026-01-01T00:00:00Z' }, Date.parse('2026-01-01T00:00:01Z')), true);
  assert.equal(hasExpired({ expiration: '2026-01-01T00:00:02+01:00' }, Date.parse('2026-01-01T00:00:01Z')), true);
  assert.equal(hasExpired({ expiration: 'tomorrow' }), false, 'an expiration that cannot be read never expires');
});

test('delivery envelope of a rawPayload subscription, trace context and RFC 3339 time', { timeout: 30_000 }, () => {
  const r = rawPayloadEvent(Buffer.from([1, 2, 3]), 'topic', 'ps', { traceparent: 'tp', tracestate: 'ts' });
  assert.deepEqual({ ...r, id: 'x' }, {
    id: 'x', specversion: '1.0', datacontenttype: 'application/octet-stream', source: 'Dapr', type: 'com.dapr.event.sent', topic: 'topic', pubsubname: 'ps',
    data_base64: 'AQID', traceparent: 'tp', traceid: 'tp', tracestate: 'ts',
  });
  assert.match(childSpan(undefined).traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.match(childSpan('00-00000000000000000000000000000000-2222222222222222-01').traceparent, /-00$/, 'an all-zero trace id is no parent');
  const child = childSpan(trace.traceparent, ' k=v ');
  assert.match(child.traceparent, /^00-11111111111111111111111111111111-[0-9a-f]{16}-01$/);
  assert.equal(child.tracestate, 'k=v');
  assert.equal(rfc3339(new Date('2026-05-04T03:02:01.999Z'), true), '2026-05-04T03:02:01Z');
});
