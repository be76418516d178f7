/**
 * The dashboard's routes on the supervisor's control server: the page and its assets served offline, the samples,
 * the log lines, and the produce form's way to the producer with every way it can fail (no producer, not Ready,
 * gone, a caller that is not the dashboard). The producer is the real app; only the sidecar behind it is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { startControlServer } from '../../src/supervisor/control.js';
import { History } from '../../src/supervisor/history.js';
import type { SystemStatus } from '../../src/supervisor/state.js';
import type { DashboardSource } from '../../src/dashboard/routes.js';
import { buildProducer } from '../../apps/producer/app.js';
import { readProducerConfig } from '../../apps/producer/config.js';
import { quietLogger } from '../apps/support.js';

const STATUS: SystemStatus = {
  pid: 1, startedAt: 0, embedded: true, dataDir: '.qscale', producerUrl: undefined, swaggerUrl: undefined,
  replicas: [], hpa: [], scaledObjects: [], queue: undefined, queues: [], decisions: [], outlook: [],
};

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('dashboard - routes on the control server', { timeout: 60_000 }, () => {
  const history = new History(10);
  const source: DashboardSource & { url: string | undefined; appId: string | undefined } = {
    history,
    url: undefined,
    appId: 'producer',
    get producerAppId() {
      return this.appId;
    },
    producerUrl() {
      return this.url;
    },
    logs: () => ({ 'consumer-abc-1': ['Hello World -- Received at: x', 'daprd | sidecar stopped'] }),
  };
  let control: { url: string; server: FastifyInstance };
  let producer: FastifyInstance | undefined;

  before(async () => {
    control = await startControlServer(async () => STATUS, 0, source);
  }, { timeout: 30_000 });

  after(async () => {
    await control?.server.close();
    await producer?.close();
  }, { timeout: 30_000 });

  const post = (body: string, headers: Record<string, string> = {}) => request(`${control.url}/MessageProducer`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });

  test('dashboard - the page and its chart library are served from this machine, nothing inline or from elsewhere', async () => {
    const page = await request(`${control.url}/`);
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const html = await page.body.text();
    assert.doesNotMatch(html, /https?:\/\//, 'no address of another origin in the page');
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const ref = m[1]!;
      if (ref.startsWith('data:')) continue;
      const res = await request(`${control.url}${ref}`);
      assert.equal(res.statusCode, 200, `${ref} is served`);
      await res.body.dump();
    }
    const uplot = await request(`${control.url}/dashboard/uPlot.esm.js`);
    assert.match(String(uplot.headers['content-type']), /javascript/);
    const file = createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js');
    assert.equal(await uplot.body.text(), readFileSync(file, 'utf8'), 'uPlot as the npm package ships it');
  });

  test('dashboard - an unknown asset is a 404 that names the files there are', async () => {
    const res = await request(`${control.url}/dashboard/../../package.json`);
    assert.equal(res.statusCode, 404);
    const nope = await request(`${control.url}/dashboard/secrets.txt`);
    assert.equal(nope.statusCode, 404);
    const body = (await nope.body.json()) as { errorCode: string; message: string };
    assert.equal(body.errorCode, 'ERR_NOT_FOUND');
    assert.match(body.message, /no dashboard file 'secrets\.txt' \(files: app\.js, style\.css, uPlot\.esm\.js, uPlot\.min\.css\)/);
    await res.body.dump();
  });

  test('history - gives the samples after `since`; a since that is not a time is a 400 naming it', async () => {
    for (const at of [1000, 2000, 3000]) history.push({ at, scaledObjects: [] });
    const all = (await (await request(`${control.url}/history`)).body.json()) as { samples: Array<{ at: number }>; periodMs: number };
    assert.deepEqual(all.samples.map((s) => s.at), [1000, 2000, 3000]);
    assert.equal(all.periodMs, 1000);
    const later = (await (await request(`${control.url}/history?since=2000`)).body.json()) as { samples: Array<{ at: number }> };
    assert.deepEqual(later.samples.map((s) => s.at), [3000]);
    const bad = await request(`${control.url}/history?since=yesterday`);
    assert.equal(bad.statusCode, 400);
    const body = (await bad.body.json()) as { errorCode: string; message: string };
    assert.equal(body.errorCode, 'ERR_BAD_REQUEST');
    assert.match(body.message, /query parameter since: 'yesterday' is not a time/);
  });

  test('logs - the last lines of each replica', async () => {
    const body = (await (await request(`${control.url}/logs`)).body.json()) as { replicas: Record<string, string[]> };
    assert.deepEqual(body.replicas['consumer-abc-1'], ['Hello World -- Received at: x', 'daprd | sidecar stopped']);
  });

  test('produce - no Ready producer yet: 503 ERR_PRODUCER_NOT_READY with Retry-After', async () => {
    source.url = undefined;
    const res = await post('{"count":1}');
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '1');
    const body = (await res.body.json()) as { errorCode: string; message: string };
    assert.equal(body.errorCode, 'ERR_PRODUCER_NOT_READY');
    assert.match(body.message, /the producer \(app producer\) has no Ready replica yet/);
  });

  test('produce - a system without a producer: 404 ERR_NO_PRODUCER', async () => {
    source.appId = undefined;
    try {
      const res = await post('{"count":1}');
      assert.equal(res.statusCode, 404);
      const body = (await res.body.json()) as { errorCode: string; message: string };
      assert.equal(body.errorCode, 'ERR_NO_PRODUCER');
      assert.match(body.message, /its run file starts none/);
    } finally {
      source.appId = 'producer';
    }
  });

  test('produce - the producer gone from its address: 502 ERR_PRODUCER_UNREACHABLE naming it, and the supervisor keeps serving', async () => {
    source.url = `http://127.0.0.1:${await closedPort()}`;
    const res = await post('{"count":1}');
    assert.equal(res.statusCode, 502);
    const body = (await res.body.json()) as { errorCode: string; message: string };
    assert.equal(body.errorCode, 'ERR_PRODUCER_UNREACHABLE');
    assert.ok(body.message.includes(`cannot reach the producer at ${source.url} (ECONNREFUSED)`), body.message);
    const status = await request(`${control.url}/status`);
    assert.equal(status.statusCode, 200);
    await status.body.dump();
  });

  test('produce - a caller that is not the dashboard (another Host or Origin) is refused with 403', async () => {
    source.url = `http://127.0.0.1:${await closedPort()}`;
    const rebound = await post('{"count":1}', { host: 'attacker.example:80' });
    assert.equal(rebound.statusCode, 403);
    assert.match(((await rebound.body.json()) as { message: string }).message, /Host 'attacker\.example:80' is not a loopback address/);
    const page = await post('{"count":1}', { origin: 'https://attacker.example' });
    assert.equal(page.statusCode, 403);
    const body = (await page.body.json()) as { errorCode: string; message: string };
    assert.equal(body.errorCode, 'ERR_FORBIDDEN');
    assert.match(body.message, /Origin 'https:\/\/attacker\.example' is not this dashboard's/);
  });

  test('produce - the producer\'s own answer comes back as it is, status and body', async () => {
    producer = await buildProducer({ config: { ...readProducerConfig({}), sidecarUrl: `http://127.0.0.1:${await closedPort()}`, port: 0 }, logger: quietLogger(), connectWaitMs: 0 });
    source.url = (await producer.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
    const bad = await post('{"count":"five"}', { origin: control.url });
    assert.equal(bad.statusCode, 400);
    const body = (await bad.body.json()) as { errorCode: string; field: string; message: string };
    assert.deepEqual([body.errorCode, body.field], ['ERR_BAD_REQUEST', 'count']);
    assert.match(body.message, /count must be a whole number/);
    const text = await post('count=1', { 'content-type': 'text/plain' });
    assert.equal(text.statusCode, 415, 'a non-JSON body reaches the producer, which refuses it');
    await text.body.dump();
    const noSidecar = await post('{"count":1}');
    assert.equal(noSidecar.statusCode, 500, 'its sidecar is not there: the producer says so itself');
    assert.match(await noSidecar.body.text(), /"sent":0/);
  });
});
