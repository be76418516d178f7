import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig } from '../../apps/producer/config.js';
import { startFakeSidecar, quietLogger } from './support.js';

interface Case {
  name: string;
  payload?: string | Buffer;
  contentType?: string;
  field: string;
  says: RegExp;
}

const CASES: Case[] = [
  { name: 'negative count', payload: '{"count": -1, "intervalMilliseconds": 0}', field: 'count', says: /count must not be negative, got -1/ },
  { name: 'negative interval', payload: '{"count": 1, "intervalMilliseconds": -5}', field: 'intervalMilliseconds', says: /must not be negative, got -5/ },
  { name: 'non-integer count', payload: '{"count": 1.5, "intervalMilliseconds": 0}', field: 'count', says: /whole number, got 1.5/ },
  { name: 'non-integer interval', payload: '{"count": 1, "intervalMilliseconds": 0.25}', field: 'intervalMilliseconds', says: /whole number, got 0.25/ },
  { name: 'count as a string', payload: '{"count": "5", "intervalMilliseconds": 0}', field: 'count', says: /got the string "5"/ },
  { name: 'count null', payload: '{"count": null, "intervalMilliseconds": 0}', field: 'count', says: /got null/ },
  { name: 'interval as a string', payload: '{"count": 1, "intervalMilliseconds": "0"}', field: 'intervalMilliseconds', says: /got the string "0"/ },
  { name: 'count a boolean', payload: '{"count": true}', field: 'count', says: /got boolean true/ },
  { name: 'the last of duplicate names wins, and is checked', payload: '{"count": 1, "Count": "2"}', field: 'count', says: /got the string "2"/ },
  { name: 'absurd count', payload: '{"count": 100001, "intervalMilliseconds": 0}', field: 'count', says: /at most 100000, got 100001/ },
  { name: 'absurd interval', payload: '{"count": 1, "intervalMilliseconds": 3600001}', field: 'intervalMilliseconds', says: /at most 3600000 ms/ },
  { name: 'body an array', payload: '[1, 0]', field: 'body', says: /JSON object.*got an array/ },
  { name: 'body a number', payload: '5', field: 'body', says: /JSON object.*got number 5/ },
  { name: 'wrong JSON', payload: '{"count": 1,', field: 'body', says: /not valid JSON/ },
  { name: 'truncated JSON', payload: '{"count": 1, "intervalMilliseconds": 0', field: 'body', says: /not valid JSON/ },
  { name: 'bytes that are not UTF-8 outside a string', payload: Buffer.concat([Buffer.from('{"count": 1'), Buffer.from([0xff, 0xfe]), Buffer.from('}')]), field: 'body', says: /not valid JSON/ },
  // ASP.NET Core MVC reads JSON at most 32 levels deep.
  { name: 'JSON 33 levels deep', payload: `{"count": 1, "x": ${'['.repeat(32)}${']'.repeat(32)}}`, field: 'body', says: /exceeded max depth: JSON nested deeper than 32 levels/ },
  // As deep as the 64 KiB body limit allows.
  { name: '30,000 nested arrays', payload: '['.repeat(30_000) + ']'.repeat(30_000), field: 'body', says: /exceeded max depth/ },
  { name: '10,000 nested objects', payload: '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000), field: 'body', says: /exceeded max depth/ },
  { name: 'empty body', payload: '', field: 'body', says: /body is empty/ },
];

/** Media types the seed's input formatter did not read: 415, as there. */
const UNSUPPORTED: Array<[string, string]> = [
  ['application/x-www-form-urlencoded', 'count=1&intervalMilliseconds=0'],
  ['text/plain', '{"count": 1, "intervalMilliseconds": 0}'],
  ['application/xml', '<Produce><Count>1</Count></Produce>'],
];

test('producer - every bad body gets a 400 naming the field, and nothing is sent', { timeout: 60_000 }, async (t) => {
  const fake = await startFakeSidecar();
  const app = await buildProducer({ config: { ...readProducerConfig({}), sidecarUrl: fake.url }, logger: quietLogger(), connectWaitMs: 0 });
  try {
    for (const c of CASES) {
      await t.test(`producer - 400 on ${c.name}`, async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/MessageProducer',
          headers: { 'content-type': c.contentType ?? 'application/json' },
          payload: c.payload ?? '',
        });
        assert.equal(res.statusCode, 400, res.body);
        const body = res.json() as { errorCode: string; field: string; message: string };
        assert.equal(body.errorCode, 'ERR_BAD_REQUEST');
        assert.equal(body.field, c.field);
        assert.match(body.message, c.says);
      });
    }
    for (const [contentType, payload] of UNSUPPORTED) {
      await t.test(`producer - 415 on content-type ${contentType}`, async () => {
        const res = await app.inject({ method: 'POST', url: '/MessageProducer', headers: { 'content-type': contentType }, payload });
        assert.equal(res.statusCode, 415, res.body);
        const body = res.json() as { errorCode: string; field: string; message: string };
        assert.deepEqual([body.errorCode, body.field], ['ERR_UNSUPPORTED_MEDIA_TYPE', 'content-type']);
        assert.match(body.message, new RegExp(`content-type must be application/json .*got ${contentType.replace('+', '\\+')}`));
      });
    }
    await t.test('producer - 400 on a POST with no body and no content-type', async () => {
      const res = await app.inject({ method: 'POST', url: '/MessageProducer' });
      assert.equal(res.statusCode, 400);
      assert.equal((res.json() as { field: string }).field, 'body');
    });
    await t.test('producer - 413 on a body far larger than a request can be', async () => {
      const res = await app.inject({ method: 'POST', url: '/MessageProducer', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ count: 1, intervalMilliseconds: 0, pad: 'x'.repeat(100_000) }) });
      assert.equal(res.statusCode, 413);
      assert.equal((res.json() as { errorCode: string }).errorCode, 'ERR_BODY_TOO_LARGE');
    });
    assert.equal(fake.requests.length, 0);
    // Still serving after all of that.
    const ok = await app.inject({ method: 'POST', url: '/MessageProducer', headers: { 'content-type': 'application/json' }, payload: '{"count":1,"intervalMilliseconds":0}' });
    assert.equal(ok.statusCode, 200);
  } finally {
    await app.close();
    await fake.close();
  }
});

