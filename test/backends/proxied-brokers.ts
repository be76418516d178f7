/**
 * The brokers on this machine as a component reaches them through a relay (proxy.ts) a test can cut: the metadata
 * that points a component at the relay, with short reconnect waits, and how to remove what a test made.
 */
import type { LocalBroker } from '../support/brokers.js';
import type { CuttableProxy } from './proxy.js';
import { deleteKeys } from './redis/helpers.js';
import { deleteNatsStreams } from './nats/support.js';
import { deleteQueues } from './rabbitmq/helpers.js';
import { dropQueue } from './postgresql/support.js';

export interface ProxiedBroker {
  broker: LocalBroker;
  /** As messages name it. */
  name: string;
  port: number;
  type: string;
  metadata(queue: string, proxy: CuttableProxy): Record<string, string>;
  cleanup(queue: string): Promise<void>;
}

function tableOf(queue: string): string {
  return `rcv_${queue.replace(/[^a-z0-9]/gi, '_')}`.slice(0, 48);
}

export const PROXIED_BROKERS: readonly ProxiedBroker[] = [
  {
    broker: 'rabbitmq', name: 'RabbitMQ', port: 5672, type: 'bindings.rabbitmq',
    metadata: (q, p) => ({ host: `amqp://guest:guest@127.0.0.1:${p.port}`, queueName: q, reconnectWaitInSeconds: '0.3' }),
    cleanup: (q) => deleteQueues(q, `${q}-dlq`),
  },
  {
    broker: 'redis', name: 'Redis', port: 6379, type: 'bindings.qscale.redis',
    metadata: (q, p) => ({ redisHost: `127.0.0.1:${p.port}`, queueName: q, reconnectWaitInSeconds: '0.3' }),
    cleanup: (q) => deleteKeys(q, `${q}:dlq`),
  },
  {
    broker: 'postgresql', name: 'PostgreSQL', port: 5432, type: 'bindings.qscale.postgresql',
    metadata: (q, p) => ({ connectionString: `postgres://postgres@127.0.0.1:${p.port}/postgres`, queueName: q, table: tableOf(q), pollInterval: '300ms' }),
    cleanup: (q) => dropQueue(tableOf(q)),
  },
  {
    broker: 'nats', name: 'NATS JetStream', port: 4222, type: 'bindings.qscale.nats-jetstream',
    metadata: (q, p) => ({ natsURL: p.url('nats'), stream: q, storage: 'memory' }),
    cleanup: deleteNatsStreams,
  },
];
