/**
 * `qscale up` scraped as Prometheus would scrape it: the supervisor's /metrics (KEDA's names) and every sidecar's
 * (daprd's names), parsed with a real text-format parser, against `qscale status --json` at the same moment.
 * Real processes throughout: the supervisor, the seed's producer and consumer apps with their sidecars, the
 * embedded queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SystemStatus } from '../../src/supervisor/state.js';
import { MAIN, copySeedManifests, running, runFile, scaledObjectYaml, serviceBusTrigger, startUp, tempFolder, writeFiles, type UpProcess } from '../e2e/harness.js';
import { scrape, value, valueOr0 } from './scrape.js';

/** Below the activation value messages wait at 0 replicas; above it the consumer scales out (at most 3) and stays. */
const ACTIVATION = 15;
const FIRST = 12;
const SECOND = 8;

/** `qscale produce`: the seed's POST /MessageProducer through the producer app. */
function produce(up: UpProcess, count: number): void {
  execFileSync(process.execPath, [MAIN, 'produce', '--count', String(count), '--interval', '0', '--no-progress', '--data-dir', up.dataDir], { encoding: 'utf8' });
}

/** What `qscale status --json` prints. */
function statusJson(up: UpProcess): SystemStatus {
  return JSON.parse(execFileSync(process.execPath, [MAIN, 'status', '--json', '--data-dir', up.dataDir], { encoding: 'utf8' })) as SystemStatus;
}

const SO = { namespace: 'default', scaledObject: 'consumer-scaler' };
const TRIGGER = { ...SO, scaler: 'azureServiceBusScaler', triggerIndex: '0', metric: 's0-azure-servicebus-msgqueue', type: 'scaledobject' };
const HPA = { namespace: 'default', horizontalpodautoscaler: 'keda-hpa-consumer-scaler' };

/** The supervisor's KEDA gauges read what status reads. */
async function assertKedaMatchesStatus(up: UpProcess, controlUrl: string, wantValue: number): Promise<void> {
  const s = statusJson(up);
  const f = await scrape(`${controlUrl}/metrics`);
  const trigger = s.scaledObjects[0]!.triggers[0]!;
  const hpa = s.hpa[0]!;
  assert.equal(trigger.value, wantValue, 'status: the trigger value');
  assert.equal(value(f, 'keda_scaler_metrics_value', TRIGGER), trigger.value);
  assert.equal(value(f, 'keda_scaler_active', TRIGGER), trigger.value! > ACTIVATION ? 1 : 0);
  assert.equal(value(f, 'kube_horizontalpodautoscaler_status_desired_replicas', HPA), hpa.desired);
  assert.equal(value(f, 'kube_horizontalpodautoscaler_status_current_replicas', HPA), hpa.replicas);
  assert.equal(value(f, 'kube_horizontalpodautoscaler_spec_max_replicas', HPA), hpa.maxPods);
  assert.equal(value(f, 'keda_scaled_object_paused', SO), s.scaledObjects[0]!.conditions.paused.status === 'True' ? 1 : 0);
  assert.equal(value(f, 'keda_scaler_detail_errors_total', TRIGGER), 0);
  assert.equal(value(f, 'keda_scaled_object_errors_total', SO), 0);
}

test('metrics - qscale up: the supervisor\'s KEDA gauges equal status; the sidecars count every message once', { timeout: 240_000 }, async () => {
  const folder = tempFolder('qscale-metrics-up-');
  // The seed's files, its ScaledObject replaced by one that keeps the replicas while the test reads them.
  copySeedManifests(folder);
  writeFiles(folder, {
    'consumer-scaling.yaml': scaledObjectYaml({
      maxReplicaCount: 3,
      // Once out, the replicas stay: no cooldown to 0, no scale-in, while the test reads them.
      cooldownPeriod: 300,
      scaleDown: { window: 300, policy: '{type: Percent, value: 100, periodSeconds: 1}' },
      triggers: serviceBusTrigger(ACTIVATION),
    }),
    'dapr.yaml': runFile({ WORK_MS: '50' }),
  });
  const up = await startUp(folder, ['--embedded', '--hpa-sync-period', '1s']);
  try {
    const ready = await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && running(s) === 0, 60_000, 'producer ready, consumer at 0');
    const producer = ready.replicas.find((r) => r.appId === 'producer')!;
    assert.ok(producer.metricsPort && producer.metricsPort !== producer.sidecarPort && producer.metricsPort !== 9090, `the producer's sidecar has its own metrics port: ${producer.metricsPort}`);
    const control = (JSON.parse(readFileSync(path.join(up.dataDir, 'supervisor.json'), 'utf8')) as { controlUrl: string }).controlUrl;

    // Below the activation value: the messages wait, nothing runs, and the gauges say so.
    produce(up, FIRST);
    await up.waitFor((s) => s.scaledObjects[0]?.triggers[0]?.value === FIRST, 30_000, `the trigger reading ${FIRST}`);
    await assertKedaMatchesStatus(up, control, FIRST);
    assert.equal(running(await up.status()), 0);

    // Past it: the consumer scales out and every message is processed.
    produce(up, SECOND);
    const done = await up.waitFor(
      (s) => s.queue?.ready === 0 && s.queue.inFlight === 0 && s.replicas.filter((r) => r.appId === 'consumer').reduce((n, r) => n + (r.processed ?? 0), 0) === FIRST + SECOND,
      120_000,
      'every message processed',
    );
    assert.ok(running(done) >= 1);
    await up.waitFor((s) => s.scaledObjects[0]?.triggers[0]?.value === 0, 30_000, 'the trigger reading 0');
    await assertKedaMatchesStatus(up, control, 0);

    // Each sidecar's metrics: the producer's counts the sends, each consumer's what it delivered, as status counts them.
    const s = statusJson(up);
    const p = s.replicas.find((r) => r.appId === 'producer')!;
    const pf = await scrape(`http://127.0.0.1:${p.metricsPort}/metrics`);
    assert.equal(value(pf, 'dapr_component_output_binding_count', { app_id: 'producer', component: 'message-queue', operation: 'create', success: 'true' }), FIRST + SECOND);
    assert.equal(valueOr0(pf, 'dapr_component_output_binding_count', { success: 'false' }), 0);
    assert.equal(value(pf, 'dapr_http_server_request_count', { app_id: 'producer', method: 'POST', path: '/v1.0/bindings/message-queue', status: '204' }), FIRST + SECOND);
    let delivered = 0;
    const consumers = s.replicas.filter((r) => r.appId === 'consumer');
    for (const r of consumers) {
      const cf = await scrape(`http://127.0.0.1:${r.metricsPort}/metrics`);
      const n = valueOr0(cf, 'dapr_component_input_binding_count', { app_id: 'consumer', component: 'message-queue', success: 'true' });
      assert.equal(n, r.processed, `${r.name}: input binding count = what status says it processed`);
      assert.equal(valueOr0(cf, 'dapr_component_input_binding_count', { success: 'false' }), 0);
      delivered += n;
    }
    assert.equal(delivered, FIRST + SECOND, 'the consumer sidecars together delivered every message once');
    assert.equal(new Set(consumers.map((r) => r.metricsPort)).size, consumers.length, 'each replica\'s sidecar has its own metrics port');
  } finally {
    await up.stop();
  }
});
