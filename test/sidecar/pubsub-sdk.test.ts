/**
 * The official @dapr/dapr SDK, unchanged: DaprClient.pubsub.publish and DaprServer.pubsub.subscribe round-trip
 * through `qscale sidecar` processes, on the embedded pub/sub and on pubsub.redis (skipped with a reason while that
 * type is not registered or Redis cannot be reached; under CI=true an unreachable Redis fails).
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CommunicationProtocolEnum, DaprClient, DaprServer, DaprPubSubStatusEnum, LogLevel } from '@dapr/dapr';
import { findPubSub } from '../../src/pubsub/registry.js';
import { requireBroker, uniqueName } from '../support/brokers.js';
import { pubsubYaml, resources } from '../pubsub/support.js';
import { freePort, spawnSidecar, waitFor } from './support.js';

const sdkLogger = { level: LogLevel.Error };

const rows = [
  { name: 'embedded', type: 'pubsub.qscale.embedded', metadata: {} as Record<string, string> },
  // A RETRY comes back after processingTimeout, looked for every redeliverInterval (Dapr's defaults: 15 s and 60 s).
  { name: 'redis', type: 'pubsub.redis', metadata: { redisHost: '127.0.0.1:6379', redeliverInterval: '1s', processingTimeout: '2s' }, needs: 'redis' as const },
];

describe('official @dapr/dapr SDK, unchanged, publishing and subscribing through qscale sidecar', { timeout: 300_000 }, () => {
  for (const row of rows) {
    it(`sdk pubsub ${row.name} - DaprClient.pubsub.publish reaches DaprServer.pubsub.subscribe; RETRY makes an event come again`, { timeout: 120_000 }, async (t: TestContext) => {
      if (!findPubSub(row.type)) {
        t.skip(`${row.type} is not registered in src/pubsub/registry.ts yet`);
        return;
      }
      if (row.needs && !(await requireBroker(t, row.needs))) return;
      const topic = uniqueName('sdk-orders');
      const dir = resources({ 'pubsub.yaml': pubsubYaml('orders-pubsub', { ...row.metadata, ...(row.type === 'pubsub.qscale.embedded' ? { retryBackoff: '0s' } : {}) }, row.type) });
      const dataDir = path.join(dir, '.qscale');
      const appPort = await freePort();
      const tokens = { DAPR_API_TOKEN: 'dapr-token-ps', APP_API_TOKEN: 'app-token-ps' };
      const producer = spawnSidecar(['--app-id', 'producer', '--resources-path', dir, '--data-dir', dataDir], tokens);
      const consumer = spawnSidecar(['--app-id', 'consumer', '--app-port', String(appPort), '--resources-path', dir, '--data-dir', dataDir], tokens);
      const [producerPort, consumerPort] = await Promise.all([producer.apiPort(), consumer.apiPort()]);
      const client = new DaprClient({
        daprHost: '127.0.0.1', daprPort: String(producerPort), communicationProtocol: CommunicationProtocolEnum.HTTP, daprApiToken: tokens.DAPR_API_TOKEN, logger: sdkLogger,
      });
      const server = new DaprServer({
        serverHost: '127.0.0.1', serverPort: String(appPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: sdkLogger,
        clientOptions: { daprHost: '127.0.0.1', daprPort: String(consumerPort), daprApiToken: tokens.DAPR_API_TOKEN, logger: sdkLogger },
      });
      const got: unknown[] = [];
      let retried = 0;
      try {
        await server.pubsub.subscribe('orders-pubsub', topic, async (data: unknown) => {
          if (typeof data === 'object' && data !== null && (data as { retry?: boolean }).retry && ++retried === 1) return DaprPubSubStatusEnum.RETRY;
          got.push(data);
          return DaprPubSubStatusEnum.SUCCESS;
        });
        await server.start();
        await consumer.waitForLine(new RegExp(`subscribing to topic ${topic} on pubsub orders-pubsub`), 30_000);
        await client.start();
        for (let i = 1; i <= 3; i++) {
          const r = await client.pubsub.publish('orders-pubsub', topic, { text: 'Hello World', i });
          assert.deepEqual(r, {}, 'the SDK saw no error');
        }
        await client.pubsub.publish('orders-pubsub', topic, 'plain text');
        await client.pubsub.publish('orders-pubsub', topic, { retry: true });
        await waitFor('five events in the SDK server', () => got.length >= 5, 60_000).catch((err: Error) => {
          throw new Error(`${err.message}; got ${JSON.stringify(got)}; consumer said:\n${consumer.lines.slice(-15).join('\n')}`);
        });
        assert.deepEqual(
          got.map((d) => JSON.stringify(d)).sort(),
          [...[1, 2, 3].map((i) => ({ i, text: 'Hello World' })), 'plain text', { retry: true }].map((d) => JSON.stringify(d)).sort(),
        );
        assert.equal(retried, 2, 'the RETRY answer made the event come again, once');
        // The SDK reads daprd's error answers: an unknown pub/sub is an error it returns.
        const bad = await client.pubsub.publish('no-such-pubsub', topic, { x: 1 });
        assert.match(String((bad.error as Error | undefined)?.message), /ERR_PUBSUB_NOT_FOUND/);
      } finally {
        await server.stop().catch(() => undefined);
        await client.stop().catch(() => undefined);
        producer.child.kill('SIGTERM');
        consumer.child.kill('SIGTERM');
        await Promise.all([producer.exited, consumer.exited]);
      }
    });
  }
});
