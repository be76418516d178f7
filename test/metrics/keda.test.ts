/**
 * The supervisor's /metrics under KEDA's names and labels: a scale loop over a trigger and a target the test
 * controls, scraped and read with a real Prometheus text-format parser, against what the loop's status says.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { loadScaledObjects } from '../../src/autoscaler/index.js';
import type { Scaler } from '../../src/autoscaler/scaler.js';
import { ScaleLoop, type ScaleTarget } from '../../src/supervisor/scaleloop.js';
import { startControlServer } from '../../src/supervisor/control.js';
import type { SystemStatus } from '../../src/supervisor/state.js';
import { KedaMetrics, scalerLabel } from '../../src/metrics/keda.js';
import { family, parseMetrics, samples, scrape, value, type Families } from './scrape.js';

const KEDA_TRIGGER_LABELS = ['metric', 'namespace', 'scaledObject', 'scaler', 'triggerIndex', 'type'];

function config(name: string, extra = '') {
  const yaml = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: ${name}
${extra}spec:
  scaleTargetRef:
    name: worker
  pollingInterval: 1
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
  - type: rabbitmq
    metadata:
      queueName: jobs
      mode: QueueLength
      value: "5"
`;
  return loadScaledObjects(parseManifests(yaml, 'so.yaml'), { secrets: () => undefined, env: () => ({}) }).scaledObjects[0]!;
}

/** A trigger whose answer the test sets; `failed` counts the reads that threw. */
class FakeScaler implements Scaler {
  readonly metricName = 's0-rabbitmq-jobs';
  readonly metricType = 'AverageValue' as const;
  readonly target = 5;
  readonly activationTarget = 0;
  readonly describes = 'messages of queue jobs';
  failed = 0;
  answer: { value: number } | { error: string } = { value: 0 };
  async metricAndActivity() {
    const a = this.answer;
    if ('error' in a) {
      this.failed++;
      throw new Error(a.error);
    }
    return { value: a.value, active: a.value > 0 };
  }
  async close() {}
}

class FakeTarget implements ScaleTarget {
  readonly appId = 'worker';
  desiredReplicas = 0;
  current = 0;
  get readyCount() {
    return this.current;
  }
  async scaleTo(n: number) {
    this.desiredReplicas = n;
    this.current = n;
  }
}

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function loop(name: string, metrics?: KedaMetrics, extra = '') {
  const scaler = new FakeScaler();
  const target = new FakeTarget();
  const l = new ScaleLoop(config(name, extra), target, [scaler], {
    syncPeriodMs: 200,
    downscaleStabilizationMs: 0,
    instantActivation: false,
    record: () => undefined,
    report: () => undefined,
    ...(metrics ? { metrics } : {}),
  });
  return { l, scaler, target };
}

const triggerLabels = (scaledObject: string) => ({ namespace: 'default', scaledObject, scaler: 'rabbitMQScaler', triggerIndex: '0', metric: 's0-rabbitmq-jobs', type: 'scaledobject' });
const hpaLabels = (scaledObject: string) => ({ namespace: 'default', horizontalpodautoscaler: `keda-hpa-${scaledObject}` });

