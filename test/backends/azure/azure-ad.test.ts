/**
 * Azure AD for Service Bus: `namespaceName` in the binding (Dapr's azuread profile) and `namespace` with podIdentity
 * azure-workload in the KEDA trigger. Azure cannot be reached from this machine, so what is shown here is:
 * - which credentials are chosen, in which order, from which metadata (the objects @azure/identity builds);
 * - that the SDK is built on the namespace with that credential;
 * - end to end with the real @azure/identity and @azure/service-bus, over TLS, against the AMQP test peer (not Service
 *   Bus) and a loopback identity endpoint (not Azure): the token the managed identity is handed is the one put on
 *   $cbs, as an Azure AD token, and a message goes round. Nothing here checks a token as Azure would.
 * Against a real namespace: set QSCALE_TEST_SERVICEBUS_NAMESPACE (cloud.ts), with a credential DefaultAzureCredential
 * finds (az login, workload or managed identity) that holds Azure Service Bus Data Owner on it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as IdentitySdk from '@azure/identity';
import { ServiceBusBackend, defaultClients } from '../../../src/backends/azure/servicebus/backend.js';
import { SdkQueueAdmin } from '../../../src/backends/azure/servicebus/admin.js';
import { parseServiceBusComponent } from '../../../src/backends/azure/servicebus/metadata.js';
import { serviceBusBackend } from '../../../src/backends/azure/servicebus/index.js';
import { daprCredentialChain, kedaWorkloadChain } from '../../../src/backends/azure/identity.js';
import { defaultAdmin, parseServiceBusTrigger } from '../../../src/backends/azure/servicebus/trigger.js';
import type { QueueMessage } from '../../../src/backends/types.js';
import { createLogger } from '../../../src/util/log.js';
import { AmqpTestPeer } from './amqp-peer.js';
import { IdentityEndpoint, selfSignedCertificate, withEnv } from './identity-endpoint.js';
import { FILE, bareComponent } from './support.js';
import { deleteServiceBusQueue, serviceBusNamespaceFromEnv, serviceBusNamespaceSkipReason } from './cloud.js';
import { loadTrigger } from '../trigger-files.js';
import { parseManifests, resolveResources } from '../../../src/components/index.js';
import { loadScaledObjects } from '../../../src/autoscaler/index.js';

// The classes qscale's own (CommonJS, lazily required) copy of @azure/identity builds: an ESM import is another copy.
const { AzureCliCredential, ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential, WorkloadIdentityCredential } =
  createRequire(import.meta.url)('@azure/identity') as typeof IdentitySdk;

const logger = createLogger('servicebus-aad-test').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
const ctx = { logger, dataDir: '/tmp' };
const NS = 'qscale-test.servicebus.windows.net';
const CLIENT_SECRET = 'client-secret-placeholder-42';

/** No Azure identity from the machine running the tests leaks into what is chosen. */
const CLEAN_ENV = {
  AZURE_TENANT_ID: undefined, AZURE_CLIENT_ID: undefined, AZURE_CLIENT_SECRET: undefined, AZURE_FEDERATED_TOKEN_FILE: undefined,
  AZURE_CLIENT_CERTIFICATE_PATH: undefined, AZURE_USERNAME: undefined, AZURE_TOKEN_CREDENTIALS: undefined,
  IDENTITY_ENDPOINT: undefined, IDENTITY_HEADER: undefined, MSI_ENDPOINT: undefined, IMDS_ENDPOINT: undefined,
};

function clean(t: TestContext): void {
  t.after(withEnv(CLEAN_ENV));
}

const aad = (extra: Record<string, string> = {}): ReturnType<typeof bareComponent> =>
  bareComponent({ queueName: 'msgqueue', namespaceName: NS, ...extra });

test('servicebus Azure AD - namespaceName alone: DefaultAzureCredential (workload identity, managed identity, Azure CLI), as Dapr\'s default chain', { timeout: 60_000 }, (t) => {
  clean(t);
  const s = parseServiceBusComponent(aad());
  assert.ok(s.azureAd);
  assert.equal(s.connection.host, NS);
  assert.equal(s.connectionString, '');
  const chain = daprCredentialChain(s.azureAd);
  assert.deepEqual(chain.map((l) => l.name), ['DefaultAzureCredential (workload identity, managed identity, Azure CLI)']);
  assert.ok(chain[0]?.credential instanceof DefaultAzureCredential);
});

