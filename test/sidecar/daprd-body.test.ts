/**
 * POST /v1.0/bindings/{name} reads its body as daprd does (dapr/dapr pkg/api/http onOutputBindingMessage: a
 * json.Decoder over a body cut at --max-body-size, then json.Marshal of `data`): each test is one point of daprd's
 * behaviour, checked on what is stored in the queue.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { assertMalformed, call, componentYaml, drainQueue, sidecarFor, tempDir, writeComponents } from './support.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';

const LIMIT = 64 * 1024;

describe('daprd fidelity - output binding request body', { timeout: 120_000 }, () => {
  const dir = tempDir();
  const dataDir = path.join(dir, '.qscale');
  let sc: SidecarHandle;
  let unlimited: SidecarHandle;
  before(async () => {
    writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', { queueName: 'body' }) });
    sc = await sidecarFor(dir, { maxBodyBytes: LIMIT });
    unlimited = await sidecarFor(dir, { maxBodyBytes: 0 });
  }, { timeout: 60_000 });
  after(async () => {
    await Promise.all([sc.close(), unlimited.close()]);
  }, { timeout: 60_000 });

  const post = (body: string | Buffer, port = sc.port) => call(port, 'POST', '/v1.0/bindings/message-queue', body, { 'content-type': 'application/json' });
  const stored = async (max = 10): Promise<string[]> => (await drainQueue(dataDir, 'body', max)).map((m) => m.data.toString());
  const storedMeta = async (): Promise<Record<string, string> | undefined> => (await drainQueue(dataDir, 'body', 1))[0]?.metadata;
  const refused = async (body: string | Buffer, message: RegExp): Promise<void> => {
    assertMalformed(await post(body), message);
    assert.deepEqual(await stored(), [], 'nothing stored');
  };

  it('body limit - a body over --max-body-size whose JSON object ends within it is taken: the decoder never reads past the object', async () => {
    const r = await post(`{"operation":"create","data":"small"}${' '.repeat(LIMIT * 2)}`);
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await stored(), ['"small"']);
  });

  it('body limit - a body over --max-body-size is never answered 413: 400 ERR_MALFORMED_REQUEST "stream too large"', async () => {
    await refused(`{"operation":"create","data":"${'y'.repeat(LIMIT)}"}`, /stream too large/);
    await refused(' '.repeat(LIMIT + 1), /stream too large/);
  });

  it('body limit - routes that read no body answer as usual whatever its size', async () => {
    const big = 'z'.repeat(LIMIT * 2);
    assert.equal((await call(sc.port, 'POST', '/v1.0/healthz/outbound', big)).status, 404, 'no such POST route: its answer, not a body error');
    assert.equal((await call(sc.port, 'PUT', '/v1.0/metadata', big)).status, 404);
  });

  it('body limit - --max-body-size 0 is no limit', async () => {
    const data = 'w'.repeat(5 * 1024 * 1024);
    const r = await post(JSON.stringify({ operation: 'create', data }), unlimited.port);
    assert.equal(r.status, 204, r.text.slice(0, 300));
    assert.deepEqual(await stored(), [JSON.stringify(data)]);
  });

  it('trailing data - bytes after the JSON object are not read: the first object is the request', async () => {
    assert.equal((await post('{"operation":"create","data":1} trailing text, not JSON {[')).status, 204);
    assert.equal((await post('{"operation":"create","data":"first"}{"operation":"create","data":"second"}')).status, 204);
    assert.equal((await post('\n {"operation":"create","data":3}]]]')).status, 204);
    assert.deepEqual(await stored(), ['1', '"first"', '3']);
  });

  it('trailing data - a top-level null needs whitespace after it, as Go\'s scanner does: "null x" is an empty request, "nullx" is malformed', async () => {
    const empty = await post('null x');
    assert.equal(empty.status, 500);
    assert.match((empty.json() as { message: string }).message, /operation field is missing from request/);
    await refused('nullx', /./);
  });

  it('numbers - a number a float64 cannot hold answers 400 naming it (it was stored as null)', async () => {
    await refused('{"operation":"create","data":{"n":1e400}}', /cannot unmarshal number 1e400 into Go struct field OutputBindingRequest\.data of type float64/);
    await refused('{"operation":"create","data":[1, "1e999", -2e308]}', /cannot unmarshal number -2e308 /);
    await refused(`{"operation":"create","data":${'9'.repeat(400)}}`, /cannot unmarshal number 9{400} /);
  });

  it('numbers - a number too small for a float64 is 0, -0 stays -0, others are written as Go writes a float64', async () => {
    assert.equal((await post('{"operation":"create","data":[1e-400, -0, 1.0, 1e21, 0.0000001, 123456789012345678901234, 1E2]}')).status, 204);
    assert.deepEqual(await stored(), ['[0,-0,1,1e+21,1e-7,1.2345678901234569e+23,100]']);
  });

  it('numbers - a number out of range outside data is not decoded, so it is no error', async () => {
    assert.equal((await post('{"operation":"create","data":1,"other":1e400}')).status, 204);
    assert.deepEqual(await stored(), ['1']);
  });

  it('marshal - object keys are stored sorted by their bytes, as Go writes a map, at every level', async () => {
    assert.equal((await post('{"operation":"create","data":{"b":1,"a":{"d":2,"c":[{"z":0,"y":0}]},"10":0,"9":0,"é":0,"😀":0,"\uffff":0}}')).status, 204);
    assert.deepEqual(await stored(), ['{"10":0,"9":0,"a":{"c":[{"y":0,"z":0}],"d":2},"b":1,"é":0,"\uffff":0,"😀":0}']);
  });

  it('marshal - keys are sorted however the value is written: many distinct keys, a -0 beside them, nesting too deep for JSON.stringify', async () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${(i * 37) % 100}`, i]));
    const deep = '{"b":1,"a":'.repeat(5_000) + '0' + '}'.repeat(5_000);
    assert.equal((await post(JSON.stringify({ operation: 'create', data: { many, z: 0 } }))).status, 204);
    assert.equal((await post('{"operation":"create","data":{"z":{"b":-0,"a":1},"y":[]}}')).status, 204);
    assert.equal((await post(`{"operation":"create","data":${deep}}`)).status, 204);
    const sortedMany = `{${Object.keys(many).sort().map((k) => `"${k}":${many[k]}`).join(',')}}`;
    assert.deepEqual(await stored(), [
      `{"many":${sortedMany},"z":0}`,
      '{"y":[],"z":{"a":1,"b":-0}}',
      '{"a":'.repeat(5_000) + '0' + ',"b":1}'.repeat(5_000),
    ]);
  });

  it('marshal - <, >, & and U+2028/U+2029 are stored escaped, as Go escapes them for HTML', async () => {
    assert.equal((await post(JSON.stringify({ operation: 'create', data: { '<k>': 'a<b>&c\u2028d\u2029' } }))).status, 204);
    assert.deepEqual(await stored(), ['{"\\u003ck\\u003e":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029"}']);
  });

  it('decode - a lone surrogate escape becomes U+FFFD, in data, keys and metadata', async () => {
    assert.equal((await post('{"operation":"create","data":{"\\udc00k":"a\\ud800b"},"metadata":{"m":"x\\udfffy"}}')).status, 204);
    const [m] = await drainQueue(dataDir, 'body', 1);
    assert.equal(m?.data.toString(), '{"\ufffdk":"a\ufffdb"}');
    assert.equal(m?.metadata.m, 'x\ufffdy');
  });

  it('decode - field names match case-insensitively, and a repeated field is set again in order', async () => {
    assert.equal((await post('{"Operation":"create","DATA":1,"data":2}')).status, 204);
    assert.equal((await post('{"operation":"create","operation":null,"data":3}')).status, 204, 'a null operation leaves it as it was');
    assert.deepEqual(await stored(), ['2', '3']);
  });

  it('decode - a repeated metadata object adds to the first; a null metadata clears it', async () => {
    assert.equal((await post('{"operation":"create","metadata":{"a":"1"},"Metadata":{"b":"2"},"data":0}')).status, 204);
    assert.deepEqual(await storedMeta(), { a: '1', b: '2' });
    assert.equal((await post('{"operation":"create","metadata":{"a":"1"},"metadata":null,"data":0}')).status, 204);
    assert.deepEqual(await storedMeta(), {});
  });

  it('decode - a null metadata value is an empty string (it was refused)', async () => {
    assert.equal((await post('{"operation":"create","metadata":{"a":null,"b":"x"},"data":0}')).status, 204);
    assert.deepEqual(await storedMeta(), { a: '', b: 'x' });
  });
});
