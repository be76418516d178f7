import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseManifests } from '../../src/components/manifests.js';
import { loadResources, resolveResources } from '../../src/components/index.js';
import { ConfigError } from '../../src/errors.js';

const SEED = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  metadata:
  - name: connectionString
    secretKeyRef:
      name: servicebus-management
      key: servicebus-management-connectionstring
  - name: queueName
    value: "msgqueue"
---
apiVersion: v1
kind: Secret
metadata:
  name: servicebus-management
  labels:
    app: bindingconsumer
data:
  servicebus-management-connectionstring: "${Buffer.from('Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=TOPSECRET').toString('base64')}"
type: Opaque
`;

function load(text: string, opts = {}) {
  return resolveResources(parseManifests(text, 'deploy.yaml'), opts);
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('components - the seed binding-deployment.yaml resolves its secretKeyRef from the Secret in the folder', { timeout: 60_000 }, () => {
  const r = load(SEED);
  assert.equal(r.components.length, 1);
  const c = r.components[0]!;
  assert.equal(c.name, 'message-queue');
  assert.equal(c.type, 'bindings.azure.servicebusqueues');
  assert.equal(c.metadata.queueName, 'msgqueue');
  assert.match(c.metadata.connectionString!, /SharedAccessKey=TOPSECRET/);
  assert.equal(c.initTimeoutMs, 5000);
  assert.equal(c.version, 'v1');
  assert.ok(r.notices.some((n) => n.includes('no spec.version')), 'missing version is noticed');
  assert.deepEqual(c.where('queueName'), { file: 'deploy.yaml', line: 12 });
});

test('components - a missing secret names the file, line, secret and key, never a value', { timeout: 60_000 }, () => {
  const text = SEED.replace('key: servicebus-management-connectionstring', 'key: nope');
  const err = configError(() => load(text));
  assert.match(err.message, /^deploy\.yaml:9: component message-queue: metadata 'connectionString' refers to secret 'servicebus-management' key 'nope'/);
  assert.doesNotMatch(err.message, /TOPSECRET/);
});

test('components - bad base64 in a Secret is reported without echoing the value', { timeout: 60_000 }, () => {
  const text = SEED.replace(/servicebus-management-connectionstring: "[^"]+"/, 'servicebus-management-connectionstring: "not base64 !!TOPSECRET"');
  const err = configError(() => load(text));
  assert.match(err.message, /deploy\.yaml:22: Secret servicebus-management: data\.servicebus-management-connectionstring is not valid base64/);
  assert.doesNotMatch(err.message, /TOPSECRET/);
});

test('components - stringData works like data', { timeout: 60_000 }, () => {
  const r = load(`apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {conn: plain}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: q}
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - {name: host, secretKeyRef: {name: s, key: conn}}
`);
  assert.equal(r.components[0]!.metadata.host, 'plain');
});

test('components - envRef reads the environment and refuses DAPR_* and APP_API_TOKEN', { timeout: 60_000 }, () => {
  const doc = (v: string) => `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: q}
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - name: host
    envRef: ${v}
`;
  assert.equal(load(doc('RMQ_HOST'), { env: { RMQ_HOST: 'amqp://h' } }).components[0]!.metadata.host, 'amqp://h');
  assert.match(configError(() => load(doc('DAPR_API_TOKEN'), { env: { DAPR_API_TOKEN: 'x' } })).message, /deploy\.yaml:9: .*may not read DAPR_API_TOKEN/);
  assert.match(configError(() => load(doc('APP_API_TOKEN'), { env: {} })).message, /may not read APP_API_TOKEN/);
  assert.match(configError(() => load(doc('UNSET_VAR'), { env: {} })).message, /deploy\.yaml:9: .*UNSET_VAR, which is not set/);
});

test('components - scopes keep a component away from other apps', { timeout: 60_000 }, () => {
  const text = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: q}
spec: {type: bindings.rabbitmq, version: v1, metadata: []}
scopes: [consumer]
`;
  assert.equal(load(text, { appId: 'consumer' }).components.length, 1);
  const other = load(text, { appId: 'producer' });
  assert.equal(other.components.length, 0);
  assert.match(other.skipped[0]!.reason, /not in scopes/);
});