test('producer - fields read as the seed\'s ASP.NET binder read them: missing is 0, names in any case, JSON media types', { timeout: 60_000 }, async (t) => {
  const fake = await startFakeSidecar();
  const app = await buildProducer({ config: { ...readProducerConfig({}), sidecarUrl: fake.url }, logger: quietLogger(), connectWaitMs: 0 });
  try {
    const cases: Array<[string, string, string, number]> = [
      ['count without intervalMilliseconds sends at once', 'application/json', '{"count": 1}', 1],
      ['intervalMilliseconds without count sends nothing', 'application/json', '{"intervalMilliseconds": 5}', 0],
      ['an empty object sends nothing', 'application/json', '{}', 0],
      ['property names in any case, unknown ones ignored', 'application/json; charset=utf-8', '{"COUNT": 2, "IntervalMilliseconds": 0, "note": "x"}', 2],
      ['text/json is JSON', 'text/json', '{"count": 1}', 1],
      ['application/*+json is JSON', 'application/vnd.produce+json', '{"count": 1}', 1],
      ['32 levels deep is read', 'application/json', `{"count": 1, "x": ${'['.repeat(31)}${']'.repeat(31)}}`, 1],
    ];
    for (const [what, contentType, payload, sent] of cases) {
      await t.test(`producer - ${what}`, async () => {
        const before = fake.requests.length;
        const res = await app.inject({ method: 'POST', url: '/MessageProducer', headers: { 'content-type': contentType }, payload });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual(res.json(), { sent });
        assert.equal(fake.requests.length - before, sent);
      });
    }
  } finally {
    await app.close();
    await fake.close();
  }
});

test('producer - a bad environment is refused with the variable named', { timeout: 60_000 }, () => {
  assert.throws(() => readProducerConfig({ DAPR_HTTP_PORT: 'abc' }), /DAPR_HTTP_PORT='abc'/);
  assert.throws(() => readProducerConfig({ APP_PORT: '70000' }), /APP_PORT='70000'/);
  assert.throws(() => readProducerConfig({ BINDING_NAME: 'a/b' }), /BINDING_NAME='a\/b'/);
  assert.equal(readProducerConfig({ PORT: '8080' }).port, 8080);
  assert.equal(readProducerConfig({ APP_PORT: '5001', PORT: '8080' }).port, 5001);
  assert.equal(readProducerConfig({}).sidecarUrl, 'http://127.0.0.1:3500');
  assert.equal(readProducerConfig({ DAPR_HTTP_ENDPOINT: 'http://10.0.0.5:3501/' }).sidecarUrl, 'http://10.0.0.5:3501');
});
