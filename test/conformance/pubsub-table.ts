/**
 * One row per pub/sub component type: how the pub/sub conformance suite builds a component for a topic. Metadata is
 * what the real Dapr component declares (shared reference: components-contrib metadata.yaml), never a qscale name,
 * except on the embedded row (a local-only type). Each broker's owner keeps its row.
 */
import type { ResolvedComponent } from '../../src/backends/types.js';
import type { LocalBroker } from '../support/brokers.js';
import { ServiceBusAdministrationClient } from '@azure/service-bus';
import { deleteServiceBusQueue, serviceBusConnectionFromEnv, serviceBusSkipReason } from '../backends/azure/cloud.js';
import { componentFromYaml } from './component.js';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { StorageType, connect as connectNats, type JetStreamManager } from 'nats';

export interface PubSubRow {
  name: string;
  type: string;
  needs?: LocalBroker;
  /** A component for this test; `id` is unique per test (use it for anything named: stream, exchange prefix…). */
  makeComponent(id: string, extra?: Record<string, string>): ResolvedComponent;
  /** Run once per test before the component is created (e.g. a JetStream stream Dapr expects to exist). */
  before?(id: string, topics: string[]): Promise<void>;
  /** Removes what the test created on the broker. */
  cleanup?(id: string, topics: string[]): Promise<void>;
  skipReason?(): string | undefined;
  /**
   * false where every app shares one queue per topic (pubsub.azure.servicebus.queues, as in daprd): replicas still share
   * the events, but a second app does not get its own copy.
   */
  fanOut?: boolean;
}

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = 'nats://127.0.0.1:4222';

async function withJetStream(fn: (jsm: JetStreamManager) => Promise<unknown>): Promise<void> {
  const nc = await connectNats({ servers: NATS_URL });
  try {
    await fn(await nc.jetstreamManager());
  } finally {
    await nc.close();
  }
}

export const pubsubRows: readonly PubSubRow[] = [
  {
    // Service Bus queues are shared by every app (the queue is named after the topic): the case "another app gets
    // every event" does not hold for this type, in daprd as here. Runs only against a real namespace.
    name: 'azure-servicebus-queues',
    fanOut: false,
    type: 'pubsub.azure.servicebus.queues',
    skipReason: serviceBusSkipReason,
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.azure.servicebus.queues', {
      connectionString: serviceBusConnectionFromEnv() ?? '', ...extra,
    }),
    cleanup: async (_id, topics) => {
      for (const t of topics) await deleteServiceBusQueue(t);
    },
  },
  {
    name: 'azure-servicebus-topics',
    type: 'pubsub.azure.servicebus.topics',
    skipReason: serviceBusSkipReason,
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.azure.servicebus.topics', {
      connectionString: serviceBusConnectionFromEnv() ?? '', ...extra,
    }),
    // Deleting a topic deletes its subscriptions.
    cleanup: (_id, topics) => deleteServiceBusTopics(topics),
  },
  {
    name: 'embedded',
    type: 'pubsub.qscale.embedded',
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.qscale.embedded', { ...extra }),
  },
  {
    name: 'jetstream',
    type: 'pubsub.jetstream',
    needs: 'nats',
    // As a user writes it for Dapr: one durable consumer per app, shared by its replicas through the deliver group.
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.jetstream', {
      natsURL: NATS_URL, streamName: id, durableName: '{appID}', queueGroupName: '{appID}', ...extra,
    }),
    // Dapr expects the stream to exist: made as a user would (nats stream add <id> --subjects <topics>).
    before: (id, topics) => withJetStream((jsm) => jsm.streams.add({ name: id, subjects: topics, storage: StorageType.Memory })),
    cleanup: (id) => withJetStream((jsm) => jsm.streams.delete(id)),
  },
  {
    name: 'rabbitmq',
    type: 'pubsub.rabbitmq',
    needs: 'rabbitmq',
    // What a user who wants "a failed event comes again" sets: daprd's default (false) drops it, or dead-letters it
    // with enableDeadLetter (test/backends/rabbitmq/pubsub.test.ts).
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.rabbitmq', {
      connectionString: AMQP_URL, durable: 'true', deletedWhenUnused: 'false', requeueInFailure: 'true', ...extra,
    }),
    cleanup: (_id, topics) => deleteRabbitmqTopics(topics, ['app-a', 'app-b', 'app-c']),
  },
  {
    name: 'redis',
    type: 'pubsub.redis',
    needs: 'redis',
    // redeliverInterval in milliseconds: daprd reads only a bare number there.
    makeComponent: (id, extra) => componentFromYaml(id, 'pubsub.redis', { redisHost: '127.0.0.1:6379', redeliverInterval: '1000', processingTimeout: '2s', ...extra }),
    cleanup: async (_id, topics) => {
      const r = new Redis({ host: '127.0.0.1', port: 6379 });
      try {
        await r.del(...topics);
      } finally {
        r.disconnect();
      }
    },
  },
];

/** The exchanges (one per topic) and queues (`<app>-<topic>`) pubsub.rabbitmq declared for a test. */
async function deleteRabbitmqTopics(topics: string[], apps: string[]): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    for (const t of topics) {
      for (const a of apps) await ch.deleteQueue(`${a}-${t}`);
      await ch.deleteExchange(t);
    }
  } finally {
    await conn.close();
  }
}

/** The topics pubsub.azure.servicebus.topics created for a test, with their subscriptions (a real namespace only). */
async function deleteServiceBusTopics(topics: string[]): Promise<void> {
  const cs = serviceBusConnectionFromEnv();
  if (!cs) return;
  const admin = new ServiceBusAdministrationClient(cs);
  for (const t of topics) await admin.deleteTopic(t).catch(() => undefined);
}