test('servicebus Azure AD - azureTenantId + azureClientId + azureClientSecret: client credentials first, then what the machine offers', { timeout: 60_000 }, (t) => {
  clean(t);
  const s = parseServiceBusComponent(aad({ azureTenantId: 'tenant-1', azureClientId: 'client-1', azureClientSecret: CLIENT_SECRET }));
  const chain = daprCredentialChain(s.azureAd!);
  assert.deepEqual(chain.map((l) => l.name), ['client credentials', 'DefaultAzureCredential (workload identity, managed identity, Azure CLI)']);
  assert.ok(chain[0]?.credential instanceof ClientSecretCredential);
  // Dapr's older spellings of the same fields.
  const old = parseServiceBusComponent(aad({ tenantId: 'tenant-1', clientId: 'client-1', clientSecret: CLIENT_SECRET }));
  assert.deepEqual(daprCredentialChain(old.azureAd!).map((l) => l.name)[0], 'client credentials');
  // Two of the three are not client credentials.
  const partial = parseServiceBusComponent(aad({ azureTenantId: 'tenant-1', azureClientId: 'client-1' }));
  assert.deepEqual(daprCredentialChain(partial.azureAd!).map((l) => l.name), ['DefaultAzureCredential (workload identity, managed identity, Azure CLI)']);
});

test('servicebus Azure AD - azureAuthMethods picks the methods and their order; what is not there is skipped', { timeout: 60_000 }, (t) => {
  clean(t);
  const s = parseServiceBusComponent(aad({ azureAuthMethods: 'ManagedIdentity, wi, cli, creds', azureClientId: 'uami-1' }));
  // No workload identity environment here: left out, as Dapr leaves it out.
  assert.deepEqual(daprCredentialChain(s.azureAd!).map((l) => l.name), ['managed identity', 'Azure CLI']);
  // The variables the AKS workload identity webhook injects.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-wi-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'token'), 'service-account-token');
  t.after(withEnv({ AZURE_CLIENT_ID: 'wi-client', AZURE_TENANT_ID: 'wi-tenant', AZURE_FEDERATED_TOKEN_FILE: path.join(dir, 'token') }));
  const chain = daprCredentialChain(s.azureAd!);
  assert.deepEqual(chain.map((l) => l.name), ['managed identity', 'workload identity', 'Azure CLI']);
  assert.ok(chain[0]?.credential instanceof ManagedIdentityCredential);
  assert.ok(chain[1]?.credential instanceof WorkloadIdentityCredential);
  assert.ok(chain[2]?.credential instanceof AzureCliCredential);
});

test('servicebus Azure AD - azureAuthMethods wi without the workload identity environment: the binding fails at start, saying why', { timeout: 60_000 }, (t) => {
  clean(t);
  assert.throws(() => serviceBusBackend.create(aad({ azureAuthMethods: 'wi' }), ctx), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_BROKER');
    assert.match(err.message, /^component message-queue \(bindings\.azure\.servicebusqueues\): no suitable token provider for Azure AD: workload identity: .*clientId is a required parameter/);
    return true;
  });
});

