/**
 * daprd fills metadata templates ({appID}, {uuid}, {namespace}, {podName}) in every component before the component
 * reads it. A pub/sub with consumerID "{appID}" subscribes under the app id, whichever type serves it: pubsub.rabbitmq
 * (its queue `<app id>-<topic>`, not `{appID}-<topic>`), the embedded pub/sub, and any type served embedded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { createPubSub } from '../../src/pubsub/registry.js';
import { EmbeddedPubSub } from '../../src/backends/embedded/pubsub.js';
import { createLogger } from '../../src/util/log.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import { pubsubComponent } from '../backends/pubsub-component.js';
import { AMQP_URL } from '../backends/rabbitmq/helpers.js';

const logger = createLogger('pubsub-templates-test').child({}, { level: 'silent' });

test('pubsub.rabbitmq with consumerID "{appID}" declares and subscribes on the queue <app id>-<topic>', { timeout: 60_000 }, async (t) => {
  if (!(await needBroker(t, 'rabbitmq'))) return;
  const topic = uniqueName('tpl-rmq');
  const conn = await amqp.connect(AMQP_URL);
  const admin = await conn.createChannel();
  admin.on('error', () => undefined);
  const p = createPubSub(pubsubComponent('pubsub.rabbitmq', { connectionString: AMQP_URL, consumerID: '{appID}' }), { logger, dataDir: '/tmp', appId: 'checkout' });
  t.after(async () => {
    await p.close();
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.deleteQueue(`checkout-${topic}`).catch(() => undefined);
    await ch.deleteQueue(`{appID}-${topic}`).catch(() => undefined);
    await ch.deleteExchange(topic).catch(() => undefined);
    await conn.close();
  });
  await p.init();
  await p.prepare({ topic, metadata: {} });
  await admin.checkQueue(`checkout-${topic}`);
  await assert.rejects(admin.checkQueue(`{appID}-${topic}`), /NOT_FOUND/, 'no queue named after the template');
  // An event published reaches the app's queue, where a subscriber reads it.
  await p.publish(topic, Buffer.from('{"n":1}'), {});
  let got: string | undefined;
  const ac = new AbortController();
  await p.subscribe({ topic, metadata: {} }, async (m) => {
    got = m.data.toString();
    ac.abort();
    return true;
  }, { concurrency: 1, signal: ac.signal });
  assert.equal(got, '{"n":1}');
});

test('the embedded pub/sub with consumerID "{appID}" subscribes under the app id, its own type and a type it serves under --embedded', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-tpl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = { logger, dataDir: dir, appId: 'checkout' };
  const own = createPubSub(pubsubComponent('pubsub.qscale.embedded', { consumerID: '{appID}' }), ctx) as EmbeddedPubSub;
  const served = new EmbeddedPubSub(pubsubComponent('pubsub.rabbitmq', { connectionString: AMQP_URL, consumerID: '{appID}' }), ctx);
  t.after(async () => {
    await own.close();
    await served.close();
  });
  const plain = new EmbeddedPubSub(pubsubComponent('pubsub.qscale.embedded', {}), ctx);
  t.after(() => plain.close());
  for (const p of [own, served]) {
    assert.equal(p.consumerGroup({ topic: 'orders', metadata: {} }), 'checkout');
    assert.equal(p.queueOf({ topic: 'orders', metadata: {} }), plain.queueOf({ topic: 'orders', metadata: {} }), 'the queue the app id names');
    assert.doesNotMatch(p.queueOf({ topic: 'orders', metadata: {} }), /\{appID\}/);
  }
});
