/**
 * What each backend claims, one row per binding type. The conformance suite runs every case over every row and
 * checks the claims; a broker owner adds a row here when adding a folder under src/backends/.
 */
import amqp from 'amqplib';
import pg from 'pg';
import { componentFromYaml } from './component.js';
import type { ResolvedComponent } from '../../src/backends/types.js';
import type { LocalBroker } from '../support/brokers.js';
import { startProxy } from '../backends/proxy.js';
import { deleteNatsStreams } from '../backends/nats/support.js';
import { deleteKeys, dropQscaleConnections, redisPending } from '../backends/redis/helpers.js';
import Database from 'better-sqlite3';
import path from 'node:path';
import { parseDuration } from '../../src/components/metadata.js';
import { redeliveryDelays } from '../../src/backends/redelivery.js';
import { retryQueueName } from '../../src/backends/rabbitmq/retry.js';
import { closeConnectionsOf } from '../backends/rabbitmq/helpers.js';
import { deleteServiceBusQueue, serviceBusConnectionFromEnv, serviceBusSkipReason } from '../backends/azure/cloud.js';

export interface ConformanceOptions {
  /** Deliveries before dead-lettering. */
  maxDeliveryCount: number;
  /** The redelivery backoff (retryBackoff, retryBackoffMax): short by default so the suite stays quick. */
  backoff: Backoff;
}

export interface Backoff {
  retryBackoff: string;
  retryBackoffMax: string;
}

/** What most cases use: every failure still goes through the backoff path, for a few hundred milliseconds. */
export const QUICK_BACKOFF: Backoff = { retryBackoff: '100ms', retryBackoffMax: '200ms' };
/** The backoff case's: long enough to read the broker's state while a message waits. */
export const SPACED_BACKOFF: Backoff = { retryBackoff: '2s', retryBackoffMax: '4s' };

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
  /**
   * How long the broker will still hold back a message whose delivery failed, read from the broker's own state
   * (a row's next-visible time, a retry queue's TTL, the delay of the NAK sent); undefined while it is not held back.
   * `failures`: how many deliveries failed so far.
   */
  heldFor?(queueName: string, dataDir: string, failures: number): Promise<number | undefined>;
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

async function pgQuery(sql: string, params: unknown[]): Promise<void> {
  await pgRows(sql, params);
}

async function pgRows<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Every retry queue a RabbitMQ row of the suite can declare. */
function suiteRetryDelays(): number[] {
  const delays = new Set<number>();
  for (const b of [QUICK_BACKOFF, SPACED_BACKOFF]) {
    const policy = { firstMs: parseDuration(b.retryBackoff) ?? 0, maxMs: parseDuration(b.retryBackoffMax) ?? 0 };
    for (const d of redeliveryDelays(policy, 10)) delays.add(d);
  }
  return [...delays];
}

/** The bindings.qscale.redis default visibilityTimeoutInSeconds, which the Redis row keeps. */
const REDIS_VISIBILITY_MS = 30_000;