test('components - route, direction, initTimeout and ignoreErrors are read', { timeout: 60_000 }, () => {
  const r = load(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: q}
spec:
  type: bindings.rabbitmq
  version: v1
  initTimeout: 1m30s
  ignoreErrors: true
  metadata:
  - {name: route, value: /in}
  - {name: direction, value: "input, output"}
  - {name: prefetchCount, value: 5}
`);
  const c = r.components[0]!;
  assert.equal(c.initTimeoutMs, 90_000);
  assert.equal(c.ignoreErrors, true);
  assert.equal(c.metadata.route, '/in');
  assert.equal(c.metadata.direction, 'input, output');
  assert.equal(c.metadata.prefetchCount, '5');
});

test('components - each structural error names file, line and field', { timeout: 60_000 }, () => {
  const cases: Array<[string, RegExp]> = [
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\n', /deploy\.yaml:1: component q is missing spec/],
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec:\n  version: v1\n', /deploy\.yaml:4: component q: missing required field 'spec\.type'/],
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec:\n  type: bindings.x\n  version: v1\n  initTimeout: soon\n', /deploy\.yaml:7: spec\.initTimeout must be a duration/],
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec:\n  type: bindings.x\n  version: v1\n  metadata:\n  - value: 1\n', /deploy\.yaml:8: component q: spec\.metadata\[0\] is missing 'name'/],
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: Bad_Name}\nspec: {type: bindings.x, version: v1}\n', /deploy\.yaml:3: Component name 'Bad_Name' is not a valid Kubernetes name/],
    ['apiVersion: dapr.io/v2\nkind: Component\nmetadata: {name: q}\n', /deploy\.yaml:1: unsupported apiVersion 'dapr\.io\/v2'/],
    ['kind: Component\nmetadata: {name: q}\n', /deploy\.yaml:1: missing field 'apiVersion'/],
    ['apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: [1]\n', /deploy\.yaml:4: Secret data must be a mapping/],
    ['apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec:\n  type: bindings.x\n  version: v1\n  metadata:\n  - {name: a, value: x, envRef: Y}\n', /deploy\.yaml:8: .*has both value and envRef/],
    ['a: [1, 2\n', /deploy\.yaml:\d+: invalid YAML/],
  ];
  for (const [text, re] of cases) {
    assert.match(configError(() => load(text)).message, re, text);
  }
});

test('components - a component defined twice is refused with both places', { timeout: 60_000 }, () => {
  const one = 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec: {type: bindings.x, version: v1}\n';
  assert.match(configError(() => load(one + '---\n' + one)).message, /deploy\.yaml:8: component 'q' is defined twice \(first at deploy\.yaml:1\)/);
});

test('components - kinds the sidecar does not use are skipped with a reason', { timeout: 60_000 }, () => {
  const r = load(`apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: s}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: state}
spec: {type: state.redis, version: v1}
`);
  assert.deepEqual(r.skipped.map((s) => s.kind), ['Deployment', 'ScaledObject', 'Component']);
  assert.match(r.skipped[0]!.reason, /run file/);
  assert.match(r.skipped[2]!.reason, /not a binding/);
});

test('components - secretstores.local.file and local.env serve secretKeyRef through auth.secretStore', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-comp-'));
  writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify({ rabbit: { url: 'amqp://from-file' } }));
  writeFileSync(path.join(dir, 'components.yaml'), `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: files}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - {name: secretsFile, value: secrets.json}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: envs}
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - {name: prefix, value: MY_}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: a}
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - name: host
    secretKeyRef: {name: "rabbit:url"}
auth: {secretStore: files}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: b}
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - name: host
    secretKeyRef: {name: HOST, key: HOST}
auth: {secretStore: envs}
`);
  const r = await loadResources([dir], { env: { MY_HOST: 'amqp://from-env' } });
  assert.deepEqual(r.components.map((c) => [c.name, c.metadata.host]), [['a', 'amqp://from-file'], ['b', 'amqp://from-env']]);
});

test('components - an unknown secret store is named with its line', { timeout: 60_000 }, () => {
  const err = configError(() => load(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: a}
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - name: host
    secretKeyRef: {name: x}
auth:
  secretStore: vault
`));
  assert.match(err.message, /deploy\.yaml:11: component a: auth\.secretStore 'vault' is not a secret store component/);
});

test('components - a missing resources path is a clear error', { timeout: 60_000 }, async () => {
  await assert.rejects(loadResources(['/nonexistent/qscale']), /resources path '\/nonexistent\/qscale' does not exist/);
});
