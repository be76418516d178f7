/**
 * KEDA's own scaler tables (kedacore/keda v2.20.2, pkg/scalers/{rabbitmq,redis_streams,postgresql,nats_jetstream,
 * azure_servicebus}_scaler_test.go), row by row, read the way a user's files reach qscale: each row becomes a
 * ScaledObject (its trigger metadata), a TriggerAuthentication with a Secret (its authParams) and the app's
 * environment (its resolvedEnv), loaded by the same code as `qscale up` and `qscale validate`.
 *
 * What a row's KEDA test accepts, qscale accepts, with the same values; what it refuses, qscale refuses at load with
 * the file and line. KEDA's tables use placeholders where they never dial (`https://`, `myHostSecret`, `REDIS_PORT`,
 * connection `none`): those rows carry a host of the same shape here, and the placeholders themselves are pinned
 * apart (DEVIATIONS): KEDA parses them and fails when it connects or reads; qscale refuses them at load, since they
 * can never work. Cluster-only authentication that KEDA accepts is pinned apart too, with qscale's reason.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResolvedTrigger } from '../../src/autoscaler/scaler.js';
import { ConfigError } from '../../src/errors.js';
import { TRIGGER_FILE, loadTrigger, type TriggerFiles } from './trigger-files.js';
import { parseRabbitmqTrigger, rabbitmqMetricName, rabbitmqMetricAndActivity, composeQueues } from '../../src/backends/rabbitmq/trigger.js';
import type { RabbitmqMode } from '../../src/backends/rabbitmq/trigger-params.js';
import type { ManagedQueue } from '../../src/backends/rabbitmq/management.js';
import { parseRedisStreamsTrigger, redisStreamsMetricName } from '../../src/backends/redis/trigger.js';
import { parsePostgresqlTrigger, postgresqlConnectionFromFields, postgresqlTrigger } from '../../src/backends/postgresql/trigger.js';
import { natsLagFromJsz, natsJetStreamTrigger, parseNatsJetStreamTrigger, type Jsz } from '../../src/backends/nats/trigger.js';
import { parseServiceBusTrigger, serviceBusMetricName } from '../../src/backends/azure/servicebus/trigger.js';

const FILE = TRIGGER_FILE;

interface Row extends TriggerFiles {
  /** KEDA's comment for the row. */
  name: string;
  /** KEDA refuses it: qscale refuses at load with this. */
  refuse?: RegExp;
  /** KEDA accepts it: what qscale reads (a subset of the parsed settings). */
  want?: Record<string, unknown>;
}

const load = loadTrigger;

