import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, ConfigError } from '../../../src/errors.js';
import { natsJetStreamTrigger } from '../../../src/backends/nats/index.js';
import { NatsBackend } from '../../../src/backends/nats/backend.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import { needBroker } from '../../support/brokers.js';
import { component, ctx, LOCAL_NATS, streamName } from './support.js';
import { TestNatsServer } from './server.js';

function trigger(metadata: Record<string, string>): ResolvedTrigger {
  const keys = Object.keys(metadata);
  return {
    index: 0,
    type: 'nats-jetstream',
    metricType: 'AverageValue',
    metadata,
    subject: 'trigger 0 (nats-jetstream) of ScaledObject consumer-scaler',
    where: (field) => ({ file: 'scaledobject.yaml', line: field && keys.includes(field) ? 20 + keys.indexOf(field) : 18 }),
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test("nats trigger - KEDA's defaults: lagThreshold 10, activation 0, the stream is the queue", () => {
  const p = natsJetStreamTrigger.parseQueueParams(
    trigger({ natsServerMonitoringEndpoint: 'nats.local:8222', account: '$G', stream: 'msgqueue', consumer: 'c' }),
  );
  assert.deepEqual(p, { queueName: 'msgqueue', target: 10, activationTarget: 0 });
});

test('nats trigger - missing consumer, missing endpoint and a bad lagThreshold are named with their line', () => {
  const base = { natsServerMonitoringEndpoint: 'nats.local:8222', account: '$G', stream: 's' };
  assert.match(configError(() => natsJetStreamTrigger.parseQueueParams(trigger(base))).message, /missing required metadata 'consumer'/);
  const noEndpoint = configError(() => natsJetStreamTrigger.parseQueueParams(trigger({ account: '$G', stream: 's', consumer: 'c' })));
  assert.match(noEndpoint.message, /no natsServerMonitoringEndpoint given/);
  const bad = configError(() => natsJetStreamTrigger.parseQueueParams(trigger({ ...base, consumer: 'c', lagThreshold: 'ten' })));
  assert.match(bad.message, /^scaledobject\.yaml:24: .*metadata 'lagThreshold' must be an integer, got 'ten'/);
});

test('nats trigger - the monitoring endpoint metric equals the true depth: pending plus ack pending', async (t) => {
  const server = await TestNatsServer.start();
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: server.url, stream, consumer: 'workers' }), ctx());
  await b.init();
  const scaler = natsJetStreamTrigger.create(
    trigger({ natsServerMonitoringEndpoint: server.monitoringEndpoint, account: '$G', stream, consumer: 'workers', lagThreshold: '5', activationLagThreshold: '2' }),
  );
  t.after(async () => {
    await scaler.close();
    await b.close();
    await server.stop();
  });
  assert.deepEqual(await scaler.metricAndActivity(), { value: 0, active: false });
  for (let i = 0; i < 2; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 2, active: false }, 'not above the activation lag');
  for (let i = 0; i < 5; i++) await b.send(Buffer.from('1'), {});
  const ac = new AbortController();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const inHandler = new Promise<void>((r) => (started = r));
  const receiving = b.receive(async () => (started(), await held, true), { concurrency: 1, signal: ac.signal });
  await inHandler;
  const depth = await b.depth();
  assert.deepEqual(depth, { ready: 6, inFlight: 1, deadLettered: 0 });
  assert.deepEqual(await scaler.metricAndActivity(), { value: 7, active: true });
  ac.abort();
  release();
  await receiving;
  assert.equal((await scaler.metricAndActivity()).value, 6);
  assert.equal(scaler.metricName, `s0-nats-jetstream-${stream}`.toLowerCase());
});

test('nats trigger - natsURL (qscale extension) reads the same lag over the protocol, from the machine server', async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: LOCAL_NATS, stream }), ctx());
  await b.init();
  const scaler = natsJetStreamTrigger.create(trigger({ natsURL: LOCAL_NATS, account: '$G', stream, consumer: `${stream}-consumer` }));
  const noConsumer = natsJetStreamTrigger.create(trigger({ natsURL: LOCAL_NATS, account: '$G', stream, consumer: 'nobody' }));
  t.after(async () => {
    await scaler.close();
    await noConsumer.close();
    const { connect } = await import('nats');
    const nc = await connect({ servers: LOCAL_NATS });
    const jsm = await nc.jetstreamManager();
    await b.close();
    for (const s of [stream, `${stream}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
    await nc.close();
  });
  for (let i = 0; i < 3; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 3, active: true });
  assert.equal((await noConsumer.metricAndActivity()).value, 3, "as KEDA: an unknown consumer reports the stream's last sequence");
});

test('nats trigger - a stream that does not exist is an error naming the trigger and the stream', async (t) => {
  const server = await TestNatsServer.start();
  t.after(() => server.stop());
  const scaler = natsJetStreamTrigger.create(
    trigger({ natsServerMonitoringEndpoint: server.monitoringEndpoint, account: '$G', stream: 'ghost', consumer: 'c' }),
  );
  const err = await scaler.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError);
  assert.match(err.message, /trigger 0 \(nats-jetstream\) of ScaledObject consumer-scaler: cannot read NATS JetStream lag from .*stream 'ghost' not found in account '\$G'/);
  await scaler.close();
});
