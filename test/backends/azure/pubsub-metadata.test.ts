/**
 * pubsub.azure.servicebus.topics / .queues metadata against Dapr's metadata.yaml files (../shared/reference/
 * dapr-pubsub): every field declared with the same default and sensitivity, and bad values refused at file:line
 * naming the field, without ever showing the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { MetadataSpec } from '../../../src/components/metadata.js';
import {
  parseServiceBusPubSub, serviceBusQueuesPubSubMetadata, serviceBusTopicsPubSubMetadata,
} from '../../../src/backends/azure/servicebus/pubsub-metadata.js';
import { findPubSub } from '../../../src/pubsub/registry.js';
import { REF } from '../../support/crd.js';
import { compareWithReference, pubsubComponent, type ReferenceField } from '../pubsub-component.js';
import { SECRET_KEY } from './support.js';

interface RefFile {
  metadata: ReferenceField[];
  authenticationProfiles: Array<{ metadata: ReferenceField[] }>;
  builtinAuthenticationProfiles: Array<{ name: string; metadata: ReferenceField[] }>;
}

const CS = `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${SECRET_KEY}`;
const FILE = 'azure/pubsub.yaml';

/** Declared beside metadata.yaml, with why. Every other declared field must be in the yaml. */
const BESIDE_THE_YAML = new Set([
  // components-contrib's builtin "azuread" profile: the Azure AD fields every Azure component reads with namespaceName.
  'azureTenantId', 'azureClientId', 'azureClientSecret', 'azureCertificate', 'azureCertificateFile', 'azureCertificatePassword',
  'azureEnvironment', 'azureAuthMethods',
]);

/** Where qscale refuses what daprd accepts, with why. */
const NARROWER: Record<string, string> = {
  handlerTimeoutInSec: 'daprd times every handler out at once with 0; qscale refuses 0 (min 1) rather than copy that',
};

for (const [type, spec] of [['pubsub.azure.servicebus.topics', serviceBusTopicsPubSubMetadata], ['pubsub.azure.servicebus.queues', serviceBusQueuesPubSubMetadata]] as const) {
  const file = REF ? path.join(REF, 'dapr-pubsub', `${type}.metadata.yaml`) : undefined;
  const skip = file && existsSync(file) ? false : `reference metadata ../shared/reference/dapr-pubsub/${type}.metadata.yaml not found`;

  test(`servicebus pubsub metadata - ${type}: every field of Dapr's metadata.yaml is declared, with its default, type and sensitivity`, { timeout: 60_000, skip }, () => {
    const ref = parse(readFileSync(file!, 'utf8')) as RefFile;
    const refFields = [...ref.metadata, ...ref.authenticationProfiles.flatMap((p) => p.metadata), ...ref.builtinAuthenticationProfiles.flatMap((p) => p.metadata)];
    const s = spec as unknown as MetadataSpec;
    for (const r of refFields) {
      const { field, absent, fromYaml } = compareWithReference(s, r);
      if (r.name === 'consumerID') {
        // "The ID of the app": given at create, not a declared default.
        assert.equal(field.default, undefined);
      } else if (r.default !== undefined) {
        assert.deepEqual(absent, fromYaml, `default of '${r.name}'`);
      } else {
        assert.equal(field.default, undefined, `'${r.name}' has no default in Dapr`);
      }
    }
    const inYaml = new Set(refFields.map((r) => r.name));
    for (const f of s.fields) assert.ok(inYaml.has(f.name) || BESIDE_THE_YAML.has(f.name), `'${f.name}' is declared but not in metadata.yaml`);
    assert.equal(s.fields.some((f) => f.name === 'consumerID'), type.endsWith('topics'), 'consumerID: topics only');
    assert.ok(findPubSub(type), `${type} is registered`);
  });
}

