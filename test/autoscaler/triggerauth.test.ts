import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { resolveResources } from '../../src/components/index.js';
import { loadScaledObjects } from '../../src/autoscaler/index.js';
import { ConfigError } from '../../src/errors.js';
import { SEED_SCALEDOBJECT } from './fixtures.js';

const CONN = 'Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=manage;SharedAccessKey=TOPSECRET';

/** The seed's TriggerAuthentication and Secret (KEDA 1.x shape). */
const SEED_AUTH = `apiVersion: keda.k8s.io/v1alpha1
kind: TriggerAuthentication
metadata:
  name: trigger-auth-servicebus
spec:
  secretTargetRef:
  - parameter: connection
    name: servicebus-consumer-scaling
    key: servicebus-consumer-scaling-connectionstring
---
apiVersion: v1
kind: Secret
metadata:
  name: servicebus-consumer-scaling
data:
  servicebus-consumer-scaling-connectionstring: ${Buffer.from(CONN).toString('base64')}
`;

function load(text: string, env: Record<string, string> = {}) {
  const manifests = parseManifests(text, 'deploy.yaml');
  const { secrets } = resolveResources(manifests, { env: {} });
  return loadScaledObjects(manifests, { secrets, env });
}

function rejects(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    load(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('triggerauth - the seed: secretTargetRef resolves the connection from the Secret in the same folder', { timeout: 60_000 }, () => {
  const { scaledObjects, notices } = load(SEED_SCALEDOBJECT + '---\n' + SEED_AUTH);
  const t = scaledObjects[0]!.triggers[0]!;
  assert.equal(t.metadata.connection, CONN);
  assert.equal(t.metadata.queueName, 'msgqueue');
  assert.equal(t.metadata.messageCount, '5');
  assert.deepEqual(t.sensitive, ['connection']);
  assert.equal(t.subject, 'trigger 0 (azure-servicebus) of ScaledObject bindingconsumer-scaler');
  assert.deepEqual(t.where('queueName'), { file: 'deploy.yaml', line: 16 });
  assert.equal(notices.length, 1);
});

test('triggerauth - a missing secret names the TriggerAuthentication, file:line and key, never the value', { timeout: 60_000 }, () => {
  const text = SEED_SCALEDOBJECT + '---\n' + SEED_AUTH.replace('key: servicebus-consumer-scaling-connectionstring', 'key: wrong-key');
  const err = rejects(text);
  assert.match(err.message, /^deploy\.yaml:27: TriggerAuthentication trigger-auth-servicebus: secretTargetRef parameter 'connection' refers to secret 'servicebus-consumer-scaling' key 'wrong-key', not found/);
  assert.ok(!err.message.includes('TOPSECRET'));
});

test('triggerauth - authenticationRef to an absent TriggerAuthentication is an error at the trigger', { timeout: 60_000 }, () => {
  const err = rejects(SEED_SCALEDOBJECT);
  assert.match(err.message, /^deploy\.yaml:19: trigger 0 \(azure-servicebus\) of ScaledObject bindingconsumer-scaler: authenticationRef names TriggerAuthentication 'trigger-auth-servicebus', which is not in these files/);
});

const V2 = (meta: string, auth = '') => `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: s
spec:
  scaleTargetRef:
    name: consumer
  triggers:
  - type: rabbitmq
    metadata:
      queueName: q
${meta}${auth}`;

test('triggerauth - <param>FromEnv reads the target app\'s environment', { timeout: 60_000 }, () => {
  const { scaledObjects } = load(V2("      hostFromEnv: RABBIT_URL\n"), { RABBIT_URL: 'amqp://guest:guest@localhost:5672' });
  const t = scaledObjects[0]!.triggers[0]!;
  assert.equal(t.metadata.host, 'amqp://guest:guest@localhost:5672');
  assert.equal(t.metadata.hostFromEnv, undefined);
  assert.deepEqual(t.sensitive, ['host']);
  assert.equal(t.where('host').line, 12, 'a parameter read from the environment points at its FromEnv line');
});

test('triggerauth - <param>FromEnv with the variable unset names the variable and the line', { timeout: 60_000 }, () => {
  const err = rejects(V2("      hostFromEnv: RABBIT_URL\n"));
  assert.match(err.message, /^deploy\.yaml:12: trigger 0 \(rabbitmq\) of ScaledObject s: metadata hostFromEnv reads environment variable RABBIT_URL of app 'consumer', which is not set/);
});

test('triggerauth - env entries and configMapTargetRef resolve; ClusterTriggerAuthentication works the same', { timeout: 60_000 }, () => {
  const text = V2('', `    authenticationRef:
      name: rabbit
      kind: ClusterTriggerAuthentication
---
apiVersion: keda.sh/v1alpha1
kind: ClusterTriggerAuthentication
metadata:
  name: rabbit
spec:
  env:
  - parameter: host
    name: RABBIT_URL
    containerName: consumer
  configMapTargetRef:
  - parameter: vhostName
    name: rabbit-settings
    key: vhost
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: rabbit-settings
data:
  vhost: orders
`);
  const t = load(text, { RABBIT_URL: 'amqp://localhost' }).scaledObjects[0]!.triggers[0]!;
  assert.equal(t.metadata.host, 'amqp://localhost');
  assert.equal(t.metadata.vhostName, 'orders');
});

test('triggerauth - an env entry whose variable is unset is an error naming the TriggerAuthentication', { timeout: 60_000 }, () => {
  const text = V2('', `    authenticationRef:
      name: rabbit
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: rabbit
spec:
  env:
  - parameter: host
    name: RABBIT_URL
`);
  const err = rejects(text);
  assert.match(err.message, /^deploy\.yaml:21: TriggerAuthentication rabbit: env parameter 'host' reads environment variable RABBIT_URL of app 'consumer', which is not set/);
});

test('triggerauth - cloud secret managers are accepted with a notice that they stay unresolved locally', { timeout: 60_000 }, () => {
  const text = V2('', `    authenticationRef:
      name: vault
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: vault
spec:
  azureKeyVault:
    vaultUri: https://v.vault.azure.net
    secrets:
    - parameter: connection
      name: sb
`);
  const { notices } = load(text);
  assert.deepEqual(notices, ['deploy.yaml:15: TriggerAuthentication vault: azureKeyVault cannot be resolved locally; those parameters stay unset']);
});

test('triggerauth - schema errors: secretTargetRef without key, unknown field', { timeout: 60_000 }, () => {
  const base = V2('', `    authenticationRef:
      name: a
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: a
spec:
`);
  let err = rejects(base + '  secretTargetRef:\n  - parameter: p\n    name: s\n');
  assert.match(err.message, /^deploy\.yaml:21: TriggerAuthentication a: missing required field spec\.secretTargetRef\[0\]\.key/);
  err = rejects(base + '  secretTargetRefs: []\n');
  assert.match(err.message, /unknown field spec\.secretTargetRefs \(did you mean 'secretTargetRef'\?\)/);
});
