/**
 * A secret given in any sensitive field of any backend never shows in what qscale says about the component: its
 * errors (bad config, broker unreachable, used before init), its loggable metadata, and the sidecar's redaction of
 * a broker error that echoes the secret back. Every sensitive field of every registered backend must be exercised.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { componentFromYaml } from '../conformance/component.js';
import { backendDefinitions, createBackend } from '../../src/backends/registry.js';
import { redactSecrets } from '../../src/sidecar/redact.js';
import { Redactor, redactUrl } from '../../src/components/redact.js';
import { createLogger } from '../../src/util/log.js';
import { closedPort } from './closed-port.js';

const logger = createLogger('redaction-test').child({}, { level: 'silent' });

interface Case {
  type: string;
  /** Metadata with a secret in every sensitive field (and in URLs that carry credentials). */
  metadata(port: number): Record<string, string>;
  /** The secrets, as given and as a client library might print them (decoded). */
  secrets: string[];
}

const cases: Case[] = [
  {
    type: 'bindings.azure.servicebusqueues',
    metadata: (port) => ({
      queueName: 'orders',
      connectionString: `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=root;SharedAccessKey=Sb-S3cret-key+1=;UseDevelopmentEmulator=true`,
      // The azuread profile's secrets (read only with namespaceName; given here, they must not show either).
      azureClientSecret: 'Aad-S3cret-1a', azureCertificate: 'Aad-Cert-S3cret-1b', azureCertificatePassword: 'Aad-S3cret-1c',
    }),
    secrets: ['Sb-S3cret-key+1=', 'Aad-S3cret-1a', 'Aad-Cert-S3cret-1b', 'Aad-S3cret-1c'],
  },
  {
    type: 'bindings.qscale.nats-jetstream',
    metadata: (port) => ({ natsURL: `nats://qsuser:Nats-S3cret-2@127.0.0.1:${port}`, stream: 'orders', password: 'Nats-S3cret-3', token: 'Nats-Tok3n-4' }),
    secrets: ['Nats-S3cret-2', 'Nats-S3cret-3', 'Nats-Tok3n-4'],
  },
  {
    type: 'bindings.qscale.postgresql',
    metadata: (port) => ({ connectionString: `host=127.0.0.1 port=${port} user=qsuser password='Pg S3cret 5' dbname=postgres`, queueName: 'orders' }),
    secrets: ['Pg S3cret 5'],
  },
  {
    type: 'bindings.rabbitmq',
    metadata: (port) => ({
      host: `amqp://qsuser:Rabbit%40S3cret-6@127.0.0.1:${port}`, queueName: 'orders', clientKey: 'Rabbit-K3y-7',
      managementUrl: `http://qsuser:Mgmt-S3cret-8@127.0.0.1:${port}`,
    }),
    secrets: ['Rabbit%40S3cret-6', 'Rabbit@S3cret-6', 'Rabbit-K3y-7', 'Mgmt-S3cret-8'],
  },
  {
    type: 'bindings.qscale.redis',
    metadata: (port) => ({ redisHost: `127.0.0.1:${port}`, redisPassword: 'Redis-S3cret-9', queueName: 'orders' }),
    secrets: ['Redis-S3cret-9'],
  },
];

function leaks(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((s) => text.includes(s));
}

test('redaction - every sensitive field of every registered backend is exercised by this test', { timeout: 10_000 }, () => {
  const missing: string[] = [];
  for (const d of backendDefinitions) {
    const sensitive = d.metadata.fields.filter((f) => f.sensitive).map((f) => f.name);
    if (sensitive.length === 0) continue;
    const c = cases.find((x) => d.types.includes(x.type));
    if (!c) {
      missing.push(`${d.types.join(', ')}: no case`);
      continue;
    }
    const given = Object.keys(c.metadata(1));
    for (const f of sensitive) if (!given.includes(f)) missing.push(`${c.type}: sensitive field '${f}' not given a secret`);
  }
  assert.deepEqual(missing, []);
});

for (const c of cases) {
  test(`redaction - ${c.type}: no secret in its errors, its loggable metadata, or a broker error echoing it`, { timeout: 60_000 }, async () => {
    const port = await closedPort();
    const comp = componentFromYaml('orders', c.type, c.metadata(port), { initTimeout: '2s', file: 'components/orders.yaml' });
    const def = backendDefinitions.find((d) => d.types.includes(c.type));
    assert.ok(def);
    const said: string[] = [];
    // Loggable metadata.
    said.push(JSON.stringify(def.metadata.redact(comp.metadata)));
    // Errors: init against a closed port, then calls on the backend that never connected.
    try {
      const b = createBackend(comp, { logger, dataDir: '.qscale-test' }, { embedded: false });
      for (const call of [() => b.init(), () => b.send(Buffer.from('{}'), {}), () => b.depth()]) {
        const err = await call().then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof Error, 'the call failed');
        said.push(err.message);
      }
      await b.close();
    } catch (err) {
      said.push(String(err));
    }
    assert.ok(said.some((s) => s.includes(`127.0.0.1:${port}`) || s.includes('orders')), `the errors still say where: ${said.join(' | ')}`);
    // A broker error that echoes the whole metadata back, as some client libraries do.
    const echoed = `client failed with ${Object.values(comp.metadata).join(' ; ')} (decoded: ${c.secrets.join(', ')})`;
    said.push(redactSecrets(echoed, comp));
    assert.deepEqual(said.flatMap((s) => leaks(s, c.secrets).map((l) => `'${l}' in: ${s}`)), []);
  });
}

test('redaction - URLs keep the user and lose the password or bare token, in any text', { timeout: 10_000 }, () => {
  assert.equal(redactUrl('amqp://guest:guest@127.0.0.1:5672/vh'), 'amqp://guest:***@127.0.0.1:5672/vh');
  assert.equal(redactUrl('nats://tok3n@a:4222,nats://u:p4ss@b:4222'), 'nats://***@a:4222,nats://u:***@b:4222');
  assert.equal(redactUrl('failed: connect to postgres://u:p%40ss@h/db refused'), 'failed: connect to postgres://u:***@h/db refused');
  assert.equal(redactUrl('redis://127.0.0.1:6379/0 and http://host/x@y'), 'redis://127.0.0.1:6379/0 and http://host/x@y');
  assert.equal(new Redactor(['s3cret', undefined, 'ab']).text('s3cret and ab stay? ab'), '*** and ab stay? ab', 'a secret shorter than 3 characters is not cut everywhere');
});