/** Runs the table: every row refused at its line, or accepted with the values it names. */
function table(type: string, rows: readonly Row[], read: (t: ResolvedTrigger) => object): void {
  for (const row of rows) {
    const verb = row.refuse ? 'refuses' : 'accepts';
    test(`${type} trigger ${verb}, as KEDA's table: ${row.name}`, { timeout: 30_000 }, () => {
      const run = (): object => read(load(type, row));
      if (row.refuse) {
        assert.throws(run, (err: unknown) => {
          assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
          assert.match(err.message, new RegExp(`^${FILE}:\\d+: trigger 0 \\(${type}\\) of ScaledObject table: `), err.message);
          assert.match(err.message, row.refuse!);
          return true;
        });
        return;
      }
      const got = run() as Record<string, unknown>;
      for (const [k, v] of Object.entries(row.want ?? {})) assert.deepEqual(got[k], v, `${k} of ${JSON.stringify(got)}`);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------- rabbitmq
const RABBIT_ENV = { myHostSecret: 'amqp://user:sercet@somehost.com:5236/vhost', myUsernameSecret: 'user', myPasswordSecret: 'Password' };
const HTTP = 'http://rabbit.example:15672';
const HTTPS = 'https://rabbit.example:15671';
const AMQPS = 'amqps://rabbit.example:5671';
const AMQP = 'amqp://rabbit.example:5672';
const sample = { queueName: 'sample' };
const fromEnv = { ...sample, hostFromEnv: 'myHostSecret' };

const rabbitRows: Row[] = [
  { name: 'nothing passed', metadata: {}, refuse: /missing required metadata 'queueName'/ },
  { name: 'properly formed metadata', metadata: { queueLength: '10', ...fromEnv }, want: { mode: 'QueueLength', target: 10, protocol: 'amqp', vhost: 'vhost' } },
  { name: 'malformed queueLength', metadata: { queueLength: 'AA', ...fromEnv }, refuse: /metadata 'queueLength' must be a number such as 5 or 2\.5, got 'AA'/ },
  { name: 'missing host', metadata: { queueLength: 'AA', ...sample }, refuse: /queueLength|host/ },
  { name: 'missing queueName', metadata: { queueLength: '10', hostFromEnv: 'myHostSecret' }, refuse: /missing required metadata 'queueName'/ },
  { name: 'host defined in authParams (queueName missing)', metadata: { queueLength: '10', hostFromEnv: 'myHostSecret' }, auth: { host: AMQP }, refuse: /queueName/ },
  { name: 'properly formed metadata with http protocol', metadata: { queueLength: '10', ...sample, host: HTTP, protocol: 'http' }, want: { protocol: 'http', target: 10, vhostPath: '/%2F' } },
  { name: 'queue name with slashes', metadata: { queueLength: '10', queueName: 'namespace/name', hostFromEnv: 'myHostSecret' }, want: { queueName: 'namespace/name' } },
  { name: 'vhost passed', metadata: { vhostName: 'myVhost', queueName: 'namespace/name', hostFromEnv: 'myHostSecret' }, want: { vhost: 'myVhost', url: 'amqp://user:sercet@somehost.com:5236/myVhost' } },
  { name: 'vhost passed but empty', metadata: { vhostName: '', queueName: 'namespace/name', hostFromEnv: 'myHostSecret' }, want: { vhost: 'vhost' } },
  { name: 'protocol defined in authParams', metadata: { ...sample, host: HTTP }, auth: { protocol: 'http' }, want: { protocol: 'http' } },
  { name: 'auto protocol and a bad URL', metadata: { ...sample, host: 'something://' }, refuse: /host must start with amqp:\/\/, amqps:\/\/, http:\/\/ or https:\/\/ for protocol auto/ },
  { name: 'auto protocol and an HTTP URL', metadata: { ...sample, host: HTTP }, want: { protocol: 'http' } },
  { name: 'auto protocol and an HTTPS URL', metadata: { ...sample, host: HTTPS }, want: { protocol: 'http', tls: { rejectUnauthorized: true } } },
  { name: 'queueLength and mode', metadata: { queueLength: '10', mode: 'QueueLength', ...sample, host: HTTPS }, refuse: /queueLength is deprecated/ },
  { name: 'queueLength and value', metadata: { queueLength: '10', value: '20', ...sample, host: HTTPS }, refuse: /queueLength is deprecated/ },
  { name: 'queueLength and mode and value', metadata: { queueLength: '10', mode: 'QueueLength', value: '20', ...sample, host: HTTPS }, refuse: /queueLength is deprecated/ },
  { name: 'only mode', metadata: { mode: 'QueueLength', ...sample, host: HTTPS }, refuse: /mode QueueLength needs a value/ },
  { name: 'only value', metadata: { value: '20', ...sample, host: HTTPS }, refuse: /value needs mode/ },
  { name: 'mode and value', metadata: { mode: 'QueueLength', value: '20', ...sample, host: HTTPS }, want: { mode: 'QueueLength', target: 20 } },
  { name: 'invalid mode', metadata: { mode: 'Feelings', value: '20', ...sample, host: HTTPS }, refuse: /metadata 'mode' must be one of QueueLength, MessageRate, DeliverGetRate, PublishedToDeliveredRatio, ExpectedQueueConsumptionTime/ },
  { name: 'invalid value', metadata: { mode: 'QueueLength', value: 'lots', ...sample, host: HTTPS }, refuse: /metadata 'value' must be a number/ },
  { name: 'queue length amqp', metadata: { mode: 'QueueLength', value: '20', ...sample, host: AMQPS }, want: { protocol: 'amqp', target: 20 } },
  { name: 'message rate amqps', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: AMQPS }, refuse: /mode MessageRate needs protocol http/ },
  { name: 'message rate amqp', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: AMQP }, refuse: /mode MessageRate needs protocol http/ },
  { name: 'message rate http', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTP }, want: { mode: 'MessageRate', target: 1000 } },
  { name: 'message rate https', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTPS }, want: { mode: 'MessageRate' } },
  { name: 'deliverGet rate amqps', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: AMQPS }, refuse: /mode DeliverGetRate needs protocol http/ },
  { name: 'deliverGet rate amqp', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: AMQP }, refuse: /mode DeliverGetRate needs protocol http/ },
  { name: 'deliverGet rate http', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTP }, want: { mode: 'DeliverGetRate', target: 1000 } },
  { name: 'deliverGet rate https', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTPS }, want: { mode: 'DeliverGetRate' } },
  { name: 'amqp host and useRegex', metadata: { ...sample, host: AMQPS, useRegex: 'true' }, refuse: /useRegex needs protocol http/ },
  { name: 'http host and useRegex', metadata: { ...sample, host: HTTP, useRegex: 'true' }, want: { regex: { pageSize: 100, operation: 'sum' } } },
  { name: 'message rate and useRegex', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTP, useRegex: 'true' }, want: { mode: 'MessageRate' } },
  { name: 'deliverGet rate and useRegex', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTP, useRegex: 'true' }, want: { mode: 'DeliverGetRate' } },
  { name: 'queue length and useRegex', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: HTTP, useRegex: 'true' }, want: { mode: 'QueueLength' } },
  { name: 'http valid timeout', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: HTTP, timeout: '1000' }, want: { timeoutMs: 1000 } },
  { name: 'http invalid timeout', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: HTTP, timeout: '-10' }, refuse: /metadata 'timeout' must be a duration that is not negative/ },
  { name: 'http wrong timeout', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: HTTP, timeout: 'error' }, refuse: /metadata 'timeout' must be a duration such as '30s'/ },
  { name: 'amqp timeout', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: AMQP, timeout: '10' }, refuse: /timeout applies to protocol http only/ },
  { name: 'valid pageSize', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: '100' }, want: { regex: { pageSize: 100, operation: 'sum' } } },
  { name: 'pageSize less than 1', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: '-1' }, refuse: /pageSize must be 1 or more, got -1/ },
  { name: 'invalid pageSize', metadata: { mode: 'MessageRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: 'a' }, refuse: /metadata 'pageSize' must be a whole number/ },
  { name: 'valid pageSize (DeliverGetRate)', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: '100' }, want: { regex: { pageSize: 100, operation: 'sum' } } },
  { name: 'pageSize less than 1 (DeliverGetRate)', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: '-1' }, refuse: /pageSize must be 1 or more/ },
  { name: 'invalid pageSize (DeliverGetRate)', metadata: { mode: 'DeliverGetRate', value: '1000', ...sample, host: HTTP, useRegex: 'true', pageSize: 'a' }, refuse: /'pageSize' must be a whole number/ },
  { name: 'activationValue passed', metadata: { activationValue: '10', queueLength: '20', ...fromEnv }, want: { activationTarget: 10, target: 20 } },
  { name: 'malformed activationValue', metadata: { activationValue: 'AA', queueLength: '10', ...fromEnv }, refuse: /metadata 'activationValue' must be a number/ },
  { name: 'http and excludeUnacknowledged', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: HTTP, useRegex: 'true', excludeUnacknowledged: 'true' }, want: { excludeUnacknowledged: true } },
  { name: 'amqp and excludeUnacknowledged', metadata: { mode: 'QueueLength', value: '1000', ...sample, host: AMQP, useRegex: 'true', excludeUnacknowledged: 'true' }, refuse: /needs protocol http/ },
  { name: 'unsafeSsl true', metadata: { ...sample, host: HTTPS, unsafeSsl: 'true' }, want: { tls: { rejectUnauthorized: false } } },
  { name: 'unsafeSsl wrong input', metadata: { ...sample, host: HTTPS, unsafeSsl: 'random' }, refuse: /metadata 'unsafeSsl' must be true or false \(KEDA reads it with Go's ParseBool/ },
  // TestRabbitMQParseAuthParamData
  { name: 'TLS with ca, cert and key', metadata: { ...sample, host: AMQPS }, auth: { tls: 'enable', ca: 'caaa', cert: 'ceert', key: 'keey' }, want: { tls: { rejectUnauthorized: true, ca: 'caaa', cert: 'ceert', key: 'keey' } } },
  { name: 'TLS cert/key and assumed public CA', metadata: fromEnv, auth: { tls: 'enable', cert: 'ceert', key: 'keey' }, want: { protocol: 'amqp' } },
  { name: 'TLS cert/key + key password', metadata: { ...sample, host: AMQPS }, auth: { tls: 'enable', cert: 'ceert', key: 'keey', keyPassword: 'keeyPassword' }, want: { tls: { rejectUnauthorized: true, cert: 'ceert', key: 'keey', passphrase: 'keeyPassword' }, externalAuth: true } },
  { name: 'TLS CA only', metadata: fromEnv, auth: { tls: 'enable', ca: 'caaa' }, want: { protocol: 'amqp' } },
  { name: 'TLS missing cert', metadata: fromEnv, auth: { tls: 'enable', ca: 'caaa', key: 'kee' }, refuse: /TLS needs both key and cert/ },
  { name: 'TLS missing key', metadata: fromEnv, auth: { tls: 'enable', ca: 'caaa', cert: 'ceert' }, refuse: /TLS needs both key and cert/ },
  { name: 'TLS invalid', metadata: fromEnv, auth: { tls: 'yes', ca: 'caaa', cert: 'ceert', key: 'kee' }, refuse: /TriggerAuthentication parameter 'tls' must be enable or disable, got 'yes'/ },
  { name: 'username and password', metadata: fromEnv, auth: { username: 'user', password: 'PASSWORD' }, want: { url: 'amqp://user:PASSWORD@somehost.com:5236/vhost' } },
  { name: 'username but no password', metadata: fromEnv, auth: { username: 'user' }, refuse: /username and password must be given together/ },
  { name: 'password but no username', metadata: fromEnv, auth: { password: 'PASSWORD' }, refuse: /username and password must be given together/ },
  { name: 'vhostName from authParams', metadata: fromEnv, auth: { vhostName: 'myVhost' }, want: { vhost: 'myVhost' } },
  { name: 'vhostName from authParams but empty', metadata: fromEnv, auth: { vhostName: '' }, want: { vhost: 'vhost' } },
  { name: 'username and password from env', metadata: { ...fromEnv, usernameFromEnv: 'myUsernameSecret', passwordFromEnv: 'myPasswordSecret' }, want: { url: 'amqp://user:Password@somehost.com:5236/vhost' } },
  { name: 'username from env but not password', metadata: { ...fromEnv, usernameFromEnv: 'myUsernameSecret' }, refuse: /username and password must be given together/ },
  { name: 'password from env but not username', metadata: { ...fromEnv, passwordFromEnv: 'myPasswordSecret' }, refuse: /username and password must be given together/ },
  { name: 'workload identity with amqp', metadata: { ...fromEnv, protocol: 'amqp' }, podIdentity: 'azure-workload', auth: { workloadIdentityResource: 'rabbitmq-resource-id' }, refuse: /workload identity is not supported for protocol amqp/ },
  { name: 'OAuth2 with the AMQP protocol', metadata: { ...sample, host: 'amqp://localhost:5672', protocol: 'amqp' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientID: 'my-client', clientSecret: 'my-secret' }, refuse: /OAuth2 is supported with protocol http only/ },
  { name: 'OAuth2 + basic auth', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientID: 'my-client', clientSecret: 'my-secret', username: 'user', password: 'pass' }, refuse: /OAuth2 cannot be combined with username\/password/ },
  { name: 'OAuth2 + workload identity', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientID: 'my-client', clientSecret: 'my-secret', workloadIdentityResource: 'rabbitmq-resource-id' }, refuse: /OAuth2 cannot be combined/ },
  { name: 'OAuth2 missing tokenUrl', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { clientID: 'my-client', clientSecret: 'my-secret' }, refuse: /OAuth2 needs oauthTokenURI, clientID and clientSecret/ },
  { name: 'OAuth2 missing clientId', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientSecret: 'my-secret' }, refuse: /OAuth2 needs/ },
  { name: 'OAuth2 missing clientSecret', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientID: 'my-client' }, refuse: /OAuth2 needs/ },
  // TestParseDefaultQueueLength
  { name: 'use default queueLength', metadata: fromEnv, want: { mode: 'QueueLength', target: 20 } },
  { name: 'use default queueLength with http', metadata: { ...sample, host: HTTP, protocol: 'http' }, want: { mode: 'QueueLength', target: 20 } },
];

