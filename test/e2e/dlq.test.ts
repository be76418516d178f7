/**
 * Dead letters end to end, on each backend of this machine: `qscale up` runs a consumer that answers 500 with a JSON
 * body; a poison message is dead-lettered and `qscale dlq list` shows it with the app's status and the start of its
 * answer; the app is made to accept; `qscale dlq requeue --all` sends it back and the consumer processes it once.
 * A broker case skips, saying so, while its backend offers no dead letters; a broker that cannot be reached fails
 * under CI=true and skips elsewhere.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import { loadResources } from '../../src/components/index.js';
import { createBackend } from '../../src/backends/registry.js';
import { hasDeadLetters } from '../../src/backends/types.js';
import { createLogger } from '../../src/util/log.js';
import { requireBroker, type LocalBroker } from '../support/brokers.js';
import { deleteKeys } from '../backends/redis/helpers.js';
import { deleteNatsStreams } from '../backends/nats/support.js';
import { queueBackend, startUp, tempFolder, writeFiles, type UpProcess } from './harness.js';
import { componentYaml } from '../sidecar/support.js';
import { qscale, refusingConsumerRunFile, type Run } from '../dlq/support.js';

interface Row {
  name: string;
  type: string;
  needs?: LocalBroker;
  metadata(queue: string): Record<string, string>;
  cleanup?(queue: string): Promise<void>;
}

const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_TABLE = 'qscale_e2e_dlq';
const RETRY = { retryBackoff: '100ms', retryBackoffMax: '200ms' };

const rows: Row[] = [
  { name: 'embedded', type: 'bindings.qscale.embedded', metadata: (q) => ({ queueName: q }) },
  {
    name: 'rabbitmq', type: 'bindings.rabbitmq', needs: 'rabbitmq',
    metadata: (q) => ({ host: 'amqp://guest:guest@127.0.0.1:5672', queueName: q, durable: 'true', reconnectWaitInSeconds: '1' }),
    cleanup: async (q) => {
      const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
      try {
        const ch = await conn.createChannel();
        // The queue, its dead letters, and the retry queues its backoff declared (named after the queue).
        for (const name of [q, `${q}-dlq`]) await ch.deleteQueue(name);
        await ch.close();
      } finally {
        await conn.close();
      }
    },
  },
  {
    name: 'redis', type: 'bindings.qscale.redis', needs: 'redis',
    metadata: (q) => ({ redisHost: '127.0.0.1:6379', queueName: q, reconnectWaitInSeconds: '0.2' }),
    cleanup: (q) => deleteKeys(q, `${q}:dlq`),
  },
  {
    name: 'postgresql', type: 'bindings.qscale.postgresql', needs: 'postgresql',
    metadata: (q) => ({ connectionString: PG_URL, queueName: q, table: PG_TABLE }),
    cleanup: async (q) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        for (const t of [PG_TABLE, `${PG_TABLE}_dead`]) await c.query(`DELETE FROM ${t} WHERE queue = $1`, [q]).catch(() => undefined);
      } finally {
        await c.end();
      }
    },
  },
  {
    name: 'nats', type: 'bindings.qscale.nats-jetstream', needs: 'nats',
    metadata: (q) => ({ natsURL: 'nats://127.0.0.1:4222', stream: q, ackWait: '5s', storage: 'memory' }),
    cleanup: (q) => deleteNatsStreams(q),
  },
];

/** Whether the folder's binding offers dead letters (known without connecting). */
async function offersDeadLetters(folder: string, dataDir: string): Promise<boolean> {
  const { components } = await loadResources([folder]);
  const logger = createLogger('test');
  logger.level = 'silent';
  const b = createBackend(components[0]!, { logger, dataDir }, { embedded: false });
  const offers = hasDeadLetters(b);
  await b.close().catch(() => undefined);
  return offers;
}

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs: number, last: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('dead letters end to end - qscale up, a consumer that answers 500, qscale dlq', { timeout: 1_200_000 }, () => {
  for (const row of rows) {
    test(`dlq e2e ${row.name} - the poison message is listed with the app's answer, requeued once the app accepts, and processed once`, { timeout: 240_000 }, async (t) => {
      if (row.needs && !(await requireBroker(t, row.needs))) return;
      const queue = `dlq-e2e-${randomBytes(4).toString('hex')}`;
      const folder = tempFolder('qscale-dlq-e2e-');
      const accept = path.join(folder, 'accept');
      writeFiles(folder, {
        'binding.yaml': componentYaml('message-queue', { ...row.metadata(queue), maxDeliveryCount: '2', ...RETRY }, row.type),
        'dapr.yaml': refusingConsumerRunFile(accept),
      });
      const dataDir = path.join(folder, '.qscale');
      if (!(await offersDeadLetters(folder, dataDir))) {
        t.skip(`the ${row.name} backend (${row.type}) offers no dead letters yet (hasDeadLetters is false): nothing to list or requeue`);
        return;
      }
      const dd = ['--data-dir', dataDir];
      let up: UpProcess | undefined;
      try {
        up = await startUp(folder);
        await up.waitForLine(/reading input binding message-queue/, 120_000);

        const b = await queueBackend(folder, dataDir, false);
        try {
          await b.send(Buffer.from('{"id":"poison-1"}'), { 'content-type': 'application/json' });
        } finally {
          await b.close();
        }

        // Dead-lettered after its two refusals: listed with the app's status and the start of its answer.
        let list: Run = { code: -1, stdout: '', stderr: '' };
        await eventually('the dead letter in `qscale dlq list`', async () => {
          list = await qscale(['dlq', 'list', folder, ...dd], folder, 90_000);
          return /poison-1/.test(list.stdout);
        }, 90_000, () => `${list.code} ${list.stdout} ${list.stderr} | up: ${up!.lines.slice(-10).join(' / ')}`);
        assert.equal(list.code, 0, list.stderr);
        const row1 = list.stdout.split('\n').find((l) => /^message-queue\s/.test(l)) ?? '';
        assert.match(row1, /^message-queue\s+\S+\s+2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+.*app answered 500: \{"error":"bad order poison-1"\}/, list.stdout);
        assert.equal(up.countLines(/refused poison-1 /), 2, 'refused on each of its two deliveries');

        writeFileSync(accept, '');
        const requeue = await qscale(['dlq', 'requeue', folder, '--all', ...dd], folder);
        assert.equal(requeue.code, 0, requeue.stderr);
        assert.equal(requeue.stdout, `requeued 1 dead letter of binding message-queue (queue ${queue})\n`);
        await up.waitForLine(/processed poison-1 /, 60_000);
        const after = await qscale(['dlq', 'list', folder, ...dd], folder);
        assert.equal(after.stdout, `binding message-queue (queue ${queue}): no dead letters\n`);
        // Nothing comes back: once processed, it is acked.
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal(up.countLines(/processed poison-1 /), 1, 'processed once');
      } finally {
        if (up) await up.stop();
        await row.cleanup?.(queue).catch(() => undefined);
      }
    });
  }
});
