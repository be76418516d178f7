import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRabbitmqComponent } from '../../../src/backends/rabbitmq/index.js';
import { ConfigError } from '../../../src/errors.js';
import { component } from './helpers.js';

test('rabbitmq metadata - Dapr defaults: non-durable, plain queue, text/plain, reconnect 5 s, dead-letter <queue>-dlq', { timeout: 60_000 }, () => {
  const s = parseRabbitmqComponent(component({ host: 'amqp://u:p@h:5672', queueName: 'orders' }));
  assert.equal(s.durable, false);
  assert.equal(s.autoDelete, false);
  assert.equal(s.exclusive, false);
  assert.equal(s.maxPriority, undefined);
  assert.equal(s.queueTtlMs, undefined);
  assert.equal(s.contentType, 'text/plain');
  assert.equal(s.reconnectWaitMs, 5000);
  assert.equal(s.prefetchCount, 0);
  assert.equal(s.maxDeliveryCount, 10);
  assert.equal(s.deadLetterQueue, 'orders-dlq');
});

test('rabbitmq metadata - given values win: ttlInSeconds, maxPriority, durable, deadLetterQueue', { timeout: 60_000 }, () => {
  const s = parseRabbitmqComponent(component({
    host: 'amqp://h', queueName: 'q', ttlInSeconds: '60', maxPriority: '10', durable: 'true',
    deadLetterQueue: 'poison', maxDeliveryCount: '3',
  }));
  assert.equal(s.queueTtlMs, 60_000);
  assert.equal(s.maxPriority, 10);
  assert.equal(s.durable, true);
  assert.equal(s.deadLetterQueue, 'poison');
  assert.equal(s.maxDeliveryCount, 3);
});

const bad: Array<[string, Record<string, string>, RegExp, number]> = [
  ['missing queueName names the component and its line', { host: 'amqp://h' }, /binding\.yaml:\d+: component message-queue \(bindings\.rabbitmq\): missing required metadata 'queueName'/, 0],
  ['maxPriority above 255', { host: 'amqp://h', queueName: 'q', maxPriority: '300' }, /binding\.yaml:13: .*metadata 'maxPriority' must be <= 255, got '300'/, 13],
  ['durable not a boolean', { host: 'amqp://h', queueName: 'q', durable: 'maybe' }, /binding\.yaml:13: .*'durable' must be a boolean/, 13],
  ['host that is not amqp', { host: 'http://guest:s3cret-pw@h', queueName: 'q' }, /binding\.yaml:9: .*'host' must start with amqp:\/\/ or amqps:\/\//, 9],
];
for (const [name, md, re, line] of bad) {
  test(`rabbitmq metadata - ${name}`, { timeout: 60_000 }, () => {
    assert.throws(() => parseRabbitmqComponent(component(md)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /s3cret-pw/);
      if (line) assert.equal(err.line, line);
      return true;
    });
  });
}