describe('KEDA tables: rabbitmq (rabbitmq_scaler_test.go)', { timeout: 60_000 }, () => {
  table('rabbitmq', rabbitRows.map((r) => ({ ...r, env: { ...RABBIT_ENV, ...r.env } })), parseRabbitmqTrigger);

  test('rabbitmq trigger names its metric as KEDA: s<index>-rabbitmq-<queue, query-escaped>', () => {
    assert.equal(rabbitmqMetricName(0, 'sample'), 's0-rabbitmq-sample');
    assert.equal(rabbitmqMetricName(1, 'namespace/name'), 's1-rabbitmq-namespace-2Fname');
  });

  // testQueueInfoTestData: [mode, messages, publish rate, deliver/get rate, active], activation 0.
  const activity: Array<[RabbitmqMode, number, number, number, boolean]> = [
    ['QueueLength', 4, 0, 0, true], ['QueueLength', 1, 0, 0, true], ['QueueLength', 0, 0, 0, false],
    ['QueueLength', 4, 1.4, 0.8, true], ['QueueLength', 0, 1.4, 2, false], ['QueueLength', 0, 1.4, 0, false],
    ['MessageRate', 4, 0, 1.3, true], ['MessageRate', 1, 0, 1, true], ['MessageRate', 0, 0, 0, false],
    ['MessageRate', 4, 1.4, 1.3, true], ['MessageRate', 1, 1.4, 1, true], ['MessageRate', 0, 1.4, 0, true],
    ['DeliverGetRate', 30, 5, 1, true], ['DeliverGetRate', 20, 0, 10, true], ['DeliverGetRate', 10, 0, 12.5, true],
    ['DeliverGetRate', 0, 0, 0, false], ['DeliverGetRate', 45, 5.5, 1.5, true], ['DeliverGetRate', 3, 0, 18.5, true],
  ];
  test('rabbitmq trigger is active as KEDA per mode: MessageRate when either the rate or the queue passes the activation value', () => {
    for (const [mode, messages, publishRate, deliverGetRate, active] of activity) {
      assert.equal(rabbitmqMetricAndActivity(mode, { messages, publishRate, deliverGetRate }, 0).active, active, `${mode} ${messages} ${publishRate} ${deliverGetRate}`);
    }
    assert.deepEqual(rabbitmqMetricAndActivity('MessageRate', { messages: 7, publishRate: 0, deliverGetRate: 0 }, 5), { value: 0, active: true });
    assert.deepEqual(rabbitmqMetricAndActivity('MessageRate', { messages: 5, publishRate: 0, deliverGetRate: 0 }, 5), { value: 0, active: false });
  });

  test('rabbitmq trigger computes the ratio and drain-time modes as KEDA does', () => {
    const ratio = (pub: number, dg: number, act = 1): ReturnType<typeof rabbitmqMetricAndActivity> =>
      rabbitmqMetricAndActivity('PublishedToDeliveredRatio', { messages: 0, publishRate: pub, deliverGetRate: dg }, act);
    assert.deepEqual(ratio(4, 2), { value: 2, active: true });
    assert.deepEqual(ratio(1, 2), { value: 0.5, active: false });
    assert.deepEqual(ratio(3, 0), { value: 1, active: true }, 'publishing with nothing delivered: the activation value, and active');
    assert.deepEqual(ratio(0, 0), { value: 0, active: false });
    const eta = (messages: number, pub: number, dg: number, act = 10): ReturnType<typeof rabbitmqMetricAndActivity> =>
      rabbitmqMetricAndActivity('ExpectedQueueConsumptionTime', { messages, publishRate: pub, deliverGetRate: dg }, act);
    assert.deepEqual(eta(100, 2, 4), { value: -0.5 + 25, active: true });
    assert.deepEqual(eta(4, 1, 2), { value: -0.5 + 2, active: false });
    assert.deepEqual(eta(0, 0, 0), { value: 10, active: true }, 'nothing delivered: active, as KEDA');
  });

  const mq = (total: number, ready: number, publishRate: number, deliverGetRate: number): ManagedQueue => ({ name: 'x', total, ready, unacked: total - ready, publishRate, deliverGetRate });
  test('rabbitmq trigger composes the queues useRegex matches as KEDA: sum, avg (counts truncated) and max', () => {
    const two = [mq(5, 3, 1, 3), mq(6, 4, 3, 5)];
    assert.deepEqual(composeQueues(two, 'sum', false), { messages: 11, publishRate: 4, deliverGetRate: 8 });
    assert.deepEqual(composeQueues(two, 'avg', false), { messages: 5, publishRate: 2, deliverGetRate: 4 });
    assert.deepEqual(composeQueues(two, 'avg', true), { messages: 3, publishRate: 2, deliverGetRate: 4 });
    assert.deepEqual(composeQueues([mq(8, 8, 0, 2), mq(4, 4, 0, 4)], 'max', false), { messages: 8, publishRate: 0, deliverGetRate: 4 });
    assert.deepEqual(composeQueues([], 'max', false), { messages: 0, publishRate: 0, deliverGetRate: 0 });
    assert.equal(rabbitmqMetricAndActivity('MessageRate', composeQueues([mq(1, 0, 4, 0), mq(1, 0, 0, 0)], 'avg', false), 0).active, true);
    assert.equal(rabbitmqMetricAndActivity('MessageRate', composeQueues([], 'avg', false), 0).active, false);
  });

  test('rabbitmq trigger puts the vhost and path prefix of an http host where KEDA does', () => {
    const read = (host: string, vhostName?: string): { url: string; vhostPath: string } => {
      const s = parseRabbitmqTrigger(load('rabbitmq', { metadata: { ...sample, host, ...(vhostName !== undefined ? { vhostName } : {}) } }));
      return { url: s.url, vhostPath: s.vhostPath };
    };
    assert.deepEqual(read('http://u:p@rabbit:15672'), { url: 'http://u:p@rabbit:15672', vhostPath: '/%2F' });
    assert.deepEqual(read('http://u:p@rabbit:15672/'), { url: 'http://u:p@rabbit:15672', vhostPath: '/%2F' });
    assert.deepEqual(read('http://u:p@rabbit:15672/prod'), { url: 'http://u:p@rabbit:15672', vhostPath: '/prod' });
    assert.deepEqual(read('http://u:p@rabbit:15672/%2F'), { url: 'http://u:p@rabbit:15672', vhostPath: '/%2F' });
    assert.deepEqual(read('http://u:p@rabbit:15672/mgmt/prod'), { url: 'http://u:p@rabbit:15672/mgmt', vhostPath: '/prod' });
    assert.deepEqual(read('http://u:p@rabbit:15672/mgmt/prod', 'staging'), { url: 'http://u:p@rabbit:15672/mgmt', vhostPath: '/staging' });
    assert.deepEqual(read('http://u:p@rabbit:15672/prod', '/'), { url: 'http://u:p@rabbit:15672', vhostPath: '/%2F' });
  });
});