describe('keda metrics', { timeout: 60_000 }, () => {
  test('keda metrics - a read sets keda_scaler_metrics_value, _active and _latency_seconds under KEDA\'s labels; the HPA gauges equal status', async () => {
    const metrics = new KedaMetrics();
    const { l, scaler, target } = loop('worker-scaler', metrics);
    scaler.answer = { value: 12 };
    l.start();
    try {
      await until(() => target.current === 3, 'ceil(12/5) = 3 replicas');
      const f = parseMetrics(await metrics.metrics());
      const labels = triggerLabels('worker-scaler');
      const status = l.status();
      const hpa = l.hpaLine();

      assert.equal(family(f, 'keda_scaler_metrics_value', 'GAUGE').metrics.length, 1);
      assert.deepEqual(Object.keys(samples(f, 'keda_scaler_metrics_value')[0]!.labels ?? {}).sort(), KEDA_TRIGGER_LABELS);
      assert.equal(value(f, 'keda_scaler_metrics_value', labels), 12);
      assert.equal(value(f, 'keda_scaler_metrics_value', labels), status.triggers[0]!.value);
      assert.equal(value(f, 'keda_scaler_active', labels), 1);
      assert.equal(status.conditions.active.status, 'True');
      const latency = value(f, 'keda_scaler_metrics_latency_seconds', labels);
      assert.ok(latency >= 0 && latency < 3, `latency ${latency}s within the read bound`);
      assert.equal(value(f, 'keda_scaler_detail_errors_total', labels), 0, 'the error counter exists at 0 before any error');
      assert.equal(family(f, 'keda_scaled_object_errors_total', 'COUNTER').type, 'COUNTER');
      assert.equal(value(f, 'keda_scaled_object_errors_total', { namespace: 'default', scaledObject: 'worker-scaler' }), 0);
      assert.equal(value(f, 'keda_scaled_object_paused', { namespace: 'default', scaledObject: 'worker-scaler' }), 0);

      assert.equal(value(f, 'kube_horizontalpodautoscaler_status_desired_replicas', hpaLabels('worker-scaler')), hpa.desired);
      assert.equal(value(f, 'kube_horizontalpodautoscaler_status_current_replicas', hpaLabels('worker-scaler')), hpa.replicas);
      assert.equal(hpa.replicas, 3);
      assert.equal(value(f, 'kube_horizontalpodautoscaler_spec_min_replicas', hpaLabels('worker-scaler')), 1);
      assert.equal(value(f, 'kube_horizontalpodautoscaler_spec_max_replicas', hpaLabels('worker-scaler')), 10);
      assert.equal(value(f, 'keda_trigger_registered_total', { type: 'rabbitmq' }), 1);
      assert.equal(value(f, 'keda_resource_registered_total', { type: 'scaled_object', namespace: 'default' }), 1);
      assert.equal(samples(f, 'qscale_build_info').length, 1);

      // Work drains: the gauges follow.
      scaler.answer = { value: 0 };
      await until(async () => value(parseMetrics(await metrics.metrics()), 'keda_scaler_active', labels) === 0, 'keda_scaler_active 0');
      assert.equal(value(parseMetrics(await metrics.metrics()), 'keda_scaler_metrics_value', labels), 0);
    } finally {
      await l.stop();
    }
    const after = parseMetrics(await metrics.metrics());
    assert.equal(samples(after, 'keda_scaler_metrics_value').length, 0, 'a stopped ScaledObject leaves no trigger series');
    assert.equal(samples(after, 'kube_horizontalpodautoscaler_status_desired_replicas').length, 0);
    assert.equal(value(after, 'keda_resource_registered_total', { type: 'scaled_object', namespace: 'default' }), 0);
  });

  test('keda metrics - every failed read adds one to keda_scaler_detail_errors_total and keda_scaled_object_errors_total; a recovery adds none', async () => {
    const metrics = new KedaMetrics();
    const { l, scaler } = loop('failing-scaler', metrics);
    scaler.answer = { error: 'connect ECONNREFUSED 127.0.0.1:5672' };
    l.start();
    const labels = triggerLabels('failing-scaler');
    const so = { namespace: 'default', scaledObject: 'failing-scaler' };
    const counts = async (): Promise<[number, number]> => {
      const f = parseMetrics(await metrics.metrics());
      return [value(f, 'keda_scaler_detail_errors_total', labels), value(f, 'keda_scaled_object_errors_total', so)];
    };
    try {
      await until(async () => {
        const [detail, perSo] = await counts();
        return scaler.failed >= 3 && detail === scaler.failed && perSo === scaler.failed;
      }, 'three failed reads, each counted once in both counters');
      assert.equal(l.status().triggers[0]!.error, 'connect ECONNREFUSED 127.0.0.1:5672');
      scaler.answer = { value: 4 };
      await until(() => l.status().triggers[0]!.value === 4 && l.status().triggers[0]!.error === undefined, 'the trigger reads again');
      const failed = scaler.failed;
      // Reads go on every second; none of them may count as an error.
      await until(async () => value(parseMetrics(await metrics.metrics()), 'keda_scaler_metrics_value', labels) === 4, 'value 4');
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(await counts(), [failed, failed]);
    } finally {
      await l.stop();
    }
  });

  test('keda metrics - a paused ScaledObject reads keda_scaled_object_paused 1', async () => {
    const metrics = new KedaMetrics();
    const { l } = loop('paused-scaler', metrics, '  annotations:\n    autoscaling.keda.sh/paused: "true"\n');
    l.start();
    try {
      assert.equal(l.status().conditions.paused.status, 'True');
      const f = parseMetrics(await metrics.metrics());
      assert.equal(value(f, 'keda_scaled_object_paused', { namespace: 'default', scaledObject: 'paused-scaler' }), 1);
    } finally {
      await l.stop();
    }
  });

  test('keda metrics - GET /metrics on the control server serves the process\'s loops in the text format', async () => {
    const { l, scaler, target } = loop('control-scaler');
    scaler.answer = { value: 7 };
    l.start();
    const control = await startControlServer(async () => ({}) as SystemStatus);
    try {
      await until(() => target.current === 2, 'ceil(7/5) = 2 replicas');
      const f: Families = await scrape(`${control.url}/metrics`);
      assert.equal(value(f, 'keda_scaler_metrics_value', triggerLabels('control-scaler')), 7);
      assert.equal(value(f, 'kube_horizontalpodautoscaler_status_current_replicas', hpaLabels('control-scaler')), 2);
    } finally {
      await control.server.close();
      await l.stop();
    }
  });

  test('keda metrics - scaler label: the trigger\'s name, else KEDA\'s scaler type', () => {
    const rows: Array<[{ type: string; name?: string }, string]> = [
      [{ type: 'azure-servicebus' }, 'azureServiceBusScaler'],
      [{ type: 'rabbitmq' }, 'rabbitMQScaler'],
      [{ type: 'redis-streams' }, 'redisStreamsScaler'],
      [{ type: 'postgresql' }, 'postgreSQLScaler'],
      [{ type: 'nats-jetstream' }, 'natsJetStreamScaler'],
      [{ type: 'qscale-embedded' }, 'qscaleEmbeddedScaler'],
      [{ type: 'rabbitmq', name: 'orders' }, 'orders'],
    ];
    for (const [t, want] of rows) assert.equal(scalerLabel(t), want, JSON.stringify(t));
  });
});
