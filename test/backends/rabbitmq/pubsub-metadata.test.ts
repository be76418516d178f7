/**
 * pubsub.rabbitmq metadata against Dapr's metadata.yaml (../shared/reference/dapr-pubsub): every field declared with
 * the same default and sensitivity, the fields daprd's code reads beside them, and bad values refused at file:line
 * naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { MetadataSpec } from '../../../src/components/metadata.js';
import { parseRabbitmqPubSub, pubsubContext, rabbitmqPubSubMetadata } from '../../../src/backends/rabbitmq/pubsub-metadata.js';
import { REF } from '../../support/crd.js';
import { compareWithReference, pubsubComponent as anyPubSubComponent, type ReferenceField } from '../pubsub-component.js';

const pubsubComponent = (metadata: Record<string, string>) => anyPubSubComponent('pubsub.rabbitmq', metadata, { file: 'rabbitmq/pubsub.yaml' });


const file = REF ? path.join(REF, 'dapr-pubsub', 'pubsub.rabbitmq.metadata.yaml') : undefined;
const skip = file && existsSync(file) ? false : 'reference metadata ../shared/reference/dapr-pubsub/pubsub.rabbitmq.metadata.yaml not found';

/**
 * Declared beside metadata.yaml, with why: read by daprd's code though the yaml omits them, or qscale's own.
 * Every other declared field must be in the yaml.
 */
const BESIDE_THE_YAML: Record<string, string> = {
  consumerID: 'daprd sets it to the app id and the component names queues with it (mdignore in metadata.go)',
  concurrencyMode: 'pubsub.Concurrency reads this key, not the declared concurrency',
  retryBackoff: 'qscale: the wait before a requeued failed event comes back',
  retryBackoffMax: 'qscale: its upper bound',
};

/** Where qscale's default is daprd's code's, not the yaml's. */
const DEFAULT_FROM_CODE: Record<string, { yaml: string; code: unknown; why: string }> = {
  durable: { yaml: 'false', code: true, why: 'createMetadata starts from Durable: true (metadata_test.go asserts it)' },
};

test('rabbitmq pubsub metadata - every field of Dapr\'s metadata.yaml is declared, with its default, type and sensitivity', { timeout: 60_000, skip }, () => {
  const ref = parse(readFileSync(file!, 'utf8')) as { metadata: ReferenceField[]; authenticationProfiles: Array<{ metadata: ReferenceField[] }> };
  const refFields = [...ref.metadata, ...ref.authenticationProfiles.flatMap((p) => p.metadata)];
  let compared = 0;
  for (const r of refFields) {
    const { field, absent, fromYaml } = compareWithReference(rabbitmqPubSubMetadata as unknown as MetadataSpec, r);
    const fromCode = DEFAULT_FROM_CODE[r.name];
    if (fromCode) {
      assert.equal(r.default?.replace(/"/g, ''), fromCode.yaml, `the yaml still says ${fromCode.yaml} for '${r.name}'`);
      assert.deepEqual(absent, fromCode.code, `'${r.name}' defaults as daprd's code: ${fromCode.why}`);
    } else if (r.default !== undefined) {
      assert.deepEqual(absent, fromYaml, `default of '${r.name}'`);
    } else {
      assert.equal(field.default, undefined, `'${r.name}' has no default in Dapr`);
    }
    compared++;
  }
  assert.ok(compared >= 26, `the reference lists the component's fields (${compared})`);
  const inYaml = new Set(refFields.map((r) => r.name));
  for (const f of rabbitmqPubSubMetadata.fields) {
    if (!inYaml.has(f.name)) assert.ok(BESIDE_THE_YAML[f.name], `'${f.name}' is declared but not in metadata.yaml: say why in BESIDE_THE_YAML`);
  }
});

test('rabbitmq pubsub metadata - daprd\'s defaults: durable and auto-delete topology, fanout, drop on failure, 3s reconnect, 10s heartbeat', { timeout: 60_000 }, () => {
  const s = parseRabbitmqPubSub(pubsubComponent({ connectionString: 'amqp://guest:guest@127.0.0.1:5672' }));
  assert.equal(s.durable, true);
  assert.equal(s.autoDelete, true);
  assert.equal(s.exchangeKind, 'fanout');
  assert.equal(s.requeueInFailure, false);
  assert.equal(s.enableDeadLetter, false);
  assert.equal(s.autoAck, false);
  assert.equal(s.prefetchCount, 0);
  assert.equal(s.deliveryMode, 0);
  assert.equal(s.reconnectWaitMs, 3000);
  assert.equal(s.heartbeatSeconds, 10);
  assert.equal(s.single, false);
  assert.equal(s.consumerID, undefined, 'the app id, given at create');
  assert.equal(s.defaultTtlMs, undefined);
  assert.deepEqual(s.notices, []);
});

test('rabbitmq pubsub metadata - hostname, username and password make the URL daprd makes; host is the deprecated connectionString', { timeout: 60_000 }, () => {
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ hostname: 'mq.local:5673', username: 'u', password: 'p w' })).url, 'amqp://u:p%20w@mq.local:5673');
  assert.equal(parseRabbitmqPubSub(pubsubComponent({})).url, 'amqp://localhost');
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ protocol: 'amqps', hostname: 'mq' })).url, 'amqps://mq');
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ host: 'amqp://a:b@h:1' })).url, 'amqp://a:b@h:1');
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ connectionString: 'amqp://h', ttlInSeconds: '90' })).defaultTtlMs, 90_000);
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ connectionString: 'amqp://h', ttlInSeconds: '1m30s' })).defaultTtlMs, 90_000);
});

