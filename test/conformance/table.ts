/**
 * What each backend claims, one row per binding type. The conformance suite runs every case over every row and
 * checks the claims; a broker owner adds a row here when adding a folder under src/backends/.
 */
import amqp from 'amqplib';
import pg from 'pg';
import { componentFromYaml } from './component.js';
import type { ResolvedComponent } from '../../src/backends/types.js';
import type { LocalBroker } from '../support/brokers.js';
import { connect as natsConnect } from 'nats';
import { startProxy } from '../backends/nats/proxy.js';
import { deleteKeys, dropQscaleConnections } from '../backends/redis/helpers.js';
import { closeConnectionsOf } from '../backends/rabbitmq/helpers.js';
import { deleteServiceBusQueue, serviceBusConnectionFromEnv, serviceBusSkipReason } from '../backends/azure/cloud.js';

export interface ConformanceOptions {
  /** Deliveries before dead-lettering; rows also make redelivery immediate (no backoff) so tests stay short. */
  maxDeliveryCount: number;
}

export interface Claims {
  /** One receiver with concurrency 1 gets messages in send order. */
  fifo: boolean;
  /** A message failing maxDeliveryCount times is set aside and readable through deadLetters(). */
  deadLetter: boolean;
  /** depth().inFlight counts messages held by handlers right now. */
  depthInFlight: boolean;
}

export interface ConformanceRow {
  name: string;
  type: string;
  needs?: LocalBroker;
  makeComponent(queueName: string, options: ConformanceOptions): ResolvedComponent;
  claims: Claims;
  /** Cuts the backend's connection to its broker from outside, as a broker restart or a network blip would. */
  dropConnection?(queueName: string): Promise<void>;
  cleanup?(queueName: string): Promise<void>;
  /** Why the row cannot run on this machine (a cloud broker without credentials): skipped with it, CI included. */
  skipReason?(): string | undefined;
}

export { componentFromYaml };

const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** NATS rows reach the machine's server through a relay the suite can cut. */
const natsProxy = await startProxy(4222);

async function deleteNatsStreams(stream: string): Promise<void> {
  const nc = await natsConnect({ servers: 'nats://127.0.0.1:4222' });
  try {
    const jsm = await nc.jetstreamManager();
    for (const s of [stream, `${stream}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

async function pgQuery(sql: string, params: unknown[]): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export const rows: readonly ConformanceRow[] = [
  {
    name: 'azure-servicebus',
    type: 'bindings.azure.servicebusqueues',
    skipReason: serviceBusSkipReason,
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.azure.servicebusqueues', {
      connectionString: serviceBusConnectionFromEnv() ?? '', queueName, maxDeliveryCount: String(o.maxDeliveryCount),
      maxRetriableErrorsPerSec: '0', maxConcurrentHandlers: '16', maxActiveMessages: '16',
    }),
    // Service Bus orders a plain queue by sequence number but does not promise it to one receiver: not claimed.
    claims: { fifo: false, deadLetter: true, depthInFlight: true },
    cleanup: deleteServiceBusQueue,
  },
  {
    name: 'embedded',
    type: 'bindings.qscale.embedded',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.embedded', {
      queueName, maxDeliveryCount: String(o.maxDeliveryCount), retryBackoff: '0s', maxConcurrentHandlers: '16',
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
  },
  {
    name: 'nats-jetstream',
    type: 'bindings.qscale.nats-jetstream',
    needs: 'nats',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.nats-jetstream', {
      natsURL: natsProxy.url, stream: queueName, maxDeliveryCount: String(o.maxDeliveryCount), ackWait: '5s',
      maxConcurrentHandlers: '16', storage: 'memory',
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    dropConnection: async () => natsProxy.cut(),
    cleanup: deleteNatsStreams,
  },
  {
    name: 'postgresql',
    type: 'bindings.qscale.postgresql',
    needs: 'postgresql',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.postgresql', {
      connectionString: PG_URL, queueName, maxDeliveryCount: String(o.maxDeliveryCount), table: 'qscale_conformance',
      maxConcurrentHandlers: '16',
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    dropConnection: (queueName) =>
      pgQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`qscale:${queueName}`]),
  },
  {
    name: 'rabbitmq',
    type: 'bindings.rabbitmq',
    needs: 'rabbitmq',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.rabbitmq', {
      host: AMQP_URL, queueName, durable: 'true', maxDeliveryCount: String(o.maxDeliveryCount), reconnectWaitInSeconds: '1',
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    // Only this row's connections (named qscale:<component>): other work on the broker keeps going.
    dropConnection: async (queueName) => {
      await closeConnectionsOf(queueName);
    },
    cleanup: async (queueName) => {
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        for (const q of [queueName, `${queueName}-dlq`]) await ch.deleteQueue(q);
      } finally {
        await conn.close();
      }
    },
  },
  {
    name: 'redis',
    type: 'bindings.qscale.redis',
    needs: 'redis',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.redis', {
      redisHost: '127.0.0.1:6379', queueName, maxDeliveryCount: String(o.maxDeliveryCount), reconnectWaitInSeconds: '0.2',
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    // Only this row's connections (named qscale:<component>): other work on the server keeps going.
    dropConnection: async (queueName) => {
      await dropQscaleConnections(queueName);
    },
    cleanup: (queueName) => deleteKeys(queueName, `${queueName}:dlq`),
  },
];
