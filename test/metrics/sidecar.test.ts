/**
 * A sidecar's metrics endpoint under daprd's names and labels: messages sent through the output binding and
 * delivered to an app, then the endpoint scraped and read with a real Prometheus text-format parser, against what
 * the sidecar's own metadata says it did.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { DAPR_LATENCY_BUCKETS_MS } from '../../src/metrics/dapr.js';
import type { SidecarHandle } from '../../src/sidecar/index.js';
import { call, componentYaml, freePort, sidecarFor, spawnSidecar, startApp, tempDir, waitFor, writeComponents, type TinyApp } from '../sidecar/support.js';
import { family, samples, scrape, value, valueOr0 } from './scrape.js';

const N = 23;
const FAILING = 4;

interface Stats {
  delivered: number;
  succeeded: number;
  failed: number;
}

describe('sidecar metrics', { timeout: 120_000 }, () => {
  let dir: string;
  let app: TinyApp;
  let sidecar: SidecarHandle;
  let metricsUrl: string;

  before(async () => {
    dir = tempDir('qscale-metrics-');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: `metrics-${process.pid}`, route: '/message-queue' }) });
    // The app refuses the messages whose body says so (the sidecar answers it for them: retried, then dead-lettered).
    app = await startApp((r) => (r.method === 'OPTIONS' ? 200 : r.body.toString().includes('refuse') ? 500 : 200));
    const port = await freePort();
    sidecar = await sidecarFor(dir, { appPort: app.port, metrics: { port, listenAddress: '127.0.0.1' } });
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
  }, { timeout: 30_000 });

  after(async () => {
    await sidecar?.close();
    await app?.close();
  }, { timeout: 30_000 });

  const metadataStats = async (): Promise<Stats> => (call(sidecar.port, 'GET', '/v1.0/metadata').then((r) => (r.json() as { qscale: Stats }).qscale));

  test('sidecar metrics - N messages: the output and input binding counts are N, as the sidecar\'s metadata counts them, with daprd\'s labels and buckets', async () => {
    for (let i = 0; i < N; i++) {
      const r = await call(sidecar.port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: { n: i, id: `msg-${i}` }, metadata: { 'message-id': `id-${i}` } }));
      assert.equal(r.status, 204, r.text);
    }
    await waitFor('N deliveries acked', async () => (await metadataStats()).succeeded === N);
    const stats = await metadataStats();
    const f = await scrape(metricsUrl);

    const out = { app_id: 'test-app', component: 'message-queue', namespace: '', operation: 'create', success: 'true' };
    assert.equal(family(f, 'dapr_component_output_binding_count', 'COUNTER').metrics.length, 1, 'one series, however many messages');
    assert.deepEqual(Object.keys(samples(f, 'dapr_component_output_binding_count')[0]!.labels ?? {}).sort(), ['app_id', 'component', 'namespace', 'operation', 'success']);
    assert.equal(value(f, 'dapr_component_output_binding_count', out), N);
    assert.equal(family(f, 'dapr_component_output_binding_latencies', 'HISTOGRAM').metrics.length, 1);
    assert.equal(value(f, 'dapr_component_output_binding_latencies', out), N);

    const input = { app_id: 'test-app', component: 'message-queue', namespace: '', success: 'true' };
    assert.equal(family(f, 'dapr_component_input_binding_count', 'COUNTER').metrics.length, 1);
    assert.deepEqual(Object.keys(samples(f, 'dapr_component_input_binding_count')[0]!.labels ?? {}).sort(), ['app_id', 'component', 'namespace', 'success']);
    assert.equal(value(f, 'dapr_component_input_binding_count', input), N);
    assert.equal(value(f, 'dapr_component_input_binding_count', input), stats.succeeded);
    const latencies = samples(f, 'dapr_component_input_binding_latencies', input);
    assert.equal(latencies.length, 1);
    assert.equal(Number(latencies[0]!.count), N);
    assert.deepEqual(Object.keys(latencies[0]!.buckets ?? {}).map((le) => (le === '+Inf' ? Infinity : Number(le))).sort((a, b) => a - b), [...DAPR_LATENCY_BUCKETS_MS, Infinity], "daprd's latency buckets (ms)");
    assert.equal(Number(latencies[0]!.buckets?.['+Inf']), N);

    const post = { app_id: 'test-app', method: 'POST', path: '/v1.0/bindings/message-queue', status: '204' };
    assert.equal(value(f, 'dapr_http_server_request_count', post), N);
    assert.equal(family(f, 'dapr_http_server_latency', 'HISTOGRAM').type, 'HISTOGRAM');
    assert.equal(value(f, 'dapr_http_server_latency', post), N);
    // The metadata reads themselves are API requests too.
    assert.ok(value(f, 'dapr_http_server_request_count', { method: 'GET', path: '/v1.0/metadata', status: '200' }) >= 2);
  });

  test('sidecar metrics - failed calls and refused deliveries count as success="false"; a body that does not decode is no binding call', async () => {
    const before = await scrape(metricsUrl);
    const failedOut = (f: typeof before, component: string, operation: string): number =>
      valueOr0(f, 'dapr_component_output_binding_count', { component, operation, success: 'false' });

    assert.equal((await call(sidecar.port, 'POST', '/v1.0/bindings/no-such-binding', '{"operation":"create","data":1}')).status, 500);
    assert.equal((await call(sidecar.port, 'POST', '/v1.0/bindings/message-queue', '{"data":1}')).status, 500);
    assert.equal((await call(sidecar.port, 'POST', '/v1.0/bindings/message-queue', '{"operation":"delete"}')).status, 500);
    assert.equal((await call(sidecar.port, 'POST', '/v1.0/bindings/message-queue', '{not json')).status, 400);
    assert.equal((await call(sidecar.port, 'GET', '/no/such/route/123')).status, 404);
    const statsBefore = await metadataStats();
    for (let i = 0; i < FAILING; i++) {
      assert.equal((await call(sidecar.port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: `refuse ${i}` }))).status, 204);
    }
    await waitFor('each refused message delivered and refused at least once', async () => (await metadataStats()).failed - statsBefore.failed >= FAILING);

    // The sidecar keeps retrying the refused messages: compare with its own count at the same moment.
    const f = await scrape(metricsUrl);
    const stats = await metadataStats();
    const refusedMetric = value(f, 'dapr_component_input_binding_count', { component: 'message-queue', success: 'false' });
    assert.ok(refusedMetric >= FAILING, `refused deliveries counted: ${refusedMetric}`);
    assert.ok(refusedMetric <= stats.failed && refusedMetric >= statsBefore.failed + FAILING, `${refusedMetric} within what the sidecar counted (${statsBefore.failed + FAILING}..${stats.failed})`);

    assert.equal(failedOut(f, 'no-such-binding', 'create') - failedOut(before, 'no-such-binding', 'create'), 1);
    assert.equal(failedOut(f, 'message-queue', '') - failedOut(before, 'message-queue', ''), 1);
    assert.equal(failedOut(f, 'message-queue', 'delete') - failedOut(before, 'message-queue', 'delete'), 1);
    assert.equal(value(f, 'dapr_component_output_binding_count', { component: 'message-queue', operation: 'create', success: 'true' }), N + FAILING, 'the 400 is no binding call');
    assert.equal(value(f, 'dapr_http_server_request_count', { method: 'POST', path: '/v1.0/bindings/message-queue', status: '400' }), 1);
    assert.equal(value(f, 'dapr_http_server_request_count', { method: 'GET', path: '', status: '404' }), 1, 'a path no route serves is counted without its path');
    assert.equal(samples(f, 'dapr_http_server_request_count').filter((s) => s.labels?.path?.includes('123')).length, 0);
  });

  test('sidecar metrics - the endpoint answers GET on any path, refuses other methods with 405', async () => {
    const root = await scrape(metricsUrl.replace(/\/metrics$/, '/'));
    assert.ok(root.has('dapr_component_output_binding_count'));
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.request(metricsUrl, { method: 'POST' }, resolve).on('error', reject).end();
    });
    res.resume();
    assert.equal(res.statusCode, 405);
  });
});

describe('qscale sidecar --metrics-port', { timeout: 120_000 }, () => {
  const dir = tempDir('qscale-metrics-cli-');
  writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: `metrics-cli-${process.pid}` }) });
  const base = ['--app-id', 'cli-app', '--resources-path', dir, '--data-dir', `${dir}/.qscale`];
  const stops: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const s of stops) await s();
  }, { timeout: 30_000 });
  const start = (args: string[]) => {
    const p = spawnSidecar([...base, ...args]);
    stops.push(async () => {
      if (p.child.exitCode === null) p.child.kill('SIGTERM');
      await p.exited;
    });
    return p;
  };

  test('qscale sidecar --metrics-port - serves the metrics on the port given and says where', async () => {
    const p = start(['--metrics-port', '0']);
    const line = await p.waitForLine(/metrics server started on /);
    const port = Number(/127\.0\.0\.1:(\d+)\//.exec(line)?.[1]);
    const api = await p.apiPort();
    assert.equal((await call(api, 'POST', '/v1.0/bindings/message-queue', '{"operation":"create","data":"x"}')).status, 204);
    const f = await scrape(`http://127.0.0.1:${port}/metrics`);
    assert.equal(value(f, 'dapr_component_output_binding_count', { app_id: 'cli-app', component: 'message-queue', operation: 'create', success: 'true' }), 1);
  });

  test('qscale sidecar --metrics-port - a port in use: one line with the way out, and the API still serves', async () => {
    const busy = http.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => busy.close(r)));
    const port = (busy.address() as { port: number }).port;
    const p = start(['--metrics-port', String(port)]);
    const api = await p.apiPort();
    const line = await p.waitForLine(/metrics: cannot listen/);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${port} \\(--metrics-port\\): the port is in use; .*give a free --metrics-port, or --enable-metrics=false`));
    assert.equal((await call(api, 'GET', '/v1.0/healthz')).status, 204);
    assert.equal(p.lines.filter((l) => /metrics: cannot listen/.test(l)).length, 1);
  });

  test('qscale sidecar --metrics-port - --enable-metrics=false serves none; a bad port is refused as a flag error', async () => {
    const off = start(['--metrics-port', '0', '--enable-metrics=false']);
    await off.apiPort();
    // Every line is in once it has exited.
    off.child.kill('SIGTERM');
    assert.equal(await off.exited, 0);
    assert.ok(off.lines.some((l) => /sidecar stopped/.test(l)), off.lines.join('\n'));
    assert.equal(off.lines.filter((l) => /metrics server started/.test(l)).length, 0);

    const bad = start(['--metrics-port', 'ninety']);
    assert.equal(await bad.exited, 2);
    assert.match(bad.lines.join('\n'), /--metrics-port must be an integer from 0 to 65535, got 'ninety'/);
  });
});