const refused: Array<{ name: string; metadata: Record<string, string>; field: string; message: RegExp }> = [
  { name: 'azureAuthMethods None (Dapr: all methods disabled)', metadata: { azureAuthMethods: 'None' }, field: 'azureAuthMethods', message: /all Azure auth methods have been disabled with auth method 'None'/ },
  { name: 'an unknown azureAuthMethods entry', metadata: { azureAuthMethods: 'mi,password' }, field: 'azureAuthMethods', message: /invalid Azure auth method 'password'/ },
  { name: 'azureAuthMethods naming only methods whose settings are missing', metadata: { azureAuthMethods: 'creds' }, field: 'azureAuthMethods', message: /no suitable token provider for Azure AD: client credentials need azureTenantId, azureClientId and azureClientSecret/ },
  { name: 'SPIFFE (a Dapr sidecar identity on a cluster)', metadata: { azureAuthMethods: 'spiffe' }, field: 'azureAuthMethods', message: /SPIFFE workload identity .* not supported by qscale/ },
  { name: 'an Azure cloud Dapr does not know', metadata: { azureEnvironment: 'AzureMoonCloud' }, field: 'azureEnvironment', message: /invalid Azure cloud 'AzureMoonCloud'/ },
  { name: 'a PFX certificate (JavaScript reads PEM only)', metadata: { azureCertificate: 'MIIKYQIBAzCCCicGCSqGSIb3DQEHAaCCChgEggoUMIIKEDCCBMc' }, field: 'azureCertificate', message: /must be PEM .* convert it with openssl pkcs12/ },
  { name: 'a namespace without its domain', metadata: {}, field: 'namespaceName', message: /metadata 'namespaceName' must be the namespace's fully qualified host name, such as myns\.servicebus\.windows\.net, got 'myns'/ },
];
for (const c of refused) {
  test(`servicebus Azure AD - refused at start with file:line and the field: ${c.name}`, { timeout: 60_000 }, (t) => {
    clean(t);
    const md = { queueName: 'msgqueue', namespaceName: c.field === 'namespaceName' ? 'myns' : NS, ...c.metadata };
    const component = bareComponent(md);
    assert.throws(() => parseServiceBusComponent(component), (err: Error & { code?: string; field?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG');
      assert.ok(err.message.startsWith(`${FILE}:${component.where(c.field).line}: component message-queue (bindings.azure.servicebusqueues): `), err.message);
      assert.equal(err.field, c.field);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes('MIIKYQ'), 'a certificate is never shown');
      return true;
    });
  });
}

test('servicebus Azure AD - the SDK is built on the namespace with the chosen credential, for messaging and management', { timeout: 60_000 }, async (t) => {
  clean(t);
  const s = parseServiceBusComponent(aad({ azureTenantId: 'tenant-1', azureClientId: 'client-1', azureClientSecret: CLIENT_SECRET }));
  const clients = defaultClients(s);
  t.after(() => clients.messaging.close());
  assert.equal(clients.messaging.fullyQualifiedNamespace, NS);
  assert.ok(clients.admin instanceof SdkQueueAdmin);
  const adminClient = (clients.admin as unknown as { client: { endpoint: string; credentials: unknown } }).client;
  assert.equal(adminClient.endpoint, NS);
  assert.equal(clients.credentials, 'client credentials, then DefaultAzureCredential (workload identity, managed identity, Azure CLI)');
});

test('servicebus Azure AD - the component\'s Azure AD secrets are redacted like the connection string', { timeout: 60_000 }, () => {
  const shown = JSON.stringify(serviceBusBackend.metadata.redact(aad({ azureClientSecret: CLIENT_SECRET, azureCertificatePassword: 'pw-123' }).metadata));
  assert.ok(!shown.includes(CLIENT_SECRET) && !shown.includes('pw-123'), shown);
  assert.match(shown, /"namespaceName":"qscale-test\.servicebus\.windows\.net"/);
});

/** Receives until one message has been handled, or gives up. */
async function receiveOne(b: ServiceBusBackend): Promise<QueueMessage[]> {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), 20_000);
  try {
    await b.receive(async (m) => {
      got.push(m);
      ac.abort();
      return true;
    }, { concurrency: 1, signal: ac.signal });
  } finally {
    clearTimeout(giveUp);
  }
  return got;
}

test('servicebus Azure AD via AMQP test peer over TLS and a loopback identity endpoint (not Azure) - the managed identity\'s token authorizes the queue; a message goes round', { timeout: 120_000 }, async (t) => {
  const peer = await AmqpTestPeer.start({ tls: selfSignedCertificate() });
  const endpoint = await IdentityEndpoint.start();
  // The identity endpoint Azure App Service / Container Apps give a managed identity; the peer's certificate is its own.
  const undo = withEnv({ ...CLEAN_ENV, IDENTITY_ENDPOINT: endpoint.url, IDENTITY_HEADER: endpoint.header, NODE_TLS_REJECT_UNAUTHORIZED: '0' });
  const c = bareComponent({ queueName: 'msgqueue', namespaceName: `127.0.0.1:${peer.port}`, azureClientId: 'user-assigned-1', disableEntityManagement: 'true' });
  const backend = new ServiceBusBackend(c, parseServiceBusComponent(c), ctx);
  t.after(async () => {
    await backend.close();
    undo();
    await endpoint.close();
    await peer.close();
  });
  await backend.init();
  await backend.send(Buffer.from('{"text":"Hello World"}'), { tenant: 'contoso' });
  const got = await receiveOne(backend);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.data.toString(), '{"text":"Hello World"}');
  assert.ok(endpoint.requests.length >= 1, 'the managed identity asked its endpoint for a token');
  assert.equal(endpoint.requests[0]?.resource, 'https://servicebus.azure.net/');
  assert.equal(endpoint.requests[0]?.clientId, 'user-assigned-1', 'azureClientId picks the user-assigned identity');
  assert.equal(endpoint.requests[0]?.header, endpoint.header);
  const queueTokens = peer.stats.cbs.filter((p) => p.audience.endsWith('/msgqueue'));
  assert.ok(queueTokens.length >= 1, JSON.stringify(peer.stats.cbs));
  for (const p of queueTokens) assert.deepEqual({ type: p.type, token: p.token }, { type: 'jwt', token: endpoint.token });
});

// --------------------------------------------------------------------------------------------------- KEDA trigger

