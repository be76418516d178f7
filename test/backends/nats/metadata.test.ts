import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { NatsBackend, subjectMatches } from '../../../src/backends/nats/backend.js';
import { natsBackend } from '../../../src/backends/nats/index.js';
import { component, ctx, LOCAL_NATS } from './support.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test('nats metadata - missing stream names the component, the field and the file:line', { timeout: 60_000 }, () => {
  const err = configError(() => new NatsBackend(component({ natsURL: LOCAL_NATS }), ctx()));
  assert.match(err.message, /^components\/queue\.yaml:\d+: component message-queue \(bindings\.qscale\.nats-jetstream\): missing required metadata 'stream'/);
});

test('nats metadata - a bad ackWait points at its own line', { timeout: 60_000 }, () => {
  const err = configError(() => new NatsBackend(component({ natsURL: LOCAL_NATS, stream: 's', ackWait: 'a while' }), ctx()));
  assert.equal(err.line, 13);
  assert.match(err.message, /metadata 'ackWait' must be a duration such as 5s, 250ms or 1m30s, got 'a while'/);
});

test('nats metadata - visibilityTimeoutInSec is accepted for ackWait and storage must be file or memory', { timeout: 60_000 }, () => {
  assert.doesNotThrow(() => new NatsBackend(component({ natsURL: LOCAL_NATS, stream: 's', visibilityTimeoutInSec: '30' }), ctx()));
  const err = configError(() => new NatsBackend(component({ natsURL: LOCAL_NATS, stream: 's', storage: 'disk' }), ctx()));
  assert.match(err.message, /metadata 'storage' must be one of file, memory, got 'disk'/);
});

test('nats metadata - the stream is the queue name for --embedded; credentials in natsURL are redacted, the host is not', { timeout: 60_000 }, () => {
  const c = component({ natsURL: 'nats://app:s3cret@nats.local:4222,nats://tok@nats2.local:4222', stream: 'msgqueue', password: 'pw' });
  assert.equal(natsBackend.queueName(c), 'msgqueue');
  const r = natsBackend.metadata.redact(c.metadata);
  // One rule for every broker: the user stays (it tells who was refused), the password or bare token goes.
  assert.equal(r.natsURL, 'nats://app:***@nats.local:4222,nats://***@nats2.local:4222');
  assert.equal(r.password, '***');
  assert.equal(r.stream, 'msgqueue');
});

test('nats subjects - wildcards match as NATS matches them', { timeout: 60_000 }, () => {
  assert.ok(subjectMatches('orders', 'orders'));
  assert.ok(subjectMatches('orders.*', 'orders.eu'));
  assert.ok(!subjectMatches('orders.*', 'orders.eu.1'));
  assert.ok(subjectMatches('orders.>', 'orders.eu.1'));
  assert.ok(!subjectMatches('orders.>', 'orders'));
  assert.ok(!subjectMatches('orders', 'orders-dlq'));
});