test('servicebus pubsub metadata - daprd\'s pub/sub defaults: 1000 active messages, no handler limit, 60 s handler timeout', { timeout: 60_000 }, () => {
  const s = parseServiceBusPubSub(pubsubComponent('pubsub.azure.servicebus.topics', { connectionString: CS }, { file: FILE }), 'topics');
  assert.equal(s.maxActiveMessages, 1000);
  assert.equal(s.maxConcurrentHandlers, 0);
  assert.equal(s.handlerTimeoutMs, 60_000);
  assert.equal(s.lockRenewalMs, 20_000);
  assert.equal(s.timeoutMs, 60_000);
  assert.equal(s.maxRetriableErrorsPerSec, 10);
  assert.equal(s.publishMaxRetries, 5);
  assert.equal(s.publishInitialRetryIntervalMs, 500);
  assert.equal(s.disableEntityManagement, false);
  assert.equal(s.consumerID, undefined);
  assert.deepEqual(s.create, { lockDurationSec: undefined, defaultMessageTtlSec: undefined, maxDeliveryCount: undefined, autoDeleteOnIdleSec: undefined });
  const q = parseServiceBusPubSub(pubsubComponent('pubsub.azure.servicebus.queues', { connectionString: CS, consumerID: 'ignored', ttlInSeconds: '1h' }, { file: FILE }), 'queues');
  assert.equal(q.consumerID, undefined, 'queues: every app shares the queue, consumerID names nothing');
  assert.equal(q.create.defaultMessageTtlSec, 3600, "ttlInSeconds, daprd's older name of defaultMessageTimeToLiveInSec");
});

const errorCases: Array<{ name: string; metadata: Record<string, string>; line: number; field: string; message: RegExp }> = [
  { name: 'neither connectionString nor namespaceName (the component\'s line)', metadata: { consumerID: 'x' }, line: 1, field: 'connectionString',
    message: /either connectionString or namespaceName is required/ },
  { name: 'both connectionString and namespaceName', metadata: { connectionString: CS, namespaceName: 'ns.servicebus.windows.net' }, line: 11, field: 'namespaceName',
    message: /connectionString and namespaceName cannot both be specified/ },
  { name: 'a connection string without a key', metadata: { connectionString: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k' }, line: 9, field: 'connectionString',
    message: /is not a Service Bus connection string: it has no SharedAccessKey/ },
  { name: 'maxActiveMessages 0 (daprd: must be 1 or greater)', metadata: { connectionString: CS, maxActiveMessages: '0' }, line: 11, field: 'maxActiveMessages',
    message: /metadata 'maxActiveMessages' must be >= 1, got '0'/ },
  { name: 'handlerTimeoutInSec 0 (daprd would fail every handler at once)', metadata: { connectionString: CS, handlerTimeoutInSec: '0' }, line: 11, field: 'handlerTimeoutInSec',
    message: /metadata 'handlerTimeoutInSec' must be >= 1, got '0'/ },
  { name: 'autoDeleteOnIdleInSec under 300', metadata: { connectionString: CS, autoDeleteOnIdleInSec: '60' }, line: 11, field: 'autoDeleteOnIdleInSec',
    message: /autoDeleteOnIdleInSec must be 0 \(disabled\) or at least 300, got 60/ },
  { name: 'a namespaceName that is not a host name', metadata: { namespaceName: 'myns' }, line: 9, field: 'namespaceName',
    message: /metadata 'namespaceName' must be the namespace's fully qualified host name/ },
];

for (const c of errorCases) {
  test(`servicebus pubsub metadata - error: ${c.name}, at file:line naming the field, no key`, { timeout: 60_000 }, () => {
    assert.throws(() => parseServiceBusPubSub(pubsubComponent('pubsub.azure.servicebus.topics', c.metadata, { file: FILE }), 'topics'), (err: Error & { code?: string; field?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG');
      assert.equal(err.field, c.field);
      assert.ok(err.message.startsWith(`${FILE}:${c.line}: component orders-pubsub (pubsub.azure.servicebus.topics): `), err.message);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes(SECRET_KEY), 'no key');
      return true;
    });
  });
}

test('servicebus pubsub metadata - the Azure AD secrets and the connection string are never logged', { timeout: 60_000 }, () => {
  const red = serviceBusTopicsPubSubMetadata.redact({ connectionString: CS, azureClientSecret: 'cs-123456', namespaceName: 'ns.servicebus.windows.net' });
  assert.deepEqual(red, { connectionString: '***', azureClientSecret: '***', namespaceName: 'ns.servicebus.windows.net' });
  assert.ok(NARROWER.handlerTimeoutInSec);
});
