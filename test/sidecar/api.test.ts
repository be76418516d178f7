import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { call, componentYaml, drainQueue, sidecarFor, tempDir, writeComponents } from './support.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';

describe('sidecar API - output binding', { timeout: 60_000 }, () => {
  const dir = tempDir();
  const dataDir = path.join(dir, '.qscale');
  let sc: SidecarHandle;
  before(async () => {
    writeComponents(dir, {
      'queue.yaml': componentYaml('message-queue', { queueName: 'orders' }),
      'in-only.yaml': componentYaml('inbox', { queueName: 'inbox', direction: 'input' }),
    });
    sc = await sidecarFor(dir, { maxBodyBytes: 64 * 1024 });
  }, { timeout: 60_000 });
  after(async () => {
    await sc.close();
  }, { timeout: 60_000 });

  const post = (name: string, body: string | Buffer, method: 'POST' | 'PUT' = 'POST') =>
    call(sc.port, method, `/v1.0/bindings/${name}`, body, { 'content-type': 'application/json' });

  it('output binding - create answers 204 with an empty body and stores data as its JSON encoding', async () => {
    const values = [{ hello: 'world', n: 1 }, 'hello', 42, [1, 'two'], true];
    for (const data of values) {
      const r = await post('message-queue', JSON.stringify({ operation: 'create', data }));
      assert.equal(r.status, 204);
      assert.equal(r.text, '');
    }
    const stored = await drainQueue(dataDir, 'orders', values.length);
    assert.deepEqual(stored.map((m) => m.data.toString()), ['{"hello":"world","n":1}', '"hello"', '42', '[1,"two"]', 'true']);
  });

  it('output binding - a missing data is stored as null, PUT works like POST, metadata travels with the message', async () => {
    const r = await post('message-queue', JSON.stringify({ operation: 'create', metadata: { ttlInSeconds: '60', 'X-Tenant': 'acme' } }), 'PUT');
    assert.equal(r.status, 204);
    const [m] = await drainQueue(dataDir, 'orders', 1);
    assert.equal(m?.data.toString(), 'null');
    assert.equal(m?.metadata.ttlInSeconds, '60');
    assert.equal(m?.metadata['X-Tenant'], 'acme');
  });

  it('output binding - a body without a content type is read as JSON all the same', async () => {
    const r = await call(sc.port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: 'plain' }));
    assert.equal(r.status, 204);
    const [m] = await drainQueue(dataDir, 'orders', 1);
    assert.equal(m?.data.toString(), '"plain"');
  });

  const errorCases: Array<[string, string, number, string, RegExp]> = [
    ['not JSON', '{"operation": "create", ', 400, 'ERR_MALFORMED_REQUEST', /^failed deserializing HTTP body: /],
    ['empty body', '', 400, 'ERR_MALFORMED_REQUEST', /^failed deserializing HTTP body: unexpected end of JSON input/],
    ['a JSON array', '[1,2]', 400, 'ERR_MALFORMED_REQUEST', /^failed deserializing HTTP body: the body must be a JSON object, got array$/],
    ['operation not a string', '{"operation": 5}', 400, 'ERR_MALFORMED_REQUEST', /field 'operation' must be a string, got number/],
    ['metadata value not a string', '{"operation":"create","metadata":{"a":1}}', 400, 'ERR_MALFORMED_REQUEST', /field 'metadata.a' must be a string, got number/],
    ['no operation', '{"data": 1}', 500, 'ERR_INVOKE_OUTPUT_BINDING', /^error invoking output binding message-queue: operation field is missing from request$/],
    ['unknown operation', '{"operation": "delete", "data": 1}', 500, 'ERR_INVOKE_OUTPUT_BINDING',
      /^error invoking output binding message-queue: binding message-queue does not support operation delete\. supported operations:create$/],
  ];
  for (const [what, body, status, code, message] of errorCases) {
    it(`output binding - ${what} answers ${status} ${code}`, async () => {
      const r = await post('message-queue', body);
      assert.equal(r.status, status);
      assert.match(String(r.headers['content-type']), /application\/json/);
      const j = r.json() as { errorCode: string; message: string };
      assert.equal(j.errorCode, code);
      assert.match(j.message, message);
    });
  }

  it('output binding - an unknown binding answers 500 "couldn\'t find output binding"', async () => {
    const r = await post('nope', JSON.stringify({ operation: 'create', data: 1 }));
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), { errorCode: 'ERR_INVOKE_OUTPUT_BINDING', message: "error invoking output binding nope: couldn't find output binding nope" });
  });

  it('output binding - a component with direction input is not an output binding', async () => {
    const r = await post('inbox', JSON.stringify({ operation: 'create', data: 1 }));
    assert.equal(r.status, 500);
    assert.match((r.json() as { message: string }).message, /couldn't find output binding inbox/);
  });

  it('output binding - a body over --max-body-size whose JSON does not end within it answers 400 ERR_MALFORMED_REQUEST "stream too large", as daprd, and the sidecar keeps serving', async () => {
    const big = JSON.stringify({ operation: 'create', data: 'x'.repeat(70 * 1024) });
    const r = await post('message-queue', big);
    assert.equal(r.status, 400);
    const j = r.json() as { errorCode: string; message: string };
    assert.equal(j.errorCode, 'ERR_MALFORMED_REQUEST');
    assert.match(j.message, /^failed deserializing HTTP body: stream too large \(the body is over the limit of 65536 bytes set by --max-body-size/);
    const ok = await post('message-queue', JSON.stringify({ operation: 'create', data: 'after' }));
    assert.equal(ok.status, 204);
    const stored = await drainQueue(dataDir, 'orders', 5);
    assert.deepEqual(stored.map((m) => m.data.toString()), ['"after"']);
  });
});

