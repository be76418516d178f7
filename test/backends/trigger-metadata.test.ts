/**
 * The rules every trigger reads its metadata by, as KEDA's typed config does (scalersconfig/typed_config.go): Go's
 * ParseBool, JSON numbers, Go durations, names as written, each parameter from where KEDA reads it, and defaults that
 * mean what the same text written by the user means. Each rule is checked through every trigger that has such a
 * parameter, from files (ScaledObject, TriggerAuthentication, environment).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import type { ResolvedTrigger } from '../../src/autoscaler/scaler.js';
import { parseGoDuration, parseKedaDuration, type TriggerField } from '../../src/backends/trigger-metadata.js';
import { parseRabbitmqTrigger, rabbitmqTriggerMetadata } from '../../src/backends/rabbitmq/trigger.js';
import { rabbitmqQueueParamsMetadata } from '../../src/backends/rabbitmq/trigger-params.js';
import { parseRedisStreamsTrigger, redisStreamsTriggerMetadata } from '../../src/backends/redis/trigger.js';
import { parsePostgresqlTrigger, postgresqlTriggerMetadata } from '../../src/backends/postgresql/trigger.js';
import { natsTriggerMetadata, parseNatsJetStreamTrigger } from '../../src/backends/nats/trigger.js';
import { parseServiceBusTrigger, serviceBusTriggerMetadata } from '../../src/backends/azure/servicebus/trigger.js';
import { serviceBusQueueParamsMetadata } from '../../src/backends/azure/servicebus/trigger-params.js';
import { embeddedTriggerMetadata } from '../../src/backends/embedded/trigger.js';
import { TRIGGER_FILE, loadTrigger, type TriggerFiles } from './trigger-files.js';

const SB_CS = 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0';

/** A valid trigger of each type, and how qscale reads it (the full parse, as `up` and `validate` do). */
const TRIGGERS: Record<string, { base: Record<string, string>; read: (t: ResolvedTrigger) => object }> = {
  rabbitmq: { base: { queueName: 'q', host: 'https://rabbit.example:15671' }, read: parseRabbitmqTrigger },
  'redis-streams': { base: { stream: 's', address: 'redis.example:6379' }, read: parseRedisStreamsTrigger },
  postgresql: { base: { query: 'SELECT 1', targetQueryValue: '5', host: 'db', port: '5432', userName: 'u', dbName: 'd', sslmode: 'disable' }, read: parsePostgresqlTrigger },
  'nats-jetstream': { base: { natsServerMonitoringEndpoint: 'nats:8222', account: '$G', stream: 's', consumer: 'c' }, read: parseNatsJetStreamTrigger },
  'azure-servicebus': { base: { queueName: 'q', connectionFromEnv: 'SB' }, read: parseServiceBusTrigger },
};
const ENV = { SB: SB_CS, PG_PASSWORD: 'pw' };

function read(type: string, files: Partial<TriggerFiles>): Record<string, unknown> {
  const def = TRIGGERS[type]!;
  const t = loadTrigger(type, { env: ENV, ...files, metadata: { ...def.base, ...files.metadata } });
  return def.read(t) as Record<string, unknown>;
}

function refusal(type: string, files: Partial<TriggerFiles>): string {
  try {
    read(type, files);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, new RegExp(`^${TRIGGER_FILE}:\\d+: trigger 0 \\(${type}\\) of ScaledObject table: `));
    return err.message;
  }
  assert.fail(`${type} ${JSON.stringify(files)} was accepted`);
}

const BOOLEANS: Array<[string, string]> = [
  ['rabbitmq', 'unsafeSsl'], ['rabbitmq', 'excludeUnacknowledged'], ['redis-streams', 'enableTLS'], ['redis-streams', 'unsafeSsl'],
  ['nats-jetstream', 'useHttps'], ['azure-servicebus', 'useRegex'],
];
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

