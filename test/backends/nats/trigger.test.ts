import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, ConfigError } from '../../../src/errors.js';
import { natsJetStreamTrigger } from '../../../src/backends/nats/index.js';
import { createNatsJetStreamScaler } from '../../../src/backends/nats/trigger.js';
import { NatsBackend } from '../../../src/backends/nats/backend.js';
import type { ResolvedTrigger } from '../../../src/autoscaler/scaler.js';
import { closedPort, holdOne, needBroker, requireBroker, runAlone, silentServer } from '../../support/brokers.js';
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

/** Deletes a test's stream and its dead-letter stream on the machine's server. */
async function deleteStreams(stream: string): Promise<void> {
  const { connect } = await import('nats');
  const nc = await connect({ servers: LOCAL_NATS });
  try {
    const jsm = await nc.jetstreamManager();
    for (const s of [stream, `${stream}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
  } finally {
    await nc.close();
  }
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

test("nats trigger - KEDA's defaults: lagThreshold 10, activation 0, the stream is the queue", { timeout: 120_000 }, () => {
  const p = natsJetStreamTrigger.parseQueueParams(
    trigger({ natsServerMonitoringEndpoint: 'nats.local:8222', account: '$G', stream: 'msgqueue', consumer: 'c' }),
  );
  assert.deepEqual(p, { queueName: 'msgqueue', target: 10, activationTarget: 0 });
});

test('nats trigger - missing consumer, missing endpoint and a bad lagThreshold are named with their line', { timeout: 120_000 }, () => {
  const base = { natsServerMonitoringEndpoint: 'nats.local:8222', account: '$G', stream: 's' };
  assert.match(configError(() => natsJetStreamTrigger.parseQueueParams(trigger(base))).message, /missing required metadata 'consumer'/);
  const noEndpoint = configError(() => natsJetStreamTrigger.parseQueueParams(trigger({ account: '$G', stream: 's', consumer: 'c' })));
  assert.match(noEndpoint.message, /missing required metadata 'natsServerMonitoringEndpoint'/);
  const bad = configError(() => natsJetStreamTrigger.parseQueueParams(trigger({ ...base, consumer: 'c', lagThreshold: 'ten' })));
  assert.match(bad.message, /^scaledobject\.yaml:24: .*metadata 'lagThreshold' must be a whole number such as 5, got 'ten'/);
});

test('nats trigger - the monitoring endpoint metric equals the true depth: pending plus ack pending', { timeout: 120_000 }, async (t) => {
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
  const holding = await holdOne(b);
  const depth = await b.depth();
  assert.deepEqual(depth, { ready: 6, inFlight: 1, deadLettered: 0 });
  assert.deepEqual(await scaler.metricAndActivity(), { value: 7, active: true });
  await holding.stop();
  assert.equal((await scaler.metricAndActivity()).value, 6);
  assert.equal(scaler.metricName, `s0-nats-jetstream-${stream}`.toLowerCase());
});

test('nats trigger - natsURL (qscale extension) reads the same lag over the protocol, from the machine server', { timeout: 120_000 }, async (t) => {
  if (!(await needBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: LOCAL_NATS, stream }), ctx());
  await b.init();
  const scaler = natsJetStreamTrigger.create(trigger({ natsURL: LOCAL_NATS, account: '$G', stream, consumer: `${stream}-consumer` }));
  const noConsumer = natsJetStreamTrigger.create(trigger({ natsURL: LOCAL_NATS, account: '$G', stream, consumer: 'nobody' }));
  t.after(async () => {
    await scaler.close();
    await noConsumer.close();
    await b.close();
    await deleteStreams(stream);
  });
  for (let i = 0; i < 3; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 3, active: true });
  // As KEDA since 2.20: a consumer the stream does not have is an error, never the stream's length (which scaled to max).
  await assert.rejects(noConsumer.metricAndActivity(), new RegExp(`cannot read NATS JetStream lag from the JetStream API at nats://127\\.0\\.0\\.1:4222: consumer 'nobody' not found in stream '${stream}'`));
});

test('nats trigger - a stream that does not exist is an error naming the trigger and the stream', { timeout: 120_000 }, async (t) => {
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

const LOCAL_ONLY = /the NATS monitoring endpoint 127\.0\.0\.1:\d+ cannot be reached \(connection refused\); reading the same lag \(num_pending \+ num_ack_pending of consumer .*\) over the JetStream API at nats:\/\/127\.0\.0\.1:\d+\. Local only: KEDA reads the monitoring endpoint alone, so on a cluster start the server with monitoring \(nats-server -m 8222\)/;

test('nats trigger - monitoring off: the same lag over the JetStream API, equal to the monitoring figure, with one notice', { timeout: 60_000 }, async (t) => {
  const server = await TestNatsServer.start();
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: server.url, stream, consumer: 'workers' }), ctx());
  const notices: string[] = [];
  const base = { account: '$G', stream, consumer: 'workers', lagThreshold: '5' };
  const viaMonitoring = natsJetStreamTrigger.create(trigger({ natsServerMonitoringEndpoint: server.monitoringEndpoint, ...base }));
  const off = `127.0.0.1:${await closedPort()}`;
  const fallback = createNatsJetStreamScaler(trigger({ natsServerMonitoringEndpoint: off, natsURL: server.url, ...base }), { notify: (l) => notices.push(l) });
  t.after(async () => {
    await fallback.close();
    await viaMonitoring.close();
    await b.close();
    await server.stop();
  });
  await b.init();
  for (let i = 0; i < 4; i++) await b.send(Buffer.from('1'), {});
  const holding = await holdOne(b);
  t.after(() => holding.stop());
  const want = await viaMonitoring.metricAndActivity();
  assert.deepEqual(want, { value: 4, active: true }, '3 pending + 1 ack pending');
  for (let i = 0; i < 3; i++) assert.deepEqual(await fallback.metricAndActivity(), want);
  assert.equal(notices.length, 1, `one notice, not one per poll: ${notices.join('\n')}`);
  assert.match(notices[0] ?? '', LOCAL_ONLY);
  assert.match(notices[0] ?? '', new RegExp(`^trigger 0 \\(nats-jetstream\\) of ScaledObject consumer-scaler: the NATS monitoring endpoint ${off.replace(/\./g, '\\.')} `));
});

test('nats trigger - monitoring off, no natsURL: reads the client port 4222 of the monitoring host (the machine server)', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'nats'))) return;
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: LOCAL_NATS, stream }), ctx());
  const notices: string[] = [];
  const scaler = createNatsJetStreamScaler(
    trigger({ natsServerMonitoringEndpoint: `127.0.0.1:${await closedPort()}`, account: '$G', stream, consumer: `${stream}-consumer` }),
    { notify: (l) => notices.push(l) },
  );
  t.after(async () => {
    await scaler.close();
    await b.close();
    await deleteStreams(stream);
  });
  await b.init();
  for (let i = 0; i < 2; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 2, active: true });
  assert.equal(notices.length, 1);
  assert.match(notices[0] ?? '', /over the JetStream API at nats:\/\/127\.0\.0\.1:4222\./);
});