test('servicebus trigger Azure AD - podIdentity azure-workload: namespace + the cloud\'s suffix, Azure CLI then workload identity, as KEDA', { timeout: 60_000 }, (t) => {
  clean(t);
  const s = parseServiceBusTrigger(loadTrigger('azure-servicebus', { metadata: { queueName: 'msgqueue', namespace: 'myns' }, podIdentity: 'azure-workload' }));
  assert.equal(s.host, 'myns.servicebus.windows.net');
  assert.equal(s.connectionString, '');
  assert.deepEqual(s.podIdentity, { provider: 'azure-workload' });
  const chain = kedaWorkloadChain(s.podIdentity!);
  // No workload identity environment here: KEDA logs it and keeps the rest of its chain.
  assert.deepEqual(chain.map((l) => l.name), ['Azure CLI']);
  t.after(withEnv({ AZURE_TENANT_ID: 'wi-tenant', AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' }));
  const withId = kedaWorkloadChain({ provider: 'azure-workload', identityId: 'keda-identity' });
  assert.deepEqual(withId.map((l) => l.name), ['Azure CLI', 'workload identity']);
  assert.ok(withId[1]?.credential instanceof WorkloadIdentityCredential);
  const admin = defaultAdmin(s);
  assert.equal((admin as unknown as { client: { endpoint: string } }).client.endpoint, 'myns.servicebus.windows.net');
  const china = parseServiceBusTrigger(loadTrigger('azure-servicebus', { metadata: { queueName: 'msgqueue', namespace: 'myns', cloud: 'AzureChinaCloud' }, podIdentity: 'azure-workload' }));
  assert.equal(china.host, 'myns.servicebus.chinacloudapi.cn');
  const priv = parseServiceBusTrigger(loadTrigger('azure-servicebus', { metadata: { queueName: 'msgqueue', namespace: 'myns', cloud: 'Private', endpointSuffix: 'sb.example' }, podIdentity: 'azure-workload' }));
  assert.equal(priv.host, 'myns.sb.example');
});

test('servicebus trigger Azure AD - a podIdentity provider KEDA\'s Service Bus scaler does not take is refused at file:line', { timeout: 60_000 }, () => {
  assert.throws(() => parseServiceBusTrigger(loadTrigger('azure-servicebus', { metadata: { queueName: 'msgqueue', namespace: 'myns' }, podIdentity: 'aws' })),
    /keda-table\.yaml:\d+: trigger 0 \(azure-servicebus\) of ScaledObject table: azure service bus doesn't support pod identity aws/);
});

test('servicebus trigger Azure AD - the podIdentity is the azure-servicebus trigger\'s to use: no "stays unset locally" notice for it, as there still is for a trigger that cannot use it', { timeout: 60_000 }, () => {
  const files = (type: string): string => `apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: wi
spec:
  podIdentity:
    provider: azure-workload
    identityId: keda-identity
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: s
spec:
  scaleTargetRef:
    name: consumer
  triggers:
  - type: ${type}
    metadata:
      queueName: msgqueue
      namespace: myns
      host: amqp://guest:guest@127.0.0.1:5672
    authenticationRef:
      name: wi
`;
  const load = (type: string): ReturnType<typeof loadScaledObjects> => {
    const res = resolveResources(parseManifests(files(type), 'scaling.yaml'), { env: {} });
    return loadScaledObjects(res.manifests, { secrets: res.secrets, env: {} });
  };
  const sb = load('azure-servicebus');
  assert.deepEqual(sb.notices.filter((n) => /podIdentity/.test(n)), []);
  assert.deepEqual(sb.scaledObjects[0]?.triggers[0]?.podIdentity, { provider: 'azure-workload', identityId: 'keda-identity' });
  const rabbit = load('rabbitmq');
  assert.equal(rabbit.scaledObjects[0]?.triggers[0]?.podIdentity, undefined);
  assert.ok(rabbit.notices.some((n) => /podIdentity \(azure-workload\) cannot be resolved locally/.test(n)), rabbit.notices.join('\n'));
});

// -------------------------------------------------------------------------------------------- a real namespace

test('servicebus Azure AD against a real namespace (QSCALE_TEST_SERVICEBUS_NAMESPACE) - DefaultAzureCredential: init creates the queue, a message goes round', { timeout: 300_000 }, async (t) => {
  const skip = serviceBusNamespaceSkipReason();
  if (skip) {
    t.skip(skip);
    return;
  }
  const queueName = `qscale-aad-${Date.now().toString(36)}`;
  const c = bareComponent({ queueName, namespaceName: serviceBusNamespaceFromEnv() ?? '' });
  const backend = new ServiceBusBackend(c, parseServiceBusComponent(c), ctx);
  t.after(async () => {
    await backend.close();
    await deleteServiceBusQueue(queueName, serviceBusNamespaceFromEnv());
  });
  await backend.init();
  await backend.send(Buffer.from('"hello from qscale"'), {});
  const got = await receiveOne(backend);
  assert.equal(got[0]?.data.toString(), '"hello from qscale"');
  assert.equal((await backend.depth()).ready, 0);
});