// ------------------------------------------------------------------------------------------------------ redis-streams
const REDIS_ENV = { REDIS_SERVICE: 'myredis:6379', REDIS_HOST: 'myredis', REDIS_PORT: '6379', REDIS_USERNAME: 'foobarred', REDIS_PASSWORD: 'foobarred', REDIS_SERVER: 'myredis:6379' };
const creds = { usernameFromEnv: 'REDIS_USERNAME', passwordFromEnv: 'REDIS_PASSWORD' };
const redisSettings = (t: ResolvedTrigger): object => {
  const s = parseRedisStreamsTrigger(t);
  return { ...s, host: s.conn.host, port: s.conn.port, username: s.conn.username, password: s.conn.password, tls: s.conn.tls, db: s.conn.db };
};
const group = { stream: 'my-stream', consumerGroup: 'my-stream-consumer-group' };

const redisRows: Row[] = [
  { name: 'pending entries, with address', metadata: { ...group, pendingEntriesCount: '5', addressFromEnv: 'REDIS_SERVICE', ...creds, databaseIndex: '0', enableTLS: 'true' },
    want: { measure: 'pending', target: 5, host: 'myredis', port: 6379, username: 'foobarred', password: 'foobarred', db: 0, tls: true } },
  { name: 'pending entries, with host and port (credentials from env before authParams)', metadata: { ...group, pendingEntriesCount: '15', hostFromEnv: 'REDIS_HOST', port: '6379', ...creds, databaseIndex: '0', enableTLS: 'false' },
    auth: { username: 'other', password: 'other' }, want: { measure: 'pending', target: 15, host: 'myredis', username: 'foobarred', tls: false } },
  { name: 'lag, with address', metadata: { ...group, lagCount: '5', activationLagCount: '3', addressFromEnv: 'REDIS_SERVICE', ...creds, databaseIndex: '0', enableTLS: 'true' },
    want: { measure: 'lag', target: 5, activationTarget: 3, tls: true } },
  { name: 'lag, with host and port', metadata: { ...group, lagCount: '2', activationLagCount: '3', hostFromEnv: 'REDIS_HOST', port: '6379', ...creds, databaseIndex: '0', enableTLS: 'false' },
    auth: { username: 'foobarred', password: 'foobarred' }, want: { measure: 'lag', target: 2, activationTarget: 3 } },
  { name: 'missing address as well as host/port', metadata: { stream: 'my-stream', pendingEntriesCount: '5', lagCount: '5', consumerGroup: 'my-stream-consumer-group' }, refuse: /no address given/ },
  { name: 'host present but missing port', metadata: { stream: 'my-stream', pendingEntriesCount: '5', lagCount: '5', consumerGroup: 'g', host: 'REDIS_HOST' }, refuse: /host needs port/ },
  { name: 'port present but missing host', metadata: { stream: 'my-stream', pendingEntriesCount: '5', lagCount: '5', consumerGroup: 'g', port: 'REDIS_PORT' }, refuse: /port needs host/ },
  { name: 'missing stream', metadata: { pendingEntriesCount: '5', consumerGroup: 'g', address: 'REDIS_HOST' }, refuse: /missing required metadata 'stream'/ },
  { name: 'invalid lag', metadata: { ...group, pendingEntriesCount: '5', lagCount: 'junk', host: 'REDIS_HOST', port: 'REDIS_PORT', databaseIndex: '0', enableTLS: 'false' }, refuse: /metadata 'lagCount' must be a whole number/ },
  { name: 'invalid pendingEntriesCount', metadata: { ...group, pendingEntriesCount: 'junk', host: 'REDIS_HOST', port: 'REDIS_PORT', databaseIndex: '0', enableTLS: 'false' }, refuse: /metadata 'pendingEntriesCount' must be a whole number/ },
  { name: 'invalid streamLength', metadata: { stream: 'my-stream', streamLength: 'junk', host: 'REDIS_HOST', port: 'REDIS_PORT', databaseIndex: '0', enableTLS: 'false' }, refuse: /metadata 'streamLength' must be a whole number/ },
  { name: 'invalid databaseIndex', metadata: { ...group, pendingEntriesCount: '15', address: 'REDIS_SERVER', databaseIndex: 'junk', enableTLS: 'false' }, refuse: /metadata 'databaseIndex' must be a whole number/ },
  { name: 'invalid enableTLS', metadata: { ...group, pendingEntriesCount: '15', address: 'REDIS_SERVER', databaseIndex: '1', enableTLS: 'no' }, refuse: /metadata 'enableTLS' must be true or false \(KEDA reads it with Go's ParseBool/ },
  { name: 'unequal number of hosts/ports', metadata: { hosts: 'a, b, c', ports: '1, 2', stream: 's' }, refuse: /host gives 3 host\(s\) and port 2 port\(s\)/ },
  { name: 'hosts and ports pair up; the first is dialled', metadata: { hosts: 'a, b, c', ports: '1, 2, 3', stream: 'my-stream', lagCount: '7', activationLagCount: '3', consumerGroup: 'consumer1' },
    want: { host: 'a', port: 1, measure: 'lag', target: 7, activationTarget: 3 } },
  { name: 'addresses given in authParams', metadata: { stream: 'my-stream', lagCount: '6', activationLagCount: '3', consumerGroup: 'consumer1' }, auth: { addresses: ':7001, :7002' },
    want: { host: '127.0.0.1', port: 7001, measure: 'lag' } },
  { name: 'zero activation lag count with lag count is allowed', metadata: { stream: 'my-stream', lagCount: '7', activationLagCount: '0', consumerGroup: 'consumer1' }, auth: { addresses: ':7001, :7002' },
    want: { activationTarget: 0, target: 7 } },
  { name: 'tls in auth param', metadata: { stream: 'my-stream', address: 'a:1' }, auth: { tls: 'enable' }, want: { tls: true } },
  { name: 'tls both in metadata and auth param', metadata: { stream: 'my-stream', address: 'a:1', enableTLS: 'true' }, auth: { tls: 'enable' }, refuse: /TLS is set both by enableTLS and by the TriggerAuthentication/ },
  { name: 'stream is provided: its length, target streamLength 5', metadata: { stream: 'my-stream', address: 'a:1' }, want: { measure: 'length', target: 5, activationTarget: 0 } },
  { name: 'stream and consumerGroup: pending entries, target 5', metadata: { stream: 'my-stream', consumerGroup: 'consumer1', address: 'a:1' }, want: { measure: 'pending', target: 5 } },
  // The row: validateRedisStreams uses lagCount only with a consumer group.
  { name: 'lagCount without consumerGroup is not used: the stream length', metadata: { stream: 'my-stream', lagCount: '3', address: 'a:1' }, want: { measure: 'length', target: 5 } },
];

describe('KEDA tables: redis-streams (redis_streams_scaler_test.go)', { timeout: 60_000 }, () => {
  table('redis-streams', redisRows.map((r) => ({ ...r, env: REDIS_ENV })), redisSettings);
  test('redis-streams trigger names its metric as KEDA: s<index>-redis-streams-<stream>', () => {
    assert.equal(redisStreamsMetricName(0, 'my-stream'), 's0-redis-streams-my-stream');
    assert.equal(redisStreamsMetricName(1, 'my-stream'), 's1-redis-streams-my-stream');
  });
});

// --------------------------------------------------------------------------------------------------------- postgresql
const PG_ENV = { POSTGRE_PASSWORD: 'pass', POSTGRE_CONN_STR: 'postgresql://user@db.example:5432/app', CONNECTION_ENV: 'postgresql://env@db.example/app' };
const pgRows: Row[] = [
  { name: 'no metadata', metadata: {}, refuse: /missing required metadata 'query'/ },
  { name: 'connection string from env', metadata: { query: 'query', targetQueryValue: '12', connectionFromEnv: 'POSTGRE_CONN_STR' }, want: { target: 12, activationTarget: 0, query: 'query' } },
  { name: 'params instead of a connection string', metadata: { query: 'query', targetQueryValue: '12', host: 'test_host', port: '5432', userName: 'test_username', passwordFromEnv: 'POSTGRE_PASSWORD', dbName: 'test_dbname', sslmode: 'require' },
    want: { target: 12 } },
  { name: 'params from trigger authentication', metadata: { query: 'query', targetQueryValue: '12' }, auth: { host: 'test_host', port: '5432', userName: 'test_username', password: 'POSTGRE_PASSWORD', dbName: 'test_dbname', sslmode: 'disable' },
    want: { target: 12 } },
  { name: 'connection from authentication', metadata: { query: 'test_query', targetQueryValue: '5' }, auth: { connection: 'postgresql://auth@db.example/app' }, want: { target: 5 } },
  { name: 'connection with activationTargetQueryValue', metadata: { query: 'test_query', targetQueryValue: '5', activationTargetQueryValue: '3', connectionFromEnv: 'CONNECTION_ENV' }, want: { target: 5, activationTarget: 3 } },
  { name: 'no targetQueryValue', metadata: { query: 'q', connectionFromEnv: 'CONNECTION_ENV' }, refuse: /no targetQueryValue given/ },
  { name: 'no host (and no connection)', metadata: { query: 'q', targetQueryValue: '5', port: '5432', userName: 'u', dbName: 'd', sslmode: 'disable' }, refuse: /no host given/ },
  { name: 'no sslmode', metadata: { query: 'q', targetQueryValue: '5', host: 'h', port: '5432', userName: 'u', dbName: 'd' }, refuse: /no sslmode given/ },
  // The row: any query returning one number.
  { name: 'an arbitrary query', metadata: { query: 'SELECT max(priority) FROM jobs WHERE state = 1', targetQueryValue: '2.5', connectionFromEnv: 'CONNECTION_ENV' }, want: { queueName: '', target: 2.5 } },
];

describe('KEDA tables: postgresql (postgresql_scaler_test.go)', { timeout: 60_000 }, () => {
  table('postgresql', pgRows.map((r) => ({ ...r, env: PG_ENV })), parsePostgresqlTrigger);

  test('postgresql trigger builds the connection string from its fields as KEDA, escaping what would break out of a value', () => {
    const base = { host: 'localhost', port: '1234', dbName: 'testDb', userName: 'user', sslmode: 'required' };
    assert.equal(postgresqlConnectionFromFields(base), 'host=localhost port=1234 user=user dbname=testDb sslmode=required password=');
    assert.equal(postgresqlConnectionFromFields({ ...base, host: 'host1,host2' }), 'host=host1,host2 port=1234 user=user dbname=testDb sslmode=required password=');
    const escaped: Array<[string, string]> = [
      ['simple', 'simple'], ['with space', "'with space'"], ['user\tsslmode=disable', "'user\tsslmode=disable'"], ['user\nhost=attacker', "'user\nhost=attacker'"],
      ["user'name", "'user\\'name'"], ['user\\name', "'user\\\\name'"], ["user\\'name", "'user\\\\\\'name'"],
    ];
    for (const [input, want] of escaped) assert.equal(postgresqlConnectionFromFields({ ...base, userName: input }), `host=localhost port=1234 user=${want} dbname=testDb sslmode=required password=`, input);
    assert.equal(
      postgresqlConnectionFromFields({ host: 'db.example', port: '5432', dbName: 'testdb', userName: 'user\tsslmode=disable', sslmode: 'require', password: 'secret\nhost=attacker' }),
      "host=db.example port=5432 user='user\tsslmode=disable' dbname=testdb sslmode=require password='secret\nhost=attacker'",
    );
  });

  test('postgresql trigger names its metric as KEDA: s<index>-postgresql', async () => {
    for (const index of [0, 1]) {
      const s = postgresqlTrigger.create(load('postgresql', { metadata: { query: 'q', targetQueryValue: '5', connectionFromEnv: 'CONNECTION_ENV' }, env: PG_ENV }, index));
      assert.equal(s.metricName, `s${index}-postgresql`);
      await s.close();
    }
  });
});

// ----------------------------------------------------------------------------------------------------- nats-jetstream
const natsRows: Row[] = [
  { name: 'all good localhost', metadata: { natsServerMonitoringEndpoint: 'localhost:8222', account: '$G', accountID: '$G', stream: 'mystream', consumer: 'pull_consumer', useHttps: 'false' },
    want: { monitoringUrl: 'http://localhost:8222/jsz?acc=%24G&config=true&consumers=true', target: 10, activationTarget: 0 } },
  { name: 'all good url, https', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', stream: 'mystream', consumer: 'pull_consumer', useHttps: 'true' },
    want: { monitoringUrl: 'https://nats.nats:8222/jsz?acc=%24G&config=true&consumers=true' } },
  { name: 'accountID without account (the id is asked for)', metadata: { natsServerMonitoringEndpoint: 'localhost:8222', accountID: '$G', stream: 'mystream', consumer: 'pull_consumer', useHttps: 'false' },
    want: { accountID: '$G', account: undefined } },
  { name: 'nothing passed', metadata: {}, refuse: /missing required metadata/ },
  { name: 'missing account name and ID', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', stream: 'mystream', consumer: 'pull_consumer' }, refuse: /no account name or id given/ },
  { name: 'missing stream name', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', consumer: 'pull_consumer' }, refuse: /missing required metadata 'stream'/ },
  { name: 'missing consumer name', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', stream: 'mystream' }, refuse: /missing required metadata 'consumer'/ },
  { name: 'missing nats server monitoring endpoint', metadata: { account: '$G', stream: 'mystream' }, refuse: /missing required metadata/ },
  { name: 'activationLagThreshold', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', stream: 'mystream', consumer: 'pull_consumer', activationLagThreshold: '10' }, want: { activationTarget: 10 } },
  { name: 'misconfigured activationLagThreshold', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', stream: 'mystream', consumer: 'pull_consumer', activationLagThreshold: 'Y' }, refuse: /metadata 'activationLagThreshold' must be a whole number/ },
  { name: 'natsServerMonitoringEndpoint in authParams', metadata: { account: '$G', stream: 'mystream', consumer: 'pull_consumer' }, auth: { natsServerMonitoringEndpoint: 'nats.nats:8222' }, want: { endpoint: 'nats.nats:8222' } },
  { name: 'natsServerMonitoringEndpoint empty in authParams', metadata: { account: '$G', stream: 'mystream', consumer: 'pull_consumer' }, auth: { natsServerMonitoringEndpoint: '' }, refuse: /missing required metadata 'natsServerMonitoringEndpoint'/ },
  { name: 'misconfigured https', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', account: '$G', stream: 'mystream', consumer: 'pull_consumer', useHttps: 'error' }, refuse: /metadata 'useHttps' must be true or false/ },
  { name: 'lagThreshold', metadata: { account: '$G', stream: 'mystream', consumer: 'pull_consumer', lagThreshold: '6' }, auth: { natsServerMonitoringEndpoint: 'nats.nats:8222' }, want: { target: 6 } },
  { name: 'misconfigured lagThreshold', metadata: { account: '$G', stream: 'mystream', consumer: 'pull_consumer', lagThreshold: 'Y' }, auth: { natsServerMonitoringEndpoint: 'nats.nats:8222' }, refuse: /metadata 'lagThreshold' must be a whole number/ },
  { name: 'account from authParams', metadata: { stream: 'mystream', consumer: 'pull_consumer' }, auth: { account: '$G', natsServerMonitoringEndpoint: 'nats.nats:8222' }, want: { account: '$G', accountID: '$G' } },
  { name: 'misconfigured account', metadata: { stream: 'mystream', consumer: 'pull_consumer' }, auth: { natsServerMonitoringEndpoint: 'nats.nats:8222' }, refuse: /no account name or id given/ },
  { name: 'an account id with an ampersand cannot add parameters', metadata: { natsServerMonitoringEndpoint: 'nats.nats:8222', accountID: 'myaccount&consumers=false', stream: 's', consumer: 'c' },
    want: { monitoringUrl: 'http://nats.nats:8222/jsz?acc=myaccount%26consumers%3Dfalse&config=true&consumers=true' } },
];

describe('KEDA tables: nats-jetstream (nats_jetstream_scaler_test.go)', { timeout: 60_000 }, () => {
  table('nats-jetstream', natsRows, parseNatsJetStreamTrigger);

  test('nats-jetstream trigger names its metric as KEDA: s<index>-nats-jetstream-<stream>', async () => {
    for (const index of [0, 1]) {
      const s = natsJetStreamTrigger.create(load('nats-jetstream', { metadata: { natsServerMonitoringEndpoint: 'localhost:8222', account: '$G', stream: 'mystream', consumer: 'pull_consumer' } }, index));
      assert.equal(s.metricName, `s${index}-nats-jetstream-mystream`);
      await s.close();
    }
  });

  const who = { account: '$G', accountID: '$G', stream: 'mystream', consumer: 'pull_consumer' };
  const jsz = (streams: NonNullable<NonNullable<Jsz['account_details']>[number]['stream_detail']>, id?: string): Jsz => ({ account_details: [{ name: '$G', ...(id ? { id } : {}), stream_detail: streams }] });
  test('nats-jetstream trigger reads /jsz as KEDA: pending + ack pending of the consumer, an error when the consumer or stream is missing', () => {
    assert.equal(natsLagFromJsz(jsz([{ name: 'mystream', consumer_detail: [{ name: 'pull_consumer' }] }]), who), 0);
    assert.equal(natsLagFromJsz(jsz([{ name: 'mystream', consumer_detail: [{ name: 'pull_consumer', num_pending: 100 }] }]), who), 100);
    assert.equal(natsLagFromJsz(jsz([{ name: 'mystream', state: { last_seq: 9999 }, consumer_detail: [{ name: 'pull_consumer', num_pending: 7, num_ack_pending: 3 }] }]), who), 10);
    assert.throws(() => natsLagFromJsz(jsz([{ name: 'mystream', state: { last_seq: 1000 }, consumer_detail: [{ name: 'pull_consumer_bad', num_pending: 100 }] }]), who),
      /consumer 'pull_consumer' not found in stream 'mystream'/, 'never the stream\'s last sequence');
    assert.throws(() => natsLagFromJsz(jsz([{ name: 'mystreamBad', state: { last_seq: 1 }, consumer_detail: [{ name: 'pull_consumer', num_pending: 100 }] }]), who), /stream 'mystream' not found/);
    assert.throws(() => natsLagFromJsz(jsz([{ name: 'mystream' }]), who), /consumer 'pull_consumer' not found/);
    // An account is matched by its id (accountID) or by its name (account).
    assert.equal(natsLagFromJsz(jsz([{ name: 'mystream', consumer_detail: [{ name: 'pull_consumer', num_pending: 4 }] }], 'ACC123'), { ...who, account: undefined, accountID: 'ACC123' }), 4);
  });
});

// --------------------------------------------------------------------------------------------------- azure-servicebus
const SB_CS = 'Endpoint=sb://namespacename.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c29tZXJlYWxseWltcG9ydGFudGtleQ==';
const SB_ENV = { none: SB_CS };
const conn = { connectionFromEnv: 'none' };
const sbRows: Row[] = [
  { name: 'nothing passed', metadata: {}, refuse: /no service bus entity given/ },
  { name: 'properly formed queue', metadata: { queueName: 'testqueue', ...conn }, want: { entity: { kind: 'queue', queueName: 'testqueue' }, target: 5, activationTarget: 0 } },
  { name: 'properly formed queue with message count', metadata: { queueName: 'testqueue', ...conn, messageCount: '1000' }, want: { target: 1000 } },
  { name: 'properly formed topic & subscription', metadata: { topicName: 'testtopic', subscriptionName: 'testsubscription', ...conn }, want: { entity: { kind: 'subscription', topicName: 'testtopic', subscriptionName: 'testsubscription' } } },
  { name: 'topic & subscription with message count', metadata: { topicName: 'testtopic', subscriptionName: 'testsubscription', ...conn, messageCount: '1000' }, want: { target: 1000 } },
  { name: 'queue and topic specified', metadata: { queueName: 'testqueue', topicName: 'testtopic', ...conn }, refuse: /both topic and queue name metadata provided/ },
  { name: 'queue and subscription specified', metadata: { queueName: 'testqueue', subscriptionName: 'testsubscription', ...conn }, refuse: /subscription name provided with queue name/ },
  { name: 'topic but no subscription specified', metadata: { topicName: 'testtopic', ...conn }, refuse: /no subscription name provided with topic name/ },
  { name: 'subscription but no topic specified', metadata: { subscriptionName: 'testsubscription', ...conn }, refuse: /no service bus entity given/ },
  { name: 'valid cloud', metadata: { queueName: 'testqueue', ...conn, cloud: 'AzureChinaCloud' }, want: { target: 5 } },
  { name: 'invalid cloud', metadata: { queueName: 'testqueue', cloud: 'InvalidCloud' }, podIdentity: 'azure-workload', refuse: /namespace is required when using pod identity/ },
  { name: 'private cloud with endpoint suffix', metadata: { queueName: 'testqueue', ...conn, cloud: 'Private', endpointSuffix: 'servicebus.private.cloud' }, want: { target: 5 } },
  { name: 'private cloud without endpoint suffix', metadata: { queueName: 'testqueue', cloud: 'Private' }, podIdentity: 'azure-workload', refuse: /namespace is required when using pod identity/ },
  { name: 'endpoint suffix without cloud', metadata: { queueName: 'testqueue', ...conn, endpointSuffix: 'ignored' }, want: { target: 5 } },
  { name: 'connection not set', metadata: { queueName: 'testqueue' }, refuse: /no connection setting given/ },
  { name: 'connection set in auth params', metadata: { queueName: 'testqueue' }, auth: { connection: SB_CS }, want: { host: 'namespacename.servicebus.windows.net' } },
  { name: 'workload identity but missing namespace', metadata: { queueName: 'testqueue' }, podIdentity: 'azure-workload', refuse: /namespace is required when using pod identity/ },
  { name: 'correct workload identity', metadata: { queueName: 'testqueue', namespace: 'ns' }, podIdentity: 'azure-workload', want: { host: 'ns.servicebus.windows.net', connectionString: '' } },
  { name: 'invalid activation message count', metadata: { queueName: 'testqueue', ...conn, messageCount: '1000', activationMessageCount: 'AA' }, refuse: /metadata 'activationMessageCount' must be a whole number/ },
  { name: 'queue with incorrect useRegex value', metadata: { queueName: 'testqueue', ...conn, useRegex: 'ababa' }, refuse: /metadata 'useRegex' must be true or false/ },
  { name: 'queue with useRegex false', metadata: { queueName: 'testqueue', ...conn, useRegex: 'false' }, want: { target: 5 } },
  { name: 'queue with useRegex and a random operation', metadata: { queueName: 'testqueue', ...conn, useRegex: 'true', operation: 'random' }, refuse: /metadata 'operation' must be one of sum, max, avg/ },
  { name: 'queue with invalid regex string', metadata: { queueName: '*', ...conn, useRegex: 'true', operation: 'avg' }, refuse: /queueName is not a valid regular expression/ },
  { name: 'subscription with incorrect useRegex value', metadata: { topicName: 'testtopic', subscriptionName: 'testsubscription', ...conn, useRegex: 'ababa' }, refuse: /'useRegex' must be true or false/ },
  { name: 'subscription with useRegex false', metadata: { topicName: 'testtopic', subscriptionName: 'testsubscription', ...conn, useRegex: 'false' }, want: { target: 5 } },
  { name: 'subscription with useRegex and a random operation', metadata: { topicName: 'testtopic', subscriptionName: 'testsubscription', ...conn, useRegex: 'true', operation: 'random' }, refuse: /'operation' must be one of sum, max, avg/ },
  { name: 'subscription with invalid regex string', metadata: { topicName: 'testtopic', subscriptionName: '*', ...conn, useRegex: 'true', operation: 'avg' }, refuse: /subscriptionName is not a valid regular expression/ },
];

describe('KEDA tables: azure-servicebus (azure_servicebus_scaler_test.go)', { timeout: 60_000 }, () => {
  table('azure-servicebus', sbRows.map((r) => ({ ...r, env: SB_ENV })), parseServiceBusTrigger);
  test('azure-servicebus trigger names its metric as KEDA: s<index>-azure-servicebus-<queue or topic>', () => {
    assert.equal(serviceBusMetricName(0, 'testqueue'), 's0-azure-servicebus-testqueue');
    assert.equal(serviceBusMetricName(1, 'testtopic'), 's1-azure-servicebus-testtopic');
  });
});

// -------------------------------------------------------------------------------------------------------- deviations
/**
 * Rows KEDA's tables accept that qscale refuses at load, each with why: placeholders KEDA parses and can never dial
 * (it fails when it builds the scaler or at every read), and authentication only a cluster provides.
 */
const DEVIATIONS: Array<{ type: string; row: Row; read: (t: ResolvedTrigger) => object }> = [
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'a host with no scheme (KEDA\'s placeholder myHostSecret with protocol http)', metadata: { queueLength: '10', ...sample, host: 'myHostSecret', protocol: 'http' }, refuse: /protocol http needs a host starting with http:\/\/ or https:\/\// } },
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'a host that names no host (KEDA\'s placeholder http://)', metadata: { ...sample, host: 'http://' }, refuse: /host must be a URL such as/ } },
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'a host that names no host (KEDA\'s placeholder amqps://)', metadata: { ...sample, host: 'amqps://' }, refuse: /host must be a URL such as|host names no host/ } },
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'protocol http from authParams with an amqp:// host', metadata: fromEnv, auth: { protocol: 'http' }, env: RABBIT_ENV, refuse: /protocol http needs a host starting with http:\/\/ or https:\/\//, } },
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'Azure AD workload identity over http (cluster only)', metadata: { ...fromEnv, protocol: 'http' }, env: { myHostSecret: HTTP }, podIdentity: 'azure-workload', auth: { workloadIdentityResource: 'rabbitmq-resource-id' }, refuse: /Azure AD workload identity is cluster-only/ } },
  { type: 'rabbitmq', read: parseRabbitmqTrigger,
    row: { name: 'OAuth2 client credentials over http', metadata: { ...sample, host: 'http://localhost:15672', protocol: 'http' }, auth: { oauthTokenURI: 'https://oauth.example.com/token', clientID: 'my-client', clientSecret: 'my-secret' }, refuse: /OAuth2 \(oauthTokenURI, clientID, clientSecret\) is not supported by qscale/ } },
  { type: 'redis-streams', read: redisSettings,
    row: { name: 'a port that is no number (KEDA\'s placeholder REDIS_PORT)', metadata: { stream: 's', hostFromEnv: 'REDIS_HOST', port: 'REDIS_PORT' }, env: REDIS_ENV, refuse: /the address must be host:port such as 127\.0\.0\.1:6379 \(go-redis dials nothing else\), got 'myredis:REDIS_PORT'/ } },
  { type: 'redis-streams', read: redisSettings,
    row: { name: 'an address without a port (KEDA\'s placeholder my-address)', metadata: { stream: 's', address: 'my-address' }, refuse: /the address must be host:port/ } },
  { type: 'postgresql', read: parsePostgresqlTrigger,
    row: { name: 'a connection string that is no connection string (KEDA\'s placeholder test_conn_str)', metadata: { query: 'q', targetQueryValue: '12', connectionFromEnv: 'C' }, env: { C: 'test_conn_str' }, refuse: /the connection is not valid/ } },
  { type: 'postgresql', read: parsePostgresqlTrigger,
    row: { name: 'a port that is no number (KEDA\'s placeholder test_port)', metadata: { query: 'q', targetQueryValue: '5', host: 'test_host', port: 'test_port', userName: 'u', dbName: 'd', sslmode: 'require' }, refuse: /port must be a port number such as 5432, got 'test_port'/ } },
  { type: 'postgresql', read: parsePostgresqlTrigger,
    row: { name: 'an sslmode libpq does not have (KEDA\'s placeholder required)', metadata: { query: 'q', targetQueryValue: '5', host: 'h', port: '1234', userName: 'u', dbName: 'd', sslmode: 'required' }, refuse: /sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got 'required'/ } },
  { type: 'azure-servicebus', read: parseServiceBusTrigger,
    row: { name: 'a connection that is no connection string (KEDA\'s placeholder none)', metadata: { queueName: 'testqueue', connectionFromEnv: 'none' }, env: { none: 'none' }, refuse: /connection is not a Service Bus connection string/ } },
  { type: 'azure-servicebus', read: parseServiceBusTrigger,
    row: { name: 'useRegex over queues (not supported by qscale)', metadata: { queueName: 'testqueue', ...conn, useRegex: 'true', operation: 'avg' }, env: SB_ENV, refuse: /useRegex is not supported by qscale/ } },
];

describe('KEDA tables: the rows qscale refuses at load, and why', { timeout: 60_000 }, () => {
  for (const d of DEVIATIONS) table(d.type, [{ ...d.row, name: `(KEDA parses it; ${d.row.name})` }], d.read);
});