test('nats trigger - monitoring and client port both closed: one error naming both addresses', { timeout: 30_000 }, async (t) => {
  const mon = `127.0.0.1:${await closedPort()}`;
  const api = `nats://127.0.0.1:${await closedPort()}`;
  const notices: string[] = [];
  const scaler = createNatsJetStreamScaler(trigger({ natsServerMonitoringEndpoint: mon, natsURL: api, account: '$G', stream: 's', consumer: 'c' }), { notify: (l) => notices.push(l) });
  t.after(() => scaler.close());
  const err = await scaler.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.equal(
    err.message,
    `trigger 0 (nats-jetstream) of ScaledObject consumer-scaler: cannot read NATS JetStream lag from the monitoring endpoint ${mon} (connection refused) nor from the JetStream API at ${api}: connection refused`,
  );
  assert.deepEqual(notices, [], 'no notice when the JetStream API did not answer either');
});

test('nats trigger - servers that accept and never answer: bounded errors, not hangs', { timeout: 30_000 }, async (t) => {
  const silent = await silentServer();
  t.after(() => silent.close());
  const closed = `nats://127.0.0.1:${await closedPort()}`;
  const mon = createNatsJetStreamScaler(trigger({ natsServerMonitoringEndpoint: `127.0.0.1:${silent.port}`, natsURL: closed, account: '$G', stream: 's', consumer: 'c' }), { timeoutMs: 300 });
  const api = createNatsJetStreamScaler(trigger({ natsURL: `nats://127.0.0.1:${silent.port}`, account: '$G', stream: 's', consumer: 'c' }), { timeoutMs: 300 });
  t.after(() => mon.close());
  t.after(() => api.close());
  await assert.rejects(mon.metricAndActivity(), new RegExp(`from the monitoring endpoint 127\\.0\\.0\\.1:${silent.port} \\(no answer within 300 ms\\) nor from the JetStream API at ${closed.replace(/\./g, '\\.')}: connection refused`));
  await assert.rejects(api.metricAndActivity(), new RegExp(`from the JetStream API at nats://127\\.0\\.0\\.1:${silent.port}: .*(no answer within 300 ms|TIMEOUT)`, 'i'));
});