describe('sidecar API - health, metadata, shutdown, unknown routes', { timeout: 60_000 }, () => {
  const dir = tempDir();
  let sc: SidecarHandle;
  let shutdowns = 0;
  before(async () => {
    writeComponents(dir, {
      'queue.yaml': componentYaml('message-queue', { queueName: 'health' }),
      'out.yaml': componentYaml('outbox', { queueName: 'outbox', direction: 'output' }),
    });
    // An app port nobody listens on: the app is never reachable.
    sc = await sidecarFor(dir, { appPort: 1, onShutdown: () => shutdowns++ });
  }, { timeout: 60_000 });
  after(async () => {
    await sc.close();
  }, { timeout: 60_000 });

  it('healthz - 500 ERR_HEALTH_NOT_READY while the app is not reachable; outbound is 204 once components loaded', async () => {
    const h = await call(sc.port, 'GET', '/v1.0/healthz');
    assert.equal(h.status, 500);
    const j = h.json() as { errorCode: string; message: string };
    assert.equal(j.errorCode, 'ERR_HEALTH_NOT_READY');
    assert.match(j.message, /app is not reachable/);
    assert.equal((await call(sc.port, 'GET', '/v1.0/healthz/outbound')).status, 204);
  });

  it("metadata - daprd's shape: id, runtimeVersion, components with binding capabilities, app connection", async () => {
    const r = await call(sc.port, 'GET', '/v1.0/metadata');
    assert.equal(r.status, 200);
    const m = r.json() as Record<string, unknown>;
    assert.equal(m.id, 'test-app');
    assert.equal(typeof m.runtimeVersion, 'string');
    const comps = (m.components as Array<{ name: string }>).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(comps, [
      { name: 'message-queue', type: 'bindings.qscale.embedded', version: 'v1', capabilities: ['INPUT_BINDING', 'OUTPUT_BINDING'] },
      { name: 'outbox', type: 'bindings.qscale.embedded', version: 'v1', capabilities: ['OUTPUT_BINDING'] },
    ]);
    assert.deepEqual(m.appConnectionProperties, { protocol: 'http', channelAddress: '127.0.0.1', port: 1 });
    const q = m.qscale as { inFlight: number; appReachable: boolean; inputBindings: Array<{ name: string; state: string }> };
    assert.equal(q.inFlight, 0);
    assert.equal(q.appReachable, false);
    assert.deepEqual(q.inputBindings.map((b) => [b.name, b.state]), [['message-queue', 'waiting-for-app']]);
  });

  it('unknown routes - 404 with ERR_NOT_FOUND naming the method and path', async () => {
    const r = await call(sc.port, 'GET', '/v1.0/state/store/key?x=1');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { errorCode: 'ERR_NOT_FOUND', message: 'no API route for GET /v1.0/state/store/key' });
    assert.equal((await call(sc.port, 'DELETE', '/v1.0/bindings/message-queue')).status, 404);
  });

  it('shutdown - 204, then a graceful stop after which the port is closed', async () => {
    const r = await call(sc.port, 'POST', '/v1.0/shutdown');
    assert.equal(r.status, 204);
    const deadline = Date.now() + 10_000;
    while (shutdowns === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.equal(shutdowns, 1);
    await assert.rejects(call(sc.port, 'GET', '/v1.0/healthz/outbound'));
  });
});

