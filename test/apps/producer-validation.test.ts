import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig } from '../../apps/producer/config.js';
import { startFakeSidecar, quietLogger } from './support.js';

interface Case {
  name: string;
  payload?: string;
  contentType?: string;
  field: string;
  says: RegExp;
}

const CASES: Case[] = [
  { name: 'count missing', payload: '{"intervalMilliseconds": 0}', field: 'count', says: /count is missing/ },
  { name: 'intervalMilliseconds missing', payload: '{"count": 1}', field: 'intervalMilliseconds', says: /intervalMilliseconds is missing/ },
  { name: 'negative count', payload: '{"count": -1, "intervalMilliseconds": 0}', field: 'count', says: /count must not be negative, got -1/ },
  { name: 'negative interval', payload: '{"count": 1, "intervalMilliseconds": -5}', field: 'intervalMilliseconds', says: /must not be negative, got -5/ },
  { name: 'non-integer count', payload: '{"count": 1.5, "intervalMilliseconds": 0}', field: 'count', says: /whole number, got 1.5/ },
  { name: 'non-integer interval', payload: '{"count": 1, "intervalMilliseconds": 0.25}', field: 'intervalMilliseconds', says: /whole number, got 0.25/ },
  { name: 'count as a string', payload: '{"count": "5", "intervalMilliseconds": 0}', field: 'count', says: /got the string "5"/ },
  { name: 'count null', payload: '{"count": null, "intervalMilliseconds": 0}', field: 'count', says: /got null/ },
  { name: 'absurd count', payload: '{"count": 100001, "intervalMilliseconds": 0}', field: 'count', says: /at most 100000, got 100001/ },
  { name: 'absurd interval', payload: '{"count": 1, "intervalMilliseconds": 3600001}', field: 'intervalMilliseconds', says: /at most 3600000 ms/ },
  { name: 'body an array', payload: '[1, 0]', field: 'body', says: /JSON object.*got an array/ },
  { name: 'body a number', payload: '5', field: 'body', says: /JSON object.*got number 5/ },
  { name: 'wrong JSON', payload: '{"count": 1,', field: 'body', says: /not valid JSON/ },
  { name: 'empty body', payload: '', field: 'body', says: /body is empty/ },
  { name: 'wrong content-type', payload: 'count=1&intervalMilliseconds=0', contentType: 'application/x-www-form-urlencoded', field: 'content-type', says: /content-type must be application\/json, got application\/x-www-form-urlencoded/ },
  { name: 'text/plain', payload: '{"count": 1, "intervalMilliseconds": 0}', contentType: 'text/plain', field: 'content-type', says: /must be application\/json/ },
];

test('producer - every bad body gets a 400 naming the field, and nothing is sent', async (t) => {
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

test('producer - a bad environment is refused with the variable named', () => {
  assert.throws(() => readProducerConfig({ DAPR_HTTP_PORT: 'abc' }), /DAPR_HTTP_PORT='abc'/);
  assert.throws(() => readProducerConfig({ APP_PORT: '70000' }), /APP_PORT='70000'/);
  assert.throws(() => readProducerConfig({ BINDING_NAME: 'a/b' }), /BINDING_NAME='a\/b'/);
  assert.equal(readProducerConfig({ PORT: '8080' }).port, 8080);
  assert.equal(readProducerConfig({ APP_PORT: '5001', PORT: '8080' }).port, 5001);
  assert.equal(readProducerConfig({}).sidecarUrl, 'http://127.0.0.1:3500');
  assert.equal(readProducerConfig({ DAPR_HTTP_ENDPOINT: 'http://10.0.0.5:3501/' }).sidecarUrl, 'http://10.0.0.5:3501');
});