export const rows: readonly ConformanceRow[] = [
  {
    name: 'azure-servicebus',
    type: 'bindings.azure.servicebusqueues',
    skipReason: serviceBusSkipReason,
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.azure.servicebusqueues', {
      connectionString: serviceBusConnectionFromEnv() ?? '', queueName, maxDeliveryCount: String(o.maxDeliveryCount),
      maxRetriableErrorsPerSec: '0', maxConcurrentHandlers: '16', maxActiveMessages: '16', ...o.backoff,
    }),
    // Service Bus orders a plain queue by sequence number but does not promise it to one receiver: not claimed.
    claims: { fifo: false, deadLetter: true, depthInFlight: true },
    cleanup: deleteServiceBusQueue,
  },
  {
    name: 'embedded',
    type: 'bindings.qscale.embedded',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.embedded', {
      queueName, maxDeliveryCount: String(o.maxDeliveryCount), maxConcurrentHandlers: '16', ...o.backoff,
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    heldFor: async (queueName, dataDir) => {
      const db = new Database(path.join(dataDir, 'queue.db'), { readonly: true, fileMustExist: true });
      try {
        const row = db.prepare('SELECT visible_at AS at FROM messages WHERE queue = ? AND lease_token IS NULL').get(queueName) as { at: number } | undefined;
        return row && row.at > Date.now() ? row.at - Date.now() : undefined;
      } finally {
        db.close();
      }
    },
  },
  {
    name: 'nats-jetstream',
    type: 'bindings.qscale.nats-jetstream',
    needs: 'nats',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.nats-jetstream', {
      natsURL: natsProxy.url('nats'), stream: queueName, maxDeliveryCount: String(o.maxDeliveryCount), ackWait: '5s',
      maxConcurrentHandlers: '16', storage: 'memory', ...o.backoff,
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    // The NAK JetStream was sent: `PUB $JS.ACK.<stream>.<consumer>... -NAK {"delay":<ns>}`.
    heldFor: async (queueName, _dataDir, failures) => {
      const naks = [...natsProxy.sent().matchAll(/PUB \$JS\.ACK\.([^.\s]+)\.[^\r\n]*\r\n-NAK(?: \{"delay":(\d+)\})?/g)]
        .filter((m) => m[1] === queueName);
      const nak = naks[failures - 1];
      return nak?.[2] ? Number(nak[2]) / 1e6 : undefined;
    },
    dropConnection: async () => natsProxy.cut(),
    cleanup: deleteNatsStreams,
  },
  {
    name: 'postgresql',
    type: 'bindings.qscale.postgresql',
    needs: 'postgresql',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.qscale.postgresql', {
      connectionString: PG_URL, queueName, maxDeliveryCount: String(o.maxDeliveryCount), table: 'qscale_conformance',
      maxConcurrentHandlers: '16', ...o.backoff,
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    heldFor: async (queueName) => {
      const r = await pgRows<{ ms: number }>(
        `SELECT extract(epoch FROM lease_until - clock_timestamp()) * 1000 AS ms FROM qscale_conformance
         WHERE queue = $1 AND lease_token IS NULL AND lease_until > clock_timestamp()`, [queueName]);
      return r[0] ? Number(r[0].ms) : undefined;
    },
    dropConnection: (queueName) =>
      pgQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`qscale:${queueName}`]),
  },
  {
    name: 'rabbitmq',
    type: 'bindings.rabbitmq',
    needs: 'rabbitmq',
    makeComponent: (queueName, o) => componentFromYaml(queueName, 'bindings.rabbitmq', {
      host: AMQP_URL, queueName, durable: 'true', maxDeliveryCount: String(o.maxDeliveryCount), reconnectWaitInSeconds: '1',
      ...o.backoff,
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    // The TTL of the retry queue the message waits in (its name carries it; a passive declare counts its messages).
    heldFor: async (queueName) => {
      const conn = await amqp.connect(AMQP_URL);
      try {
        for (const delay of suiteRetryDelays()) {
          const ch = await conn.createChannel();
          ch.on('error', () => undefined);
          const n = await ch.checkQueue(retryQueueName(queueName, delay)).then((q) => q.messageCount, () => 0);
          await ch.close().catch(() => undefined);
          if (n > 0) return delay;
        }
        return undefined;
      } finally {
        await conn.close();
      }
    },
    // Only this row's connections (named qscale:<component>): other work on the broker keeps going.
    dropConnection: async (queueName) => {
      await closeConnectionsOf(queueName);
    },
    cleanup: async (queueName) => {
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        const retries = suiteRetryDelays().map((d) => retryQueueName(queueName, d));
        for (const q of [queueName, `${queueName}-dlq`, ...retries]) await ch.deleteQueue(q);
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
      ...o.backoff,
    }),
    claims: { fifo: true, deadLetter: true, depthInFlight: true },
    // A failed entry is made to look idle for (visibility − wait): what is left of its wait is visibility − idle.
    // An entry in a handler has been idle for well under half the visibility timeout (renewed every third).
    heldFor: async (queueName) => {
      const pending = await redisPending(queueName, 'qscale');
      const idle = pending[0]?.idleMs;
      return idle !== undefined && idle > REDIS_VISIBILITY_MS / 2 ? REDIS_VISIBILITY_MS - idle : undefined;
    },
    // Only this row's connections (named qscale:<component>): other work on the server keeps going.
    dropConnection: async (queueName) => {
      await dropQscaleConnections(queueName);
    },
    cleanup: (queueName) => deleteKeys(queueName, `${queueName}:dlq`),
  },
];
