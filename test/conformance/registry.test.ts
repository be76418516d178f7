/**
 * The registry is the one list of what qscale serves: every broker folder must be in it and in the conformance
 * table, and --embedded must serve every queue binding type and trigger from the embedded queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  backendDefinitions, createBackend, createScaler, describeBinding, supportedBindingTypes, triggerDefinitions,
} from '../../src/backends/registry.js';
import { EmbeddedBackend } from '../../src/backends/embedded/index.js';
import type { BackendDefinition } from '../../src/backends/types.js';
import type { ResolvedTrigger, TriggerDefinition } from '../../src/autoscaler/scaler.js';
import { createLogger } from '../../src/util/log.js';
import { componentFromYaml } from './component.js';
import { rows } from './table.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const srcBackends = path.join(repo, 'src/backends');
const distBackends = path.join(repo, 'dist/src/backends');
const logger = createLogger('registry-test').child({}, { level: 'silent' });

/** Folders under src/backends/ that hold a backend module (index.ts), relative, e.g. "rabbitmq", "azure/servicebus". */
function backendFolders(): { modules: string[]; unregisteredCode: string[] } {
  const modules: string[] = [];
  const unregisteredCode: string[] = [];
  const walk = (rel: string): void => {
    const dir = path.join(srcBackends, rel);
    const entries = fs.readdirSync(dir, { withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => e.name);
    if (rel !== '') {
      if (files.includes('index.ts')) modules.push(rel);
      else if (files.includes('backend.ts')) unregisteredCode.push(rel);
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(rel, e.name));
  };
  walk('');
  return { modules, unregisteredCode };
}

function isBackendDefinition(v: unknown): v is BackendDefinition {
  const d = v as Partial<BackendDefinition> | null;
  return !!d && Array.isArray(d.types) && typeof d.create === 'function' && typeof d.queueName === 'function';
}
function isTriggerDefinition(v: unknown): v is TriggerDefinition {
  const d = v as Partial<TriggerDefinition> | null;
  return !!d && typeof d.type === 'string' && typeof d.parseQueueParams === 'function' && typeof d.create === 'function';
}

test('registry - every backend folder is registered and has a conformance row', { timeout: 60_000 }, async () => {
  const { modules, unregisteredCode } = backendFolders();
  assert.deepEqual(unregisteredCode, [], 'folders with a backend.ts but no index.ts registering it');
  assert.ok(modules.includes('embedded'));
  const problems: string[] = [];
  for (const rel of modules) {
    const mod = (await import(pathToFileURL(path.join(distBackends, rel, 'index.js')).href)) as Record<string, unknown>;
    const defs = Object.values(mod).filter(isBackendDefinition);
    if (defs.length === 0) problems.push(`src/backends/${rel}/index.ts exports no BackendDefinition`);
    for (const d of defs) {
      if (!backendDefinitions.includes(d)) problems.push(`src/backends/${rel}: ${d.types.join(', ')} is not in backendDefinitions (src/backends/registry.ts)`);
      for (const type of d.types) {
        if (!rows.some((r) => r.type === type)) problems.push(`src/backends/${rel}: ${type} has no row in test/conformance/table.ts`);
      }
    }
    for (const trig of Object.values(mod).filter(isTriggerDefinition)) {
      if (!triggerDefinitions.includes(trig)) problems.push(`src/backends/${rel}: trigger ${trig.type} is not in triggerDefinitions`);
    }
  }
  assert.deepEqual(problems, []);
});

test('registry - lists are sorted, so adding a broker is one line in the right place', { timeout: 60_000 }, () => {
  const types = backendDefinitions.map((d) => d.types[0] ?? '');
  assert.deepEqual(types, [...types].sort());
  const triggers = triggerDefinitions.map((d) => d.type);
  assert.deepEqual(triggers, [...triggers].sort());
});

test('registry - an unknown binding type names the component, the file:line and what is supported', { timeout: 60_000 }, () => {
  const c = componentFromYaml('orders', 'bindings.foo', { queueName: 'q' });
  assert.throws(() => createBackend(c, { logger, dataDir: os.tmpdir() }, { embedded: true }), (err: Error) => {
    assert.match(err.message, /^conformance\/orders\.yaml:\d+: component orders: unsupported binding type 'bindings\.foo' \(supported: .*bindings\.qscale\.embedded.*\)/);
    return true;
  });
});

test('registry - --embedded serves the seed\'s Service Bus component from the embedded queue, queue name lower-cased', { timeout: 60_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-registry-'));
  const c = componentFromYaml('message-queue', 'bindings.azure.servicebusqueues', {
    queueName: 'MsgQueue', connectionString: 'Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=s3cr3t', maxDeliveryCount: '4',
  });
  const b = createBackend(c, { logger, dataDir }, { embedded: true });
  assert.ok(b instanceof EmbeddedBackend);
  assert.equal(b.name, 'message-queue');
  assert.equal(b.type, 'bindings.azure.servicebusqueues');
  assert.equal(b.queueName, 'msgqueue');
  assert.equal(b.settings.maxDeliveryCount, 4);
  await b.init();
  await b.send(Buffer.from('{}'), {});
  assert.deepEqual(await b.depth(), { ready: 1, inFlight: 0, deadLettered: 0 });
  await b.close();
});

test('registry - --embedded serves a rabbitmq component by its queue name, its maxDeliveryCount kept', { timeout: 60_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-registry-'));
  const c = componentFromYaml('jobs', 'bindings.rabbitmq', { host: 'amqp://guest:guest@nowhere:5672', queueName: 'Jobs', maxDeliveryCount: '3' });
  const b = createBackend(c, { logger, dataDir }, { embedded: true });
  assert.ok(b instanceof EmbeddedBackend);
  assert.equal(b.queueName, 'Jobs');
  assert.equal(b.settings.maxDeliveryCount, 3);
  await b.close();
});

test('registry - a bad embedded setting carried over from the component names the field and file:line', { timeout: 60_000 }, () => {
  const c = componentFromYaml('message-queue', 'bindings.azure.servicebusqueues', { queueName: 'q', maxConcurrentHandlers: 'lots' });
  assert.throws(() => createBackend(c, { logger, dataDir: os.tmpdir() }, { embedded: true }),
    /conformance\/message-queue\.yaml:\d+: component message-queue \(bindings\.azure\.servicebusqueues\): metadata 'maxConcurrentHandlers' must be an integer, got 'lots'/);
});

test('registry - supported binding types include the seed\'s Service Bus and RabbitMQ types', { timeout: 60_000 }, () => {
  const types = supportedBindingTypes();
  for (const t of ['bindings.azure.servicebusqueues', 'bindings.rabbitmq', 'bindings.qscale.embedded']) assert.ok(types.includes(t), t);
  assert.ok((describeBinding('bindings.qscale.embedded')?.fields ?? []).some((f) => f.name === 'visibilityTimeoutInSec'));
});

function trigger(type: string, metadata: Record<string, string>): ResolvedTrigger {
  return {
    index: 0, type, metricType: 'AverageValue', metadata,
    subject: `trigger 0 (${type}) of ScaledObject consumer-scaler`,
    where: () => ({ file: 'keda/scaledobject.yaml', line: 14 }),
  };
}

const triggerCases: Array<{ name: string; type: string; metadata: Record<string, string>; want: { queue: string; target: number; activation: number } | RegExp }> = [
  { name: 'azure-servicebus defaults: messageCount 5, activation 0', type: 'azure-servicebus', metadata: { queueName: 'MsgQueue' }, want: { queue: 'msgqueue', target: 5, activation: 0 } },
  { name: 'azure-servicebus queueLength under KEDA 2 (the KEDA 1.x file is mapped by scaledobject.ts)', type: 'azure-servicebus', metadata: { queueName: 'msgqueue', queueLength: '5' }, want: /keda\/scaledobject\.yaml:14: .*queueLength is the KEDA 1\.x name of the target: KEDA 2 \(keda\.sh\/v1alpha1\) does not read it/ },
  { name: 'azure-servicebus messageCount 10, activationMessageCount 3', type: 'azure-servicebus', metadata: { queueName: 'q', messageCount: '10', activationMessageCount: '3' }, want: { queue: 'q', target: 10, activation: 3 } },
  { name: 'azure-servicebus without a queue', type: 'azure-servicebus', metadata: { messageCount: '2' }, want: /keda\/scaledobject\.yaml:14: trigger 0 \(azure-servicebus\) of ScaledObject consumer-scaler: no service bus entity given: give queueName, or topicName and subscriptionName/ },
  { name: 'rabbitmq legacy default queueLength 20', type: 'rabbitmq', metadata: { queueName: 'jobs', host: 'amqp://x' }, want: { queue: 'jobs', target: 20, activation: 0 } },
  { name: 'rabbitmq mode QueueLength value 7, activationValue 2', type: 'rabbitmq', metadata: { queueName: 'jobs', mode: 'QueueLength', value: '7', activationValue: '2' }, want: { queue: 'jobs', target: 7, activation: 2 } },
  { name: 'qscale-embedded defaults', type: 'qscale-embedded', metadata: { queueName: 'work' }, want: { queue: 'work', target: 5, activation: 0 } },
  { name: 'an unknown trigger type', type: 'kafka-ish', metadata: {}, want: /trigger 0 \(kafka-ish\) of ScaledObject consumer-scaler: unsupported trigger type 'kafka-ish' \(supported: .*azure-servicebus.*\)/ },
];

for (const c of triggerCases) {
  test(`registry - embedded scaler from ${c.name}`, { timeout: 60_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-registry-'));
    const make = (): ReturnType<typeof createScaler> => createScaler(trigger(c.type, c.metadata), { embedded: true, dataDir });
    if (c.want instanceof RegExp) {
      assert.throws(make, c.want);
      return;
    }
    const s = make();
    assert.equal(s.target, c.want.target);
    assert.equal(s.activationTarget, c.want.activation);
    assert.match(s.describes, new RegExp(`queue ${c.want.queue} `));
    assert.deepEqual(await s.metricAndActivity(), { value: 0, active: false });
    await s.close();
  });
}
