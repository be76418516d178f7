/**
 * The queues the chaos test runs on: the embedded queue and every broker of this machine. Each gives its Component
 * and ScaledObject trigger for a queue name of its own, with short leases so a killed replica's messages come back
 * within seconds, trigger settings that work on the machine as it comes (RabbitMQ over AMQP, NATS over its client
 * protocol: the management API and the monitoring endpoint may be off), and a cleanup that deletes the queue.
 */
import amqp from 'amqplib';
import pg from 'pg';
import { connect as natsConnect } from 'nats';
import type { LocalBroker } from '../support/brokers.js';
import { deleteKeys } from '../backends/redis/helpers.js';

export interface ChaosTarget {
  name: string;
  /** The broker it needs; none for the embedded queue. */
  broker?: LocalBroker;
  /** Extra flags for `qscale up`. */
  args: string[];
  /** The binding.yaml: Component message-queue on `queue`. */
  component(queue: string): string;
  /** The `triggers:` entry of the ScaledObject, indented by two spaces. */
  trigger(queue: string, target: number): string;
  cleanup(queue: string): Promise<void>;
}

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable';
const NATS_URL = 'nats://127.0.0.1:4222';

function component(type: string, metadata: Record<string, string>): string {
  const lines = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`);
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: ${type}
  version: v1
  metadata:
${lines.join('\n')}
`;
}

function trigger(type: string, metadata: Record<string, string>): string {
  const lines = Object.entries(metadata).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`);
  return `  - type: ${type}\n    metadata:\n${lines.join('\n')}\n`;
}

export const targets: readonly ChaosTarget[] = [
  {
    // The seed's Service Bus files served by the embedded queue, as `npm start` runs them.
    name: 'embedded',
    args: ['--embedded'],
    component: (queue) => component('bindings.azure.servicebusqueues', {
      connectionString: 'Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=placeholder',
      queueName: queue,
      lockDurationInSec: '3',
    }),
    trigger: (queue, target) => trigger('azure-servicebus', { queueName: queue, messageCount: String(target) }),
    cleanup: async () => undefined, // the queue lives in the run's own temporary folder
  },
  {
    name: 'rabbitmq',
    broker: 'rabbitmq',
    args: [],
    component: (queue) => component('bindings.rabbitmq', {
      host: AMQP_URL, queueName: queue, durable: 'true', maxDeliveryCount: '10', reconnectWaitInSeconds: '1',
    }),
    trigger: (queue, target) => trigger('rabbitmq', {
      protocol: 'amqp', host: `${AMQP_URL}/`, queueName: queue, mode: 'QueueLength', value: String(target),
    }),
    cleanup: async (queue) => {
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        for (const q of [queue, `${queue}-dlq`]) await ch.deleteQueue(q);
      } finally {
        await conn.close();
      }
    },
  },
  {
    name: 'redis',
    broker: 'redis',
    args: [],
    component: (queue) => component('bindings.qscale.redis', {
      redisHost: '127.0.0.1:6379', queueName: queue, consumerGroup: 'qscale', maxDeliveryCount: '10', visibilityTimeoutInSeconds: '2',
    }),
    trigger: (queue, target) => trigger('redis-streams', { address: '127.0.0.1:6379', stream: queue, streamLength: String(target) }),
    cleanup: (queue) => deleteKeys(queue, `${queue}:dlq`),
  },
  {
    name: 'postgresql',
    broker: 'postgresql',
    args: [],
    component: (queue) => component('bindings.qscale.postgresql', {
      connectionString: PG_URL, queueName: queue, table: 'qscale_queue', visibilityTimeoutInSec: '2', maxDeliveryCount: '10',
    }),
    trigger: (queue, target) => trigger('postgresql', {
      query: `SELECT count(*) FROM qscale_queue WHERE queue = '${queue}'`, targetQueryValue: String(target),
      // KEDA reads `connection` only from a TriggerAuthentication or the environment; in metadata it takes the fields.
      host: '127.0.0.1', port: '5432', userName: 'postgres', dbName: 'postgres', sslmode: 'disable',
    }),
    cleanup: async (queue) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        for (const t of ['qscale_queue', 'qscale_queue_dead_letter']) {
          await c.query(`DELETE FROM ${t} WHERE queue = $1`, [queue]).catch(() => undefined);
        }
      } finally {
        await c.end();
      }
    },
  },
  {
    name: 'nats-jetstream',
    broker: 'nats',
    args: [],
    component: (queue) => component('bindings.qscale.nats-jetstream', {
      natsURL: NATS_URL, stream: queue, subject: queue, consumer: `${queue}-consumer`, ackWait: '2s', maxDeliveryCount: '10',
    }),
    trigger: (queue, target) => trigger('nats-jetstream', {
      natsURL: NATS_URL, account: '$G', stream: queue, consumer: `${queue}-consumer`, lagThreshold: String(target),
    }),
    cleanup: async (queue) => {
      const nc = await natsConnect({ servers: NATS_URL });
      try {
        const jsm = await nc.jetstreamManager();
        for (const s of [queue, `${queue}-dlq`]) await jsm.streams.delete(s).catch(() => undefined);
      } finally {
        await nc.close();
      }
    },
  },
];