test('rabbitmq pubsub metadata - concurrency: single alone changes nothing, as in daprd, and says how to get one at a time', { timeout: 60_000 }, () => {
  const s = parseRabbitmqPubSub(pubsubComponent({ connectionString: 'amqp://h', concurrency: 'single' }));
  assert.equal(s.single, false);
  assert.equal(s.notices.length, 1);
  assert.match(s.notices[0] ?? '', /^rabbitmq\/pubsub\.yaml:11: component orders-pubsub \(pubsub\.rabbitmq\): concurrency: single has no effect.*write concurrencyMode: single/);
  assert.equal(parseRabbitmqPubSub(pubsubComponent({ connectionString: 'amqp://h', concurrencyMode: 'single' })).single, true);
});

const errorCases: Array<{ name: string; metadata: Record<string, string>; line: number; field: string; message: RegExp }> = [
  { name: 'a connection string that is not amqp', metadata: { connectionString: 'http://guest:secretpw@h' }, line: 9, field: 'connectionString',
    message: /metadata 'connectionString' must start with amqp:\/\/ or amqps:\/\/, got 'http:\/\/\.\.\.'/ },
  { name: 'protocol other than the connection string\'s', metadata: { connectionString: 'amqp://h', protocol: 'amqps' }, line: 11, field: 'protocol',
    message: /protocol 'amqps' does not match the connection string's scheme 'amqp'/ },
  { name: 'deliveryMode above 2 (daprd: accepted values are between 0 and 2)', metadata: { connectionString: 'amqp://h', deliveryMode: '3' }, line: 11, field: 'deliveryMode',
    message: /metadata 'deliveryMode' must be <= 2, got '3'/ },
  { name: 'an exchange kind RabbitMQ lacks', metadata: { connectionString: 'amqp://h', exchangeKind: 'fan' }, line: 11, field: 'exchangeKind',
    message: /metadata 'exchangeKind' must be one of fanout, topic, direct, headers, got 'fan'/ },
  { name: 'saslExternal without the certificates', metadata: { connectionString: 'amqps://h', saslExternal: 'true' }, line: 11, field: 'saslExternal',
    message: /saslExternal can only be true when caCert, clientCert and clientKey are all given/ },
  { name: 'a ttlInSeconds daprd cannot read', metadata: { connectionString: 'amqp://h', ttlInSeconds: 'soon' }, line: 11, field: 'ttlInSeconds',
    message: /metadata 'ttlInSeconds' must be a duration such as 30s or 1m30s, or a whole number of seconds, got 'soon'/ },
  { name: 'prefetchCount over a byte (daprd reads it as uint8)', metadata: { connectionString: 'amqp://h', prefetchCount: '300' }, line: 11, field: 'prefetchCount',
    message: /metadata 'prefetchCount' must be <= 255, got '300'/ },
];

for (const c of errorCases) {
  test(`rabbitmq pubsub metadata - error: ${c.name}, at file:line naming the field`, { timeout: 60_000 }, () => {
    assert.throws(() => parseRabbitmqPubSub(pubsubComponent(c.metadata)), (err: Error & { code?: string; field?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG');
      assert.equal(err.field, c.field);
      assert.ok(err.message.startsWith(`rabbitmq/pubsub.yaml:${c.line}: component orders-pubsub (pubsub.rabbitmq): `), err.message);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes('secretpw'), 'no password');
      return true;
    });
  });
}

test('rabbitmq pubsub metadata - passwords, client certificates and keys are never logged', { timeout: 60_000 }, () => {
  const red = rabbitmqPubSubMetadata.redact({ connectionString: 'amqp://u:pw123456@h', password: 'pw123456', clientCert: 'CERT', clientKey: 'KEY', caCert: 'CA', hostname: 'h' });
  assert.deepEqual(red, { connectionString: '***', password: '***', clientCert: '***', clientKey: '***', caCert: 'CA', hostname: 'h' });
  assert.ok(pubsubContext(pubsubComponent({})).subject.includes('pubsub.rabbitmq'));
});
