/**
 * What the Service Bus pub/sub asks of the namespace's management (ATOM) API, as daprd's EnsureTopic /
 * EnsureSubscription / EnsureQueue do: does the entity exist, create it (topics with the server's defaults,
 * subscriptions and queues with the component's creation properties). Behind an interface so the pub/sub can run
 * where that API does not exist (the emulator) or be watched in tests; and the clients the pub/sub works through.
 */
import type * as ServiceBusSdk from '@azure/service-bus';
import type { CreateSubscriptionOptions, ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import type { TokenCredential } from '@azure/identity';
import { lazyModule } from '../../lazy-require.js';
import { chained, daprCredentialChain, describeChain } from '../identity.js';
import { createQueueOptions } from './admin.js';
import type { QueueCreationProperties } from './metadata.js';
import type { ServiceBusPubSubSettings } from './pubsub-metadata.js';

const sdk = lazyModule<typeof ServiceBusSdk>('@azure/service-bus');

export interface PubSubEntityAdmin {
  /** Reaches the namespace (and checks the rights the management calls need). */
  ping(signal?: AbortSignal): Promise<void>;
  queueExists(queue: string, signal?: AbortSignal): Promise<boolean>;
  createQueue(queue: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void>;
  topicExists(topic: string, signal?: AbortSignal): Promise<boolean>;
  createTopic(topic: string, signal?: AbortSignal): Promise<void>;
  subscriptionExists(topic: string, subscription: string, signal?: AbortSignal): Promise<boolean>;
  createSubscription(topic: string, subscription: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void>;
}

/** daprd's CreateSubscriptionProperties: what the component sets, as for a queue; the server decides the rest. */
export function createSubscriptionOptions(p: QueueCreationProperties): CreateSubscriptionOptions {
  const o: CreateSubscriptionOptions = createQueueOptions(p);
  return o;
}

export class SdkPubSubAdmin implements PubSubEntityAdmin {
  constructor(private readonly client: ServiceBusAdministrationClient) {}

  async ping(signal?: AbortSignal): Promise<void> {
    await this.client.getNamespaceProperties(opts(signal));
  }

  // Not the SDK's *Exists: they answer false to every error, so an unreachable namespace would look empty.
  queueExists(queue: string, signal?: AbortSignal): Promise<boolean> {
    return exists(this.client.getQueue(queue, opts(signal)));
  }

  async createQueue(queue: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void> {
    await this.client.createQueue(queue, { ...createQueueOptions(props), ...opts(signal) });
  }

  topicExists(topic: string, signal?: AbortSignal): Promise<boolean> {
    return exists(this.client.getTopic(topic, opts(signal)));
  }

  async createTopic(topic: string, signal?: AbortSignal): Promise<void> {
    await this.client.createTopic(topic, opts(signal));
  }

  subscriptionExists(topic: string, subscription: string, signal?: AbortSignal): Promise<boolean> {
    return exists(this.client.getSubscription(topic, subscription, opts(signal)));
  }

  async createSubscription(topic: string, subscription: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void> {
    await this.client.createSubscription(topic, subscription, { ...createSubscriptionOptions(props), ...opts(signal) });
  }
}

async function exists(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    const e = err as { statusCode?: unknown; code?: unknown } | null;
    if (e !== null && typeof e === 'object' && (e.statusCode === 404 || e.code === 'MessageEntityNotFoundError')) return false;
    throw err;
  }
}

function opts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

/** The clients the pub/sub works through; tests pass their own. */
export interface PubSubClients {
  messaging: ServiceBusClient;
  /** undefined: no management calls (disableEntityManagement, or the emulator, which has no management API). */
  admin: PubSubEntityAdmin | undefined;
  /** With Azure AD: the credentials tried, in order, for the log. */
  credentials?: string;
}

export function pubsubClients(s: ServiceBusPubSubSettings): PubSubClients {
  const options = {
    identifier: 'qscale',
    // daprd's publish retry (publishMaxRetries from publishInitialRetryIntervalInMs, exponential) is the SDK's own here.
    retryOptions: {
      mode: sdk().RetryMode.Exponential,
      maxRetries: s.publishMaxRetries,
      retryDelayInMs: Math.max(1, s.publishInitialRetryIntervalMs),
      timeoutInMs: s.timeoutMs,
    },
  };
  const manage = !s.disableEntityManagement;
  if (s.azureAd) {
    const chain = daprCredentialChain(s.azureAd);
    const credential: TokenCredential = chained(chain);
    const messaging = new (sdk().ServiceBusClient)(s.connection.host, credential, options);
    const admin = manage ? new SdkPubSubAdmin(new (sdk().ServiceBusAdministrationClient)(s.connection.host, credential)) : undefined;
    return { messaging, admin, credentials: describeChain(chain) };
  }
  const messaging = new (sdk().ServiceBusClient)(s.connection.withoutEntityPath, options);
  const admin = manage && !s.connection.emulator
    ? new SdkPubSubAdmin(new (sdk().ServiceBusAdministrationClient)(s.connection.withoutEntityPath))
    : undefined;
  return { messaging, admin };
}
