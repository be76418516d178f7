import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CommunicationProtocolEnum, DaprClient, DaprServer, LogLevel } from '@dapr/dapr';
import { call, componentYaml, freePort, queueDepth, spawnSidecar, tempDir, waitFor, writeComponents } from './support.js';

const sdkLogger = { level: LogLevel.Error };

describe('official @dapr/dapr SDK, unchanged, against qscale sidecar', { timeout: 300_000 }, () => {
  it('sdk - DaprClient.binding.send reaches the queue and DaprServer.binding.receive gets it, with tokens both ways', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'sdk' }) });
    const appPort = await freePort();
    const tokens = { DAPR_API_TOKEN: 'dapr-token-1', APP_API_TOKEN: 'app-token-1' };
    const producer = spawnSidecar(['--app-id', 'producer', '--resources-path', dir, '--data-dir', dataDir], tokens);
    const consumer = spawnSidecar(['--app-id', 'consumer', '--app-port', String(appPort), '--resources-path', dir, '--data-dir', dataDir], tokens);
    const [producerPort, consumerPort] = await Promise.all([producer.apiPort(), consumer.apiPort()]);
    const client = new DaprClient({
      daprHost: '127.0.0.1',
      daprPort: String(producerPort),
      communicationProtocol: CommunicationProtocolEnum.HTTP,
      daprApiToken: tokens.DAPR_API_TOKEN,
      logger: sdkLogger,
    });
    const server = new DaprServer({
      serverHost: '127.0.0.1',
      serverPort: String(appPort),
      communicationProtocol: CommunicationProtocolEnum.HTTP,
      clientOptions: { daprHost: '127.0.0.1', daprPort: String(consumerPort), daprApiToken: tokens.DAPR_API_TOKEN, logger: sdkLogger },
      logger: sdkLogger,
    });
    const got: unknown[] = [];
    try {
      await server.binding.receive('message-queue', async (data: unknown) => {
        got.push(data);
      });
      await server.start();
      await client.start();
      for (let i = 1; i <= 3; i++) await client.binding.send('message-queue', 'create', { text: 'Hello World', i }, { source: 'sdk' });
      await waitFor('three messages in the SDK server', () => got.length >= 3);
      assert.deepEqual(got, [1, 2, 3].map((i) => ({ text: 'Hello World', i })));
      await waitFor('all acked', async () => {
        const d = await queueDepth(dataDir, 'sdk');
        return d.ready === 0 && d.inFlight === 0;
      });
      // The SDK's token went through the token check: without it the same call is refused.
      const refused = await call(producerPort, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data: 1 }));
      assert.equal(refused.status, 401);
    } finally {
      await server.stop().catch(() => undefined);
      await client.stop().catch(() => undefined);
      producer.child.kill('SIGTERM');
      consumer.child.kill('SIGTERM');
      await Promise.all([producer.exited, consumer.exited]);
    }
  });

  it('sdk - a callback that throws makes the message come back (the SDK answers 500, the sidecar does not ack)', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'sdk-retry', retryBackoff: '0s' }) });
    const appPort = await freePort();
    const sc = spawnSidecar(['--app-id', 'consumer', '--app-port', String(appPort), '--resources-path', dir, '--data-dir', dataDir]);
    const sidecarPort = await sc.apiPort();
    const server = new DaprServer({
      serverHost: '127.0.0.1',
      serverPort: String(appPort),
      communicationProtocol: CommunicationProtocolEnum.HTTP,
      clientOptions: { daprHost: '127.0.0.1', daprPort: String(sidecarPort), logger: sdkLogger },
      logger: sdkLogger,
    });
    let attempts = 0;
    try {
      await server.binding.receive('message-queue', async () => {
        attempts++;
        if (attempts === 1) throw new Error('first try fails');
      });
      await server.start();
      await server.client.binding.send('message-queue', 'create', { retry: true });
      await waitFor('the second attempt', () => attempts >= 2);
      await waitFor('acked', async () => {
        const d = await queueDepth(dataDir, 'sdk-retry');
        return d.ready === 0 && d.inFlight === 0;
      });
      assert.equal(attempts, 2);
    } finally {
      await server.stop().catch(() => undefined);
      sc.child.kill('SIGTERM');
      await sc.exited;
    }
  });
});
