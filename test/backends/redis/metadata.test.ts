import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRedisComponent, redisStreamsTrigger } from '../../../src/backends/redis/index.js';
import { ConfigError } from '../../../src/errors.js';
import { component, trigger } from './helpers.js';

test('redis metadata - defaults: db 0, group qscale, 10 deliveries, dead letters in <queue>:dlq, 30 s visibility', { timeout: 60_000 }, () => {
  const s = parseRedisComponent(component({ redisHost: 'cache:6380', queueName: 'orders' }));
  assert.equal(s.host, 'cache');
  assert.equal(s.port, 6380);
  assert.equal(s.db, 0);
  assert.equal(s.group, 'qscale');
  assert.equal(s.maxDeliveryCount, 10);
  assert.equal(s.deadLetterStream, 'orders:dlq');
  assert.equal(s.visibilityMs, 30_000);
  assert.equal(s.tls, false);
  assert.equal(s.readAhead, 16);
  assert.equal(parseRedisComponent(component({ redisHost: 'h', queueName: 'q', readAheadCount: '0' })).readAhead, 0);
});

test('redis metadata - port defaults to 6379', { timeout: 60_000 }, () => {
  assert.equal(parseRedisComponent(component({ redisHost: '127.0.0.1', queueName: 'q' })).port, 6379);
});

const bad: Array<[string, Record<string, string>, RegExp, number]> = [
  ['missing queueName', { redisHost: 'h:1' }, /binding\.yaml:\d+: component message-queue \(bindings\.qscale\.redis\): missing required metadata 'queueName'/, 0],
  ['redisHost that is not host:port', { redisHost: 'h:99999', queueName: 'q', redisPassword: 'Hunter2pw' }, /binding\.yaml:9: .*'redisHost' must be host:port/, 9],
  ['maxDeliveryCount 0', { redisHost: 'h', queueName: 'q', maxDeliveryCount: '0' }, /binding\.yaml:13: .*'maxDeliveryCount' must be >= 1, got '0'/, 13],
  ['readAheadCount -1', { redisHost: 'h', queueName: 'q', readAheadCount: '-1' }, /binding\.yaml:13: .*'readAheadCount' must be >= 0, got '-1'/, 13],
  ['readAheadCount not a number', { redisHost: 'h', queueName: 'q', readAheadCount: 'lots' }, /binding\.yaml:13: .*'readAheadCount'.*'lots'/, 13],
];
for (const [name, md, re, line] of bad) {
  test(`redis metadata - ${name}`, { timeout: 60_000 }, () => {
    assert.throws(() => parseRedisComponent(component(md)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /Hunter2pw/);
      if (line) assert.equal(err.line, line);
      return true;
    });
  });
}

const params: Array<[string, Record<string, string>, { queueName: string; target: number; activationTarget: number }]> = [
  ['no consumerGroup: streamLength, default 5', { address: 'h:6379', stream: 's' }, { queueName: 's', target: 5, activationTarget: 0 }],
  ['consumerGroup alone: pendingEntriesCount, default 5', { address: 'h:6379', stream: 's', consumerGroup: 'g' }, { queueName: 's', target: 5, activationTarget: 0 }],
  ['consumerGroup + lagCount 7, activationLagCount 2', { host: 'h', port: '6379', stream: 's', consumerGroup: 'g', lagCount: '7', activationLagCount: '2' }, { queueName: 's', target: 7, activationTarget: 2 }],
  ['streamLength 10', { address: 'h:6379', stream: 's', streamLength: '10' }, { queueName: 's', target: 10, activationTarget: 0 }],
];
for (const [name, md, want] of params) {
  test(`redis-streams trigger - ${name}`, { timeout: 60_000 }, () => {
    assert.deepEqual(redisStreamsTrigger.parseQueueParams(trigger(md)), want);
  });
}

test('redis-streams trigger - lagCount without consumerGroup is ignored, as KEDA ignores it: the stream length, default 5', { timeout: 60_000 }, () => {
  assert.deepEqual(redisStreamsTrigger.parseQueueParams(trigger({ address: 'h:1', stream: 's', lagCount: '3' })), { queueName: 's', target: 5, activationTarget: 0 });
});

test('redis-streams trigger - no address at all', { timeout: 60_000 }, () => {
  assert.throws(() => redisStreamsTrigger.parseQueueParams(trigger({ stream: 's' })), /no address given/);
});