describe('trigger metadata: KEDA\'s parsing rules in every trigger', { timeout: 60_000 }, () => {
  test('every trigger refuses booleans written yes, no, on, off (Go\'s ParseBool refuses them) at their line', () => {
    for (const [type, field] of BOOLEANS) {
      for (const word of ['yes', 'no', 'on', 'off', 'Y', 'N', 'tRuE', 'random']) {
        const msg = refusal(type, { metadata: { [field]: word } });
        assert.match(msg, new RegExp(`metadata '${field}' must be true or false \\(KEDA reads it with Go's ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False\\), got '${word}'`), `${type} ${field}`);
      }
    }
  });

  test('every trigger takes the twelve spellings Go\'s ParseBool takes', () => {
    for (const [type, field] of BOOLEANS) {
      // excludeUnacknowledged with http, useRegex false: each accepted spelling must parse (true ones where true is valid).
      for (const word of GO_FALSE) read(type, { metadata: { [field]: word } });
      if (type === 'azure-servicebus') continue; // useRegex true is refused for another reason (not supported locally)
      if (type === 'redis-streams' && field === 'unsafeSsl') continue; // TLS options are refused for another reason
      for (const word of GO_TRUE) read(type, { metadata: { [field]: word } });
    }
    assert.equal(read('nats-jetstream', { metadata: { useHttps: 'T' } }).monitoringUrl, 'https://nats:8222/jsz?acc=%24G&config=true&consumers=true');
    assert.equal(read('nats-jetstream', { metadata: { useHttps: 'F' } }).monitoringUrl, 'http://nats:8222/jsz?acc=%24G&config=true&consumers=true');
    assert.equal((read('redis-streams', { metadata: { enableTLS: '1' } }).conn as { tls: boolean }).tls, true);
  });

  test('trigger numbers are JSON numbers: whole ones take no fraction or exponent, none takes a sign + or a bare dot', () => {
    const bad: Array<[string, string, string]> = [
      ['nats-jetstream', 'lagThreshold', '5.0'], ['nats-jetstream', 'lagThreshold', '1e3'], ['nats-jetstream', 'lagThreshold', '+5'], ['nats-jetstream', 'lagThreshold', '0x10'],
      ['redis-streams', 'streamLength', '5.5'], ['azure-servicebus', 'messageCount', '2.5'], ['azure-servicebus', 'activationMessageCount', '05'],
      ['rabbitmq', 'activationValue', '.5'], ['rabbitmq', 'activationValue', '5.'], ['rabbitmq', 'activationValue', 'Infinity'], ['postgresql', 'targetQueryValue', '1e400'],
    ];
    for (const [type, field, value] of bad) assert.match(refusal(type, { metadata: { [field]: value } }), new RegExp(`metadata '${field}' must be a (whole )?number`), `${type} ${field} ${value}`);
    assert.equal(read('rabbitmq', { metadata: { mode: 'QueueLength', value: '2.5e1' } }).target, 25);
    assert.deepEqual([read('postgresql', { metadata: { targetQueryValue: '0.5e1', activationTargetQueryValue: '-1' } })].map((p) => [p.target, p.activationTarget]), [[5, -1]]);
    assert.equal(read('nats-jetstream', { metadata: { lagThreshold: ' 7 ' } }).target, 7, 'values are trimmed');
  });

  test('a target the HorizontalPodAutoscaler would refuse (0 or less) is refused at load', () => {
    assert.match(refusal('nats-jetstream', { metadata: { lagThreshold: '0' } }), /lagThreshold must be more than 0, got 0 \(the HorizontalPodAutoscaler refuses a target that is not positive\)/);
    assert.match(refusal('postgresql', { metadata: { targetQueryValue: '-5' } }), /targetQueryValue must be more than 0, got -5/);
    assert.match(refusal('redis-streams', { metadata: { streamLength: '-1' } }), /streamLength must be more than 0/);
  });

  test('rabbitmq timeout is a Go duration or whole milliseconds, never negative, as KEDA reads it', () => {
    const ms = (timeout: string): unknown => read('rabbitmq', { metadata: { timeout } }).timeoutMs;
    assert.equal(ms('1m30s'), 90_000);
    assert.equal(ms('250ms'), 250);
    assert.equal(ms('1.5h'), 5_400_000);
    assert.equal(ms('1500'), 1500);
    assert.equal(ms('0'), 2500, '0 is not given: the default bound');
    for (const bad of ['-1s', '-10', '5 s', '1m30', 'soon', '1d']) assert.match(refusal('rabbitmq', { metadata: { timeout: bad } }), /metadata 'timeout' must be a duration/, bad);
    assert.equal(parseGoDuration('2us'), 0.002);
    assert.equal(parseGoDuration('.5s'), 500);
    assert.equal(parseKedaDuration('-5'), 'negative');
  });

  test('trigger metadata names are matched as written: a name KEDA would ignore for its case is refused with the name it reads', () => {
    assert.match(refusal('rabbitmq', { metadata: { activationvalue: '5' } }), /metadata 'activationvalue' is not read: KEDA matches parameter names as written, so it would ignore it; write 'activationValue'/);
    assert.match(refusal('redis-streams', { metadata: { ConsumerGroup: 'g' } }), /write 'consumerGroup'/);
    assert.match(refusal('nats-jetstream', { metadata: { AccountID: 'A' } }), /write 'accountID'/);
    assert.match(refusal('azure-servicebus', { metadata: { messagecount: '10' } }), /write 'messageCount'/);
    assert.match(refusal('rabbitmq', { metadata: { HOSTFromEnv: 'H' }, env: { H: 'amqp://x' } }), /metadata 'HOSTFromEnv' is not read.*write 'hostFromEnv'/);
    // Names KEDA does not know at all are ignored, as KEDA ignores them.
    read('rabbitmq', { metadata: { comment: 'hello' } });
  });

  test('a parameter written where KEDA does not read it is refused, naming where KEDA reads it', () => {
    assert.match(refusal('rabbitmq', { metadata: { username: 'u', password: 'p' } }),
      /metadata 'username' is not read: KEDA ignores it there and reads username from a TriggerAuthentication parameter 'username' or 'usernameFromEnv' only/);
    assert.match(refusal('postgresql', { metadata: { connection: 'postgresql://db/app' } }), /metadata 'connection' is not read: KEDA ignores it there and reads connection from a TriggerAuthentication parameter 'connection' or 'connectionFromEnv' only/);
    assert.match(refusal('azure-servicebus', { metadata: { connection: SB_CS } }), /metadata 'connection' is not read/);
    assert.match(refusal('nats-jetstream', { metadata: { accountFromEnv: 'A' }, env: { A: '$G' } }), /metadata 'accountFromEnv' is not read: KEDA ignores it there and reads account from metadata 'account' or a TriggerAuthentication parameter 'account' only/);
    assert.match(refusal('rabbitmq', { metadata: { tls: 'enable' } }), /metadata 'tls' is not read/);
    // The same parameters where KEDA reads them are taken.
    assert.equal(read('rabbitmq', { auth: { username: 'u', password: 'p' } }).url, 'https://u:p@rabbit.example:15671');
    assert.equal(read('postgresql', { metadata: { passwordFromEnv: 'PG_PASSWORD' } }).target, 5);
  });

  test('each parameter comes from where KEDA looks first: metadata before a TriggerAuthentication for rabbitmq host, the other way for nats and postgresql', () => {
    assert.equal(read('rabbitmq', { auth: { host: 'https://auth.example:15671' } }).url, 'https://rabbit.example:15671');
    assert.equal(read('nats-jetstream', { auth: { natsServerMonitoringEndpoint: 'auth:8222' } }).endpoint, 'auth:8222');
    const pg = read('postgresql', { auth: { host: 'authdb' } }) as { conn: { describe: string } };
    assert.match(pg.conn.describe, /@authdb:5432\//);
    // redis credentials: metadata, then <param>FromEnv, then the TriggerAuthentication.
    const redis = read('redis-streams', { metadata: { passwordFromEnv: 'PG_PASSWORD' }, auth: { password: 'from-auth' } }) as { conn: { password: string } };
    assert.equal(redis.conn.password, 'pw');
  });

  test('an empty value is not given, as in KEDA: the default applies', () => {
    assert.equal(read('rabbitmq', { metadata: { queueLength: '', activationValue: ' ' } }).target, 20);
    assert.equal(read('nats-jetstream', { metadata: { lagThreshold: '' } }).target, 10);
  });

  test('every trigger\'s declared default parses like the same value written by the user', () => {
    const specs: Array<[string, { fields: readonly TriggerField[]; parse(t: ResolvedTrigger): unknown }]> = [
      ['rabbitmq', rabbitmqTriggerMetadata], ['rabbitmq queue fields', rabbitmqQueueParamsMetadata], ['redis-streams', redisStreamsTriggerMetadata],
      ['postgresql', postgresqlTriggerMetadata], ['nats-jetstream', natsTriggerMetadata], ['azure-servicebus', serviceBusTriggerMetadata],
      ['azure-servicebus queue fields', serviceBusQueueParamsMetadata], ['qscale-embedded', embeddedTriggerMetadata],
    ];
    let checked = 0;
    for (const [name, spec] of specs) {
      const required = Object.fromEntries(spec.fields.filter((f) => f.required).map((f) => [f.name, f.type === 'bool' ? 'true' : f.type === 'string' ? 'x' : '1']));
      const hand = (metadata: Record<string, string>): ResolvedTrigger => ({ index: 0, type: name, metricType: 'AverageValue', metadata, subject: name, where: () => ({}) });
      const implicit = spec.parse(hand(required)) as Record<string, unknown>;
      for (const f of spec.fields) {
        if (f.default === undefined) continue;
        checked++;
        const explicit = (spec.parse(hand({ ...required, [f.name]: f.default })) as Record<string, unknown>)[f.name];
        assert.deepEqual(implicit[f.name], explicit, `${name}: ${f.name}`);
        assert.equal(typeof implicit[f.name], f.type === 'bool' ? 'boolean' : f.type === 'string' ? 'string' : 'number', `${name}: ${f.name}`);
      }
    }
    assert.ok(checked >= 20, `checked ${checked} defaults`);
  });
});
