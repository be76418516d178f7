/**
 * examples/azure-servicebus loads as qscale up would read it: the Component parses as a Service Bus binding, and the
 * ScaledObject's azure-servicebus trigger gets its connection from the TriggerAuthentication's Secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadResources } from '../../../src/components/index.js';
import { loadScaledObjects } from '../../../src/autoscaler/index.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import { parseServiceBusTrigger } from '../../../src/backends/azure/servicebus/trigger.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const folder = path.resolve(here, '../../../../examples/azure-servicebus');

test('examples/azure-servicebus - the binding and the KEDA 2 trigger load and point at queue msgqueue', { timeout: 120_000 }, async () => {
  const r = await loadResources([folder], { appId: 'consumer' });
  const c = r.components.find((x) => x.name === 'message-queue');
  assert.ok(c);
  const s = parseServiceBusComponent(c);
  assert.equal(s.queueName, 'msgqueue');
  assert.equal(s.maxConcurrentHandlers, 1);
  const { scaledObjects } = loadScaledObjects(r.manifests, { secrets: r.secrets, env: {} });
  const so = scaledObjects[0];
  assert.ok(so);
  const trig = so.triggers[0];
  assert.ok(trig);
  assert.equal(trig.type, 'azure-servicebus');
  const t = parseServiceBusTrigger(trig);
  assert.deepEqual(t.entity, { kind: 'queue', queueName: 'msgqueue' });
  assert.equal(t.target, 5);
  assert.equal(t.activationTarget, 0);
  assert.match(t.host, /servicebus\.windows\.net$/);
});
