/**
 * daprd's metrics as a sidecar records them, read back through the text format: histogram buckets as daprd's
 * exporter fills them (le inclusive, cumulative, in ms), daprd's rules for zero latencies, methods and paths.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DaprMetrics } from '../../src/metrics/dapr.js';
import { METRICS_CONTENT_TYPE, promClient } from '../../src/metrics/registry.js';
import { family, parseMetrics, samples, value } from './scrape.js';

describe('dapr metrics', { timeout: 30_000 }, () => {
  test('dapr metrics - counted before prom-client is loaded, the scrape reads build info first, then every series in order', async () => {
    const m = new DaprMetrics('app', '');
    m.inputBinding('q', true, 3);
    const text = await m.metrics();
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]);
    assert.deepEqual(names.slice(0, 3), ['qscale_build_info', 'dapr_component_output_binding_count', 'dapr_component_output_binding_latencies']);
    assert.equal(value(parseMetrics(text), 'dapr_component_input_binding_count', { component: 'q' }), 1);
    m.inputBinding('q', true, 3);
    assert.equal(value(parseMetrics(await m.metrics()), 'dapr_component_input_binding_count', { component: 'q' }), 2, 'counts made after the first scrape are read too');
    assert.equal(m.contentType, promClient().Registry.PROMETHEUS_CONTENT_TYPE);
    assert.equal(METRICS_CONTENT_TYPE, promClient().Registry.PROMETHEUS_CONTENT_TYPE);
  });

  test('dapr metrics - latencies fall in daprd\'s buckets (le inclusive, cumulative); a zero latency is counted but not observed', async () => {
    const m = new DaprMetrics('app', 'ns1');
    for (const ms of [0.5, 1, 1.5, 150, 160, 200_000]) m.inputBinding('q', true, ms);
    m.inputBinding('q', true, 0);
    const f = parseMetrics(await m.metrics());
    const labels = { app_id: 'app', component: 'q', namespace: 'ns1', success: 'true' };
    assert.equal(value(f, 'dapr_component_input_binding_count', labels), 7);
    const [h] = samples(f, 'dapr_component_input_binding_latencies', labels);
    assert.ok(h);
    assert.equal(family(f, 'dapr_component_input_binding_latencies').type, 'HISTOGRAM');
    const b = h.buckets ?? {};
    assert.deepEqual([b['1'], b['2'], b['130'], b['160'], b['200'], b['100000'], b['+Inf']].map(Number), [2, 3, 3, 5, 5, 5, 6]);
    assert.equal(Number(h.count), 6);
    assert.equal(Number(h.sum), 0.5 + 1 + 1.5 + 150 + 160 + 200_000);
  });

  test('dapr metrics - series per label set: success and failure apart, one series however many calls', async () => {
    const m = new DaprMetrics('app', '');
    for (let i = 0; i < 100; i++) m.outputBinding('q', 'create', i % 10 !== 0, 2);
    const f = parseMetrics(await m.metrics());
    assert.equal(samples(f, 'dapr_component_output_binding_count').length, 2);
    assert.equal(value(f, 'dapr_component_output_binding_count', { operation: 'create', success: 'true' }), 90);
    assert.equal(value(f, 'dapr_component_output_binding_count', { operation: 'create', success: 'false' }), 10);
  });

  test('dapr metrics - HTTP requests: an unknown method reads UNKNOWN, the path loses its query and doubled slashes, latency in whole ms', async () => {
    const m = new DaprMetrics('app', '');
    m.httpServerRequest('BREW', '/v1.0/healthz', 405, 1.9);
    m.httpServerRequest('GET', '//v1.0//metadata?x=1', 200, 2.7);
    const f = parseMetrics(await m.metrics());
    assert.equal(value(f, 'dapr_http_server_request_count', { method: 'UNKNOWN', path: '/v1.0/healthz', status: '405' }), 1);
    assert.equal(value(f, 'dapr_http_server_request_count', { method: 'GET', path: '/v1.0/metadata', status: '200' }), 1);
    const [h] = samples(f, 'dapr_http_server_latency', { method: 'GET' });
    assert.equal(Number(h?.sum), 2);
    assert.equal(Number(h?.buckets?.['2']), 1);
  });
});
