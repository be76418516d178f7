/**
 * bindings.azure.servicebusqueues metadata: Dapr's defaults, the reference metadata.yaml, and errors that name the
 * file, the line and the field without ever showing the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse } from 'yaml';
import type { FieldSpec } from '../../../src/components/metadata.js';
import { parseServiceBusComponent, serviceBusMetadata } from '../../../src/backends/azure/servicebus/metadata.js';
import { serviceBusBackend } from '../../../src/backends/azure/servicebus/index.js';
import { FILE, NAMESPACE_CS, SECRET_KEY, bareComponent, seedComponent } from './support.js';

const REFERENCE = '/work/shared/reference/dapr-bindings/bindings.azure-servicebusqueues.metadata.yaml';

test('servicebus metadata - the seed component gets Dapr\'s binding defaults', { timeout: 60_000 }, () => {
  const s = parseServiceBusComponent(seedComponent());
  assert.equal(s.queueName, 'msgqueue');
  assert.equal(s.connection.host, 'qscale-test.servicebus.windows.net');
  assert.equal(s.maxActiveMessages, 1);
  assert.equal(s.maxConcurrentHandlers, 1);
  assert.equal(s.lockRenewalMs, 20_000);
  assert.equal(s.timeoutMs, 60_000);
  assert.equal(s.maxRetriableErrorsPerSec, 10);
  assert.equal(s.minConnectionRecoveryMs, 2_000);
  assert.equal(s.maxConnectionRecoveryMs, 300_000);
  assert.equal(s.disableEntityManagement, false);
  assert.equal(s.publishMaxRetries, 5);
  assert.equal(s.publishInitialRetryIntervalMs, 500);
  assert.deepEqual(s.create, { lockDurationSec: undefined, defaultMessageTtlSec: undefined, maxDeliveryCount: undefined, autoDeleteOnIdleSec: undefined });
});

test('servicebus metadata - every field of Dapr\'s metadata.yaml is declared, with the same default', { timeout: 60_000 }, (t) => {
  if (!fs.existsSync(REFERENCE)) {
    t.skip(`reference file ${REFERENCE} is not on this machine`);
    return;
  }
  const ref = parse(fs.readFileSync(REFERENCE, 'utf8')) as {
    metadata: Array<{ name: string; default?: string; type?: string }>;
    authenticationProfiles: Array<{ metadata: Array<{ name: string; sensitive?: boolean }> }>;
    builtinAuthenticationProfiles: Array<{ metadata: Array<{ name: string }> }>;
  };
  const declared = new Map<string, FieldSpec>(serviceBusMetadata.fields.map((f) => [f.name, f]));
  const refFields: Array<{ name: string; default?: string; type?: string }> = [
    ...ref.metadata,
    ...ref.authenticationProfiles.flatMap((p) => p.metadata),
    ...ref.builtinAuthenticationProfiles.flatMap((p) => p.metadata),
  ];
  assert.ok(refFields.length >= 18, 'the reference lists the binding\'s fields');
  for (const r of refFields) {
    const f = declared.get(r.name);
    assert.ok(f, `'${r.name}' is declared`);
    if (r.default !== undefined) assert.equal(String(f.default), String(r.default), `default of '${r.name}'`);
    else assert.equal(f.default, undefined, `'${r.name}' has no default in Dapr`);
    if (r.type === 'bool') assert.equal(f.type, 'boolean', `type of '${r.name}'`);
    if (r.type === 'number') assert.ok(f.type === 'integer' || f.type === 'number', `type of '${r.name}'`);
  }
  assert.equal(declared.get('connectionString')?.sensitive, true);
});

test('servicebus metadata - queueName is lower-cased as Service Bus entity names are case-insensitive', { timeout: 60_000 }, () => {
  const s = parseServiceBusComponent(bareComponent({ connectionString: NAMESPACE_CS, queueName: 'MsgQueue' }));
  assert.equal(s.queueName, 'msgqueue');
  assert.equal(serviceBusBackend.queueName(bareComponent({ connectionString: NAMESPACE_CS, queueName: 'MsgQueue' })), 'msgqueue');
});

test('servicebus metadata - creation properties, ttlInSeconds as the older name of defaultMessageTimeToLiveInSec', { timeout: 60_000 }, () => {
  const a = parseServiceBusComponent(seedComponent({ ttlInSeconds: '3600', lockDurationInSec: '30', maxDeliveryCount: '3', autoDeleteOnIdleInSec: '600' }));
  assert.deepEqual(a.create, { lockDurationSec: 30, defaultMessageTtlSec: 3600, maxDeliveryCount: 3, autoDeleteOnIdleSec: 600 });
  const b = parseServiceBusComponent(seedComponent({ ttlInSeconds: '3600', defaultMessageTimeToLiveInSec: '60' }));
  assert.equal(b.create.defaultMessageTtlSec, 60);
});

test('servicebus metadata - the misspelt publishInitialRetryInternalInMs Dapr still accepts is read', { timeout: 60_000 }, () => {
  assert.equal(parseServiceBusComponent(seedComponent({ publishInitialRetryInternalInMs: '900' })).publishInitialRetryIntervalMs, 900);
});

test('servicebus metadata - maxConcurrentHandlers 0 means no limit of its own', { timeout: 60_000 }, () => {
  assert.equal(parseServiceBusComponent(seedComponent({ maxConcurrentHandlers: '0' })).maxConcurrentHandlers, 0);
});

const errorCases: Array<{ name: string; metadata: Record<string, string>; line: number; message: RegExp }> = [
  { name: 'maxActiveMessages not a number', metadata: { maxActiveMessages: 'many' }, line: 16,
    message: /metadata 'maxActiveMessages' must be an integer, got 'many'/ },
  { name: 'maxActiveMessages 0 (Dapr: must be 1 or greater)', metadata: { maxActiveMessages: '0' }, line: 16,
    message: /metadata 'maxActiveMessages' must be >= 1, got '0'/ },
  { name: 'disableEntityManagement not a boolean', metadata: { lockRenewalInSec: '5', disableEntityManagement: 'sometimes' }, line: 18,
    message: /metadata 'disableEntityManagement' must be a boolean \(true or false\), got 'sometimes'/ },
  { name: 'autoDeleteOnIdleInSec under 300', metadata: { autoDeleteOnIdleInSec: '100' }, line: 16,
    message: /autoDeleteOnIdleInSec must be 0 \(disabled\) or at least 300, got 100/ },
  { name: 'maxConnectionRecoveryInSec below the minimum', metadata: { minConnectionRecoveryInSec: '10', maxConnectionRecoveryInSec: '5' }, line: 18,
    message: /maxConnectionRecoveryInSec \(5\) is below minConnectionRecoveryInSec \(10\)/ },
  { name: 'namespaceName with connectionString', metadata: { namespaceName: 'x.servicebus.windows.net' }, line: 16,
    message: /connectionString and namespaceName cannot both be specified/ },
];

for (const c of errorCases) {
  test(`servicebus metadata - error: ${c.name}, at file:line`, { timeout: 60_000 }, () => {
    assert.throws(() => parseServiceBusComponent(seedComponent(c.metadata)), (err: Error & { code?: string; line?: number }) => {
      assert.equal(err.code, 'ERR_CONFIG');
      assert.ok(err.message.startsWith(`${FILE}:${c.line}: component message-queue (bindings.azure.servicebusqueues): `), err.message);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes(SECRET_KEY), 'the key never appears');
      return true;
    });
  });
}

test('servicebus metadata - missing queueName names the component and the file', { timeout: 60_000 }, () => {
  assert.throws(() => parseServiceBusComponent(bareComponent({ connectionString: NAMESPACE_CS })),
    { message: /^azure\/binding\.yaml:\d+: component message-queue \(bindings\.azure\.servicebusqueues\): missing required metadata 'queueName'/ });
});

test('servicebus metadata - neither connectionString nor namespaceName: says which are accepted', { timeout: 60_000 }, () => {
  assert.throws(() => parseServiceBusComponent(bareComponent({ queueName: 'q' })),
    /missing required metadata 'connectionString' \(either connectionString or namespaceName is required\)/);
});

test('servicebus metadata - namespaceName alone (Azure AD) is accepted, as Dapr accepts it (azure-ad.test.ts)', { timeout: 60_000 }, () => {
  const s = parseServiceBusComponent(bareComponent({ queueName: 'q', namespaceName: 'ns.servicebus.windows.net' }));
  assert.equal(s.connection.host, 'ns.servicebus.windows.net');
  assert.ok(s.azureAd);
});

const badConnectionStrings: Array<{ name: string; cs: string; says: RegExp }> = [
  { name: 'no Endpoint', cs: `SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY}`, says: /it has no Endpoint=sb:\/\// },
  { name: 'an https Endpoint', cs: `Endpoint=https://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=${SECRET_KEY}`, says: /its Endpoint must look like sb:\/\// },
  { name: 'no SharedAccessKeyName', cs: `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=${SECRET_KEY}`, says: /it has no SharedAccessKeyName/ },
  { name: 'no SharedAccessKey', cs: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root', says: /it has no SharedAccessKey/ },
  { name: 'not Key=Value pairs', cs: `${SECRET_KEY}`, says: /must be a list of Key=Value pairs/ },
];

for (const c of badConnectionStrings) {
  test(`servicebus metadata - bad connection string (${c.name}): component, file:line, reason, key never shown`, { timeout: 60_000 }, () => {
    assert.throws(() => parseServiceBusComponent(seedComponent({}, c.cs)), (err: Error) => {
      assert.ok(err.message.startsWith(`${FILE}:10: component message-queue (bindings.azure.servicebusqueues): metadata 'connectionString' is not a Service Bus connection string: `), err.message);
      assert.match(err.message, c.says);
      assert.ok(!err.message.includes(SECRET_KEY), 'the key never appears');
      return true;
    });
  });
}

test('servicebus metadata - a queue-level connection string for another queue is refused', { timeout: 60_000 }, () => {
  const cs = `${NAMESPACE_CS};EntityPath=orders`;
  assert.throws(() => parseServiceBusComponent(seedComponent({}, cs)), /the connection string's EntityPath 'orders' is not queueName 'msgqueue'/);
  // The seed's queue-level string (EntityPath=msgqueue) is fine, and the queue is always named explicitly.
  const ok = parseServiceBusComponent(seedComponent({}, `${NAMESPACE_CS};EntityPath=MsgQueue`));
  assert.ok(!ok.connection.withoutEntityPath.includes('EntityPath'));
});

test('servicebus metadata - redaction hides the connection string in logs', { timeout: 60_000 }, () => {
  const c = seedComponent();
  const shown = JSON.stringify(serviceBusMetadata.redact(c.metadata));
  assert.ok(!shown.includes(SECRET_KEY));
  assert.match(shown, /"connectionString":"\*\*\*"/);
  assert.match(shown, /"queueName":"msgqueue"/);
});
