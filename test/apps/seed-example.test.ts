/**
 * examples/seed as qscale reads it: the run file starts the compiled apps, the Component is the seed's, and both
 * ScaledObjects (legacy and KEDA 2) scale the consumer 0..10 on 5 messages of msgqueue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifests } from '../../src/components/manifests.js';
import { resolveResources } from '../../src/components/resources.js';
import { loadRunFile } from '../../src/supervisor/runfile.js';
import { readDeployments } from '../../src/supervisor/apps.js';
import { loadScaledObjects } from '../../src/autoscaler/index.js';

const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const SEED = path.join(ROOT, 'examples/seed');

test('seed example - dapr.yaml starts the compiled producer on 5000 and consumer on 6000', { timeout: 120_000 }, async () => {
  const rf = await loadRunFile(path.join(SEED, 'dapr.yaml'));
  assert.deepEqual(rf.notices, []);
  const byId = new Map(rf.apps.map((a) => [a.appId, a]));
  const producer = byId.get('producer');
  const consumer = byId.get('consumer');
  assert.ok(producer && consumer);
  assert.equal(producer.appPort, 5000);
  assert.equal(consumer.appPort, 6000);
  assert.equal(consumer.env.WORK_MS, '5000');
  for (const app of [producer, consumer]) {
    assert.equal(app.appDir, ROOT);
    assert.deepEqual(app.resourcesPaths, [SEED]);
    assert.equal(app.command[0], 'node');
    assert.ok(existsSync(path.join(app.appDir, app.command[1]!)), `${app.command[1]} is built`);
  }
});

test("seed example - the Component is the seed's message-queue on msgqueue with the secret's connection string", { timeout: 120_000 }, async () => {
  const r = resolveResources(await loadManifests([SEED]), { appId: 'consumer', env: {} });
  assert.equal(r.components.length, 1);
  const c = r.components[0]!;
  assert.equal(c.name, 'message-queue');
  assert.equal(c.type, 'bindings.azure.servicebusqueues');
  assert.equal(c.metadata.queueName, 'msgqueue');
  assert.match(c.metadata.connectionString ?? '', /^Endpoint=sb:\/\/example\.servicebus\.windows\.net\/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=/);
});

test('seed example - the Deployments name the Dapr app ids the ScaledObject targets', { timeout: 120_000 }, async () => {
  const deployments = readDeployments(await loadManifests([SEED]));
  assert.equal(deployments.get('consumer')?.appId, 'consumer');
  assert.equal(deployments.get('producer')?.appId, 'producer');
});

for (const [label, folder, apiVersion] of [
  ['legacy keda.k8s.io', SEED, 'keda.k8s.io/v1alpha1'],
  ['KEDA 2 keda.sh', path.join(SEED, 'keda-v2'), 'keda.sh/v1alpha1'],
] as const) {
  test(`seed example - the ${label} ScaledObject scales consumer 0..10, one replica per 5 messages of msgqueue`, { timeout: 120_000 }, async () => {
    const manifests = await loadManifests([folder]);
    const secrets = resolveResources(manifests, { env: {} }).secrets;
    const { scaledObjects } = loadScaledObjects(manifests, { secrets, env: {} });
    assert.equal(scaledObjects.length, 1, 'one ScaledObject per folder: two would fight over the consumer');
    const so = scaledObjects[0]!;
    assert.equal(so.spec.name, 'bindingconsumer-scaler');
    assert.equal(so.spec.apiVersion, apiVersion);
    assert.equal(so.spec.target, 'consumer');
    assert.equal(so.spec.minReplicaCount, 0);
    assert.equal(so.spec.maxReplicaCount, 10);
    assert.equal(so.spec.cooldownPeriod, 300);
    const t = so.triggers[0]!;
    assert.equal(t.type, 'azure-servicebus');
    assert.equal(t.metadata.queueName, 'msgqueue');
    assert.equal(t.metadata.messageCount, '5');
    assert.match(t.metadata.connection ?? '', /^Endpoint=sb:\/\/.*EntityPath=msgqueue$/, 'the TriggerAuthentication resolved through its Secret');
  });
}
