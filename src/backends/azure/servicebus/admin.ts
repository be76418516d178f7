/**
 * The management calls qscale makes (Service Bus's ATOM API through ServiceBusAdministrationClient): read the queue's
 * properties (does it exist; when does it dead-letter; does it drop duplicates), create it with Dapr's creation
 * properties, and count its messages. Behind an interface so the binding can
 * run where that API does not exist (the Service Bus emulator) or be watched in tests.
 */
import type * as ServiceBusSdk from '@azure/service-bus';
import type { ServiceBusAdministrationClient, CreateQueueOptions } from '@azure/service-bus';
import type { TokenCredential } from '@azure/identity';
import { lazyModule } from '../../lazy-require.js';

const sdk = lazyModule<typeof ServiceBusSdk>('@azure/service-bus');
import type { QueueCreationProperties } from './metadata.js';

export interface EntityCounts {
  /** Messages that can be (or are being) delivered: KEDA's ActiveMessageCount. Locked messages are included. */
  active: number;
  deadLetter: number;
  scheduled: number;
}

/** What the binding needs to know of an existing queue. */
export interface QueueFacts {
  /** Deliveries after which Service Bus dead-letters a message. */
  maxDeliveryCount: number;
  /** Duplicate detection: a message whose MessageId was seen within the window is dropped. */
  requiresDuplicateDetection: boolean;
}

/** Service Bus's MaxDeliveryCount when a queue is created without one. */
export const DEFAULT_MAX_DELIVERY_COUNT = 10;

export interface QueueAdmin {
  /** undefined: no such queue. */
  queueFacts(queue: string, signal?: AbortSignal): Promise<QueueFacts | undefined>;
  createQueue(queue: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void>;
  queueCounts(queue: string, signal?: AbortSignal): Promise<EntityCounts>;
  subscriptionCounts(topic: string, subscription: string, signal?: AbortSignal): Promise<EntityCounts>;
}

/** ISO 8601 duration, what the ATOM API takes. */
export function isoSeconds(sec: number): string {
  return `PT${sec}S`;
}

export function createQueueOptions(p: QueueCreationProperties): CreateQueueOptions {
  const o: CreateQueueOptions = {};
  if (p.lockDurationSec !== undefined) o.lockDuration = isoSeconds(p.lockDurationSec);
  if (p.defaultMessageTtlSec !== undefined) o.defaultMessageTimeToLive = isoSeconds(p.defaultMessageTtlSec);
  if (p.maxDeliveryCount !== undefined) o.maxDeliveryCount = p.maxDeliveryCount;
  if (p.autoDeleteOnIdleSec !== undefined) o.autoDeleteOnIdle = isoSeconds(p.autoDeleteOnIdleSec);
  return o;
}

export class SdkQueueAdmin implements QueueAdmin {
  constructor(private readonly client: ServiceBusAdministrationClient) {}

  static fromConnectionString(connectionString: string): SdkQueueAdmin {
    return new SdkQueueAdmin(new (sdk().ServiceBusAdministrationClient)(connectionString));
  }

  /** Azure AD: the namespace's host name and a credential. */
  static fromCredential(namespace: string, credential: TokenCredential): SdkQueueAdmin {
    return new SdkQueueAdmin(new (sdk().ServiceBusAdministrationClient)(namespace, credential));
  }

  async queueFacts(queue: string, signal?: AbortSignal): Promise<QueueFacts | undefined> {
    // Not the SDK's queueExists: it answers false to every error, so an unreachable namespace would look empty.
    try {
      const q = await this.client.getQueue(queue, opts(signal));
      return { maxDeliveryCount: q.maxDeliveryCount, requiresDuplicateDetection: q.requiresDuplicateDetection };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async createQueue(queue: string, props: QueueCreationProperties, signal?: AbortSignal): Promise<void> {
    await this.client.createQueue(queue, { ...createQueueOptions(props), ...opts(signal) });
  }

  async queueCounts(queue: string, signal?: AbortSignal): Promise<EntityCounts> {
    const p = await this.client.getQueueRuntimeProperties(queue, opts(signal));
    return { active: p.activeMessageCount, deadLetter: p.deadLetterMessageCount, scheduled: p.scheduledMessageCount };
  }

  async subscriptionCounts(topic: string, subscription: string, signal?: AbortSignal): Promise<EntityCounts> {
    const p = await this.client.getSubscriptionRuntimeProperties(topic, subscription, opts(signal));
    return { active: p.activeMessageCount, deadLetter: p.deadLetterMessageCount, scheduled: 0 };
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  return e !== null && typeof e === 'object' && (e.statusCode === 404 || e.code === 'MessageEntityNotFoundError');
}

function opts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}
