import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAIN, ROOT, copySeedManifests, runFile } from '../e2e/harness.js';
import { renderStatus } from '../../src/cli/status/run.js';
import type { SystemStatus } from '../../src/supervisor/state.js';

function qscale(args: string[], cwd = ROOT) {
  return spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env } });
}

test('validate - the seed folder reads: component, legacy ScaledObject, TriggerAuthentication, skipped kinds', { timeout: 120_000 }, () => {
  // The seed's YAML with a run file of no fixed ports: whatever else listens on 5000 on this machine does not matter.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-validate-'));
  copySeedManifests(dir);
  writeFileSync(path.join(dir, 'dapr.yaml'), runFile());
  const r = qscale(['validate', dir, '--json']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const out = JSON.parse(r.stdout) as { ok: boolean; found: Array<{ kind: string; name: string; note: string }>; notices: string[] };
  assert.equal(out.ok, true);
  const kinds = out.found.map((f) => `${f.kind}/${f.name}`);
  assert.ok(kinds.includes('Component/message-queue'), kinds.join(', '));
  assert.ok(kinds.includes('ScaledObject/bindingconsumer-scaler'), kinds.join(', '));
  assert.ok(out.found.some((f) => f.kind === 'Trigger' && /queue msgqueue, target 5/.test(f.note)));
  assert.ok(out.found.some((f) => f.kind === 'Deployment' && /skipped/.test(f.note)));
  assert.ok(out.notices.some((n) => /keda\.k8s\.io\/v1alpha1/.test(n)), 'the legacy API is noticed');
});

test('validate - a broken folder exits 2 (ERR_CONFIG) naming file:line and field', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-validate-'));
  writeFileSync(path.join(dir, 'q.yaml'), `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
  - name: connectionString
    value: "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"
`);
  const r = qscale(['validate', dir]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /q\.yaml:\d+: component message-queue \(bindings\.azure\.servicebusqueues\): missing required metadata 'queueName'/);
  assert.doesNotMatch(r.stderr, /c2VjcmV0/);
});

test('up - a folder without a run file is a clear error, before anything starts', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-up-'));
  const r = qscale(['up', dir, '--data-dir', path.join(dir, '.q')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no dapr\.yaml run file in .*: it says how to start each app/);
});

test('up - a ScaledObject whose target is no app of the run file names its line', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-up-'));
  writeFileSync(path.join(dir, 'dapr.yaml'), `version: 1\napps:\n  - appID: producer\n    appDirPath: ${ROOT}\n    command: ["node", "dist/apps/producer/main.js"]\n`);
  writeFileSync(path.join(dir, 'so.yaml'), `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: s
spec:
  scaleTargetRef:
    name: worker
  triggers:
  - type: azure-servicebus
    metadata:
      queueName: q
`);
  const r = qscale(['up', dir, '--embedded', '--data-dir', path.join(dir, '.q')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /so\.yaml:7: ScaledObject s: scaleTargetRef 'worker' matches no app of .*\(apps: producer\)/);
});

test('up - bad flags are named', { timeout: 120_000 }, () => {
  const r = qscale(['up', 'examples/seed', '--hpa-sync-period', 'often']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--hpa-sync-period: 'often' is not a duration/);
});

test('status - without a running system it says how to start one', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-status-'));
  const r = qscale(['status', '--data-dir', dir]);
  assert.equal(r.status, 3, 'ERR_NOT_RUNNING exits 3');
  assert.match(r.stderr, /no running system found .*qscale up/);
});

test('status - renders kubectl get pod / get hpa columns and the decisions with reasons', { timeout: 120_000 }, () => {
  const s: SystemStatus = {
    pid: 1, startedAt: 0, embedded: true, dataDir: '.qscale', producerUrl: 'http://127.0.0.1:5000', swaggerUrl: undefined,
    replicas: [
      { name: 'consumer-abc-1', appId: 'consumer', status: 'Running', ready: true, restarts: 0, startedAt: 0, appPort: 1, sidecarPort: 2, inFlight: 1, pids: { app: 1, sidecar: 2 }, ageSeconds: 75 },
      { name: 'consumer-abc-2', appId: 'consumer', status: 'Pending', ready: false, restarts: 1, startedAt: 0, appPort: 3, sidecarPort: 4, inFlight: 0, pids: { app: 3, sidecar: 4 }, ageSeconds: 3 },
    ],
    hpa: [{ name: 'keda-hpa-consumer-scaler', reference: 'Deployment/consumer', targets: '23/5 (avg)', minPods: 1, maxPods: 10, replicas: 2, desired: 5, active: true, paused: false, metric: 'm' }],
    scaledObjects: [{
      name: 'consumer-scaler', scaleTargetName: 'consumer', appId: 'consumer', min: 0, max: 10,
      conditions: {
        ready: { status: 'False', reason: 'TriggerError', message: 'Triggers defined in ScaledObject are not working correctly: trigger 1 (rabbitmq): connect ECONNREFUSED 127.0.0.1:1' },
        active: { status: 'True', reason: 'ScalerActive', message: 'm' },
        fallback: { status: 'False', reason: 'NoFallbackFound', message: 'm' },
        paused: { status: 'False', reason: 'ScaledObjectUnpaused', message: 'm' },
      },
      triggers: [
        { index: 0, type: 'azure-servicebus', metricType: 'AverageValue', target: 5, activationTarget: 0, describes: 'ready + in flight messages of queue msgqueue', value: 46, readAt: 0, failures: 0 },
        { index: 1, type: 'rabbitmq', metricType: 'AverageValue', target: 5, activationTarget: 0, describes: 'd', error: 'connect ECONNREFUSED 127.0.0.1:1', failingSince: 0, failures: 0 },
      ],
    }],
    queue: undefined,
    queues: [{ binding: 'message-queue', queue: 'msgqueue', ready: 40, inFlight: 6, deadLettered: 1 }],
    decisions: [{ at: 0, scaledObject: 'consumer-scaler', kind: 'hpa', from: 2, to: 5, reason: 'ceil(23/5)=5' }],
  };
  const out = renderStatus(s);
  assert.match(out, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IN FLIGHT$/m);
  assert.match(out, /^consumer-abc-1\s+2\/2\s+Running\s+0\s+75s\s+1$/m);
  assert.match(out, /^consumer-abc-2\s+0\/2\s+Pending\s+1\s+3s\s+0$/m);
  assert.match(out, /^keda-hpa-consumer-scaler\s+Deployment\/consumer\s+23\/5 \(avg\)\s+1\s+10\s+2$/m);
  assert.match(out, /QUEUE msgqueue \(message-queue\): ready 40, in flight 6, dead-lettered 1/);
  assert.match(out, /consumer-scaler\s+hpa\s+2 → 5\s+ceil\(23\/5\)=5/);
  assert.match(out, /^NAME\s+SCALETARGETNAME\s+MIN\s+MAX\s+READY\s+ACTIVE\s+FALLBACK\s+PAUSED\s+TRIGGERS$/m);
  assert.match(out, /^consumer-scaler\s+consumer\s+0\s+10\s+False\s+True\s+False\s+False\s+azure-servicebus,rabbitmq$/m);
  assert.match(out, /consumer-scaler Ready False \(TriggerError\): .*trigger 1 \(rabbitmq\): connect ECONNREFUSED/);
  assert.match(out, /consumer-scaler trigger 0 \(azure-servicebus\): 46 \(ready \+ in flight messages of queue msgqueue\); target 5 per replica, activation 0/);
  assert.match(out, /consumer-scaler trigger 1 \(rabbitmq\): ERROR connect ECONNREFUSED 127\.0\.0\.1:1/);
});
