import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig } from '../../apps/producer/config.js';
import { quietLogger } from './support.js';

test('producer - the OpenAPI document describes POST /MessageProducer at the Swashbuckle path and /openapi.json', { timeout: 60_000 }, async () => {
  const app = await buildProducer({ config: readProducerConfig({}), logger: quietLogger() });
  try {
    for (const url of ['/swagger/v1/swagger.json', '/openapi.json']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { default?: unknown }>; required?: string[] } }> } }>> };
      assert.match(doc.openapi, /^3\./);
      const op = doc.paths['/MessageProducer']?.post;
      assert.ok(op, `${url} documents POST /MessageProducer`);
      const schema = op.requestBody?.content['application/json']?.schema;
      assert.deepEqual(Object.keys(schema?.properties ?? {}).sort(), ['count', 'intervalMilliseconds']);
      // As the seed's Swashbuckle document: int properties are optional, a missing one is 0.
      assert.equal(schema?.required, undefined);
      assert.equal(schema?.properties.count?.default, 0);
      assert.equal(schema?.properties.intervalMilliseconds?.default, 0);
      assert.equal(doc.paths['/healthz'], undefined, 'internal routes stay out of the document');
    }
  } finally {
    await app.close();
  }
});

test('producer - the Swagger UI and its assets are served locally at /swagger', { timeout: 60_000 }, async () => {
  const app = await buildProducer({ config: readProducerConfig({}), logger: quietLogger() });
  try {
    const page = await app.inject({ method: 'GET', url: '/swagger' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.body, /swagger-ui/i);
    const scripts = [...page.body.matchAll(/src="([^"]+\.js)"/g)].map((m) => m[1]!);
    assert.ok(scripts.length > 0, 'the page loads scripts');
    for (const s of scripts) {
      assert.ok(!/^https?:/.test(s), `script ${s} is served by the producer, not a CDN`);
      const url = s.startsWith('/') ? s : `/swagger/${s.replace(/^\.\//, '')}`;
      const asset = await app.inject({ method: 'GET', url });
      assert.equal(asset.statusCode, 200, url);
    }
    const spec = await app.inject({ method: 'GET', url: '/swagger/json' });
    assert.equal(spec.statusCode, 200, 'the document the UI loads');
    const legacy = await app.inject({ method: 'GET', url: '/swagger/index.html' });
    assert.ok([200, 302].includes(legacy.statusCode), 'the Swashbuckle URL of the UI still leads to it');
  } finally {
    await app.close();
  }
});