test('nats trigger - over the JetStream API, a stream that does not exist names the stream', { timeout: 30_000 }, async (t) => {
  if (!(await requireBroker(t, 'nats'))) return;
  const scaler = natsJetStreamTrigger.create(trigger({ natsURL: LOCAL_NATS, account: '$G', stream: 'ghost_qscale', consumer: 'c' }));
  t.after(() => scaler.close());
  await assert.rejects(scaler.metricAndActivity(), /trigger 0 \(nats-jetstream\) of ScaledObject consumer-scaler: cannot read NATS JetStream lag from the JetStream API at nats:\/\/127\.0\.0\.1:4222: stream 'ghost_qscale' not found in account '\$G'/);
});

test('nats trigger - close() releases the connection: a process that read, and closed mid-connect, exits by itself', { timeout: 60_000 }, async (t) => {
  if (!(await requireBroker(t, 'nats'))) return;
  const off = `127.0.0.1:${await closedPort()}`;
  const run = await runAlone(
    `
const trig = (md) => ({ index: 0, type: 'nats-jetstream', metricType: 'AverageValue', metadata: md, subject: 'trigger 0 (nats-jetstream) of ScaledObject s', where: () => ({}) });
const md = { natsServerMonitoringEndpoint: ${JSON.stringify(off)}, natsURL: ${JSON.stringify(LOCAL_NATS)}, account: '$G', stream: 'ghost_qscale', consumer: 'c' };
const a = nats.createNatsJetStreamScaler(trig(md), { notify: () => undefined });
await Promise.all([a.metricAndActivity().catch((e) => console.log('read:', e.message)), a.metricAndActivity().catch(() => undefined)]);
await a.close();
const { natsServerMonitoringEndpoint: _, ...apiOnly } = md;
const b = nats.createNatsJetStreamScaler(trig(apiOnly), { notify: () => undefined });
const pending = b.metricAndActivity().then(() => 'read', (e) => e.message);
await b.close();
console.log('after close:', await pending);
`,
    { from: import.meta.url, imports: { nats: '../../../src/backends/nats/trigger.js' } },
  );
  assert.equal(run.code, 0, `the process did not exit by itself: ${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /read: .*stream 'ghost_qscale' not found/);
  assert.match(run.stdout, /after close: .*the trigger was closed/);
});

test('nats-jetstream trigger reads the lag through the monitoring endpoint with accountID and no account, as KEDA', { timeout: 60_000 }, async (t) => {
  const server = await TestNatsServer.start();
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: server.url, stream, consumer: 'workers' }), ctx());
  await b.init();
  const scaler = natsJetStreamTrigger.create(trigger({ natsServerMonitoringEndpoint: server.monitoringEndpoint, accountID: '$G', stream, consumer: 'workers', lagThreshold: '5' }));
  t.after(async () => {
    await scaler.close();
    await b.close();
    await server.stop();
  });
  for (let i = 0; i < 3; i++) await b.send(Buffer.from('1'), {});
  assert.deepEqual(await scaler.metricAndActivity(), { value: 3, active: true });
});

test('nats-jetstream trigger fails on a consumer the stream does not have, over the monitoring endpoint, as KEDA since 2.20 (never the stream\'s length)', { timeout: 60_000 }, async (t) => {
  const server = await TestNatsServer.start();
  const stream = streamName();
  const b = new NatsBackend(component({ natsURL: server.url, stream, consumer: 'workers' }), ctx());
  await b.init();
  const scaler = natsJetStreamTrigger.create(trigger({ natsServerMonitoringEndpoint: server.monitoringEndpoint, account: '$G', stream, consumer: 'wrokers' }));
  t.after(async () => {
    await scaler.close();
    await b.close();
    await server.stop();
  });
  for (let i = 0; i < 4; i++) await b.send(Buffer.from('1'), {});
  const err = await scaler.metricAndActivity().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, String(err));
  assert.equal(
    err.message,
    `trigger 0 (nats-jetstream) of ScaledObject consumer-scaler: cannot read NATS JetStream lag from the monitoring endpoint ${server.monitoringEndpoint}: consumer 'wrokers' not found in stream '${stream}' (the binding creates it when it starts: check the consumer name)`,
  );
});