describe('sidecar API - DAPR_API_TOKEN', { timeout: 60_000 }, () => {
  const dir = tempDir();
  let sc: SidecarHandle;
  before(async () => {
    writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', { queueName: 'tokens' }) });
    sc = await sidecarFor(dir, { daprApiToken: 's3cret-token' });
  }, { timeout: 60_000 });
  after(async () => {
    await sc.close();
  }, { timeout: 60_000 });
  const body = JSON.stringify({ operation: 'create', data: 1 });

  it('token - a missing or wrong dapr-api-token answers 401 "invalid api token" in plain text', async () => {
    for (const headers of [{}, { 'dapr-api-token': 'wrong' }, { 'dapr-api-token': 's3cret-toke' }] as Array<Record<string, string>>) {
      const r = await call(sc.port, 'POST', '/v1.0/bindings/message-queue', body, headers);
      assert.equal(r.status, 401);
      assert.equal(r.text, 'invalid api token');
      assert.match(String(r.headers['content-type']), /text\/plain/);
    }
    assert.equal((await call(sc.port, 'GET', '/v1.0/metadata')).status, 401);
    assert.equal((await call(sc.port, 'GET', '/v1.0/nothing-here')).status, 401);
  });

  it('token - the right token is accepted', async () => {
    const r = await call(sc.port, 'POST', '/v1.0/bindings/message-queue', body, { 'dapr-api-token': 's3cret-token' });
    assert.equal(r.status, 204);
    assert.equal((await call(sc.port, 'GET', '/v1.0/metadata', undefined, { 'dapr-api-token': 's3cret-token' })).status, 200);
  });

  // daprd exempts GET on the two health paths (compared without surrounding slashes); HEAD is GET without a body.
  for (const method of ['GET', 'HEAD'] as const) {
    for (const route of ['/v1.0/healthz', '/v1.0/healthz/outbound', '/v1.0/healthz/', '/v1.0/healthz?appid=test-app']) {
      it(`token - ${method} ${route} answers 204 without the token, with a wrong one and with the right one`, async () => {
        for (const headers of [{}, { 'dapr-api-token': 'wrong' }, { 'dapr-api-token': 's3cret-token' }] as Array<Record<string, string>>) {
          const r = await call(sc.port, method, route, undefined, headers);
          assert.equal(r.status, 204, `${method} ${route} ${JSON.stringify(headers)}: ${r.text}`);
          assert.equal(r.text, '');
        }
      });
    }
    it(`token - ${method} /v1.0/metadata is not a health route: 401 without the token, 200 with it`, async () => {
      assert.equal((await call(sc.port, method, '/v1.0/metadata')).status, 401);
      assert.equal((await call(sc.port, method, '/v1.0/metadata', undefined, { 'dapr-api-token': 's3cret-token' })).status, 200);
    });
  }

  it('token - only GET and HEAD are exempt on the health paths', async () => {
    assert.equal((await call(sc.port, 'POST', '/v1.0/healthz')).status, 401);
    assert.equal((await call(sc.port, 'DELETE', '/v1.0/healthz/outbound')).status, 401);
    assert.equal((await call(sc.port, 'GET', '/v1.0/healthzz')).status, 401);
  });
});

describe('sidecar API - health without DAPR_API_TOKEN', { timeout: 60_000 }, () => {
  const dir = tempDir();
  let sc: SidecarHandle;
  before(async () => {
    writeComponents(dir, { 'queue.yaml': componentYaml('message-queue', { queueName: 'no-token' }) });
    sc = await sidecarFor(dir);
  }, { timeout: 60_000 });
  after(async () => {
    await sc.close();
  }, { timeout: 60_000 });

  it('health - ?appid= naming another app answers 500 ERR_HEALTH_APPID_NOT_MATCH, as daprd', async () => {
    assert.equal((await call(sc.port, 'GET', '/v1.0/healthz?appid=test-app')).status, 204);
    const r = await call(sc.port, 'GET', '/v1.0/healthz?appid=someone-else');
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), { errorCode: 'ERR_HEALTH_APPID_NOT_MATCH', message: 'dapr app-id does not match' });
  });

  it('health - HEAD answers like GET, without a body', async () => {
    for (const route of ['/v1.0/healthz', '/v1.0/healthz/outbound']) {
      const r = await call(sc.port, 'HEAD', route);
      assert.equal(r.status, 204, route);
      assert.equal(r.text, '');
    }
  });
});
