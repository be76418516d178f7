/**
 * Stands in for Service Bus's management (ATOM) API in tests: answers from the AMQP test peer's own counts and
 * records every call. Not Service Bus, and not its HTTP API.
 */
import type { EntityCounts, QueueAdmin, QueueFacts } from '../../../src/backends/azure/servicebus/admin.js';
import type { QueueCreationProperties } from '../../../src/backends/azure/servicebus/metadata.js';
import type { AmqpTestPeer } from './amqp-peer.js';

export type AdminCall =
  | { op: 'queueFacts'; queue: string }
  | { op: 'createQueue'; queue: string; props: QueueCreationProperties }
  | { op: 'queueCounts'; queue: string }
  | { op: 'subscriptionCounts'; topic: string; subscription: string };

export class RecordingAdmin implements QueueAdmin {
  readonly calls: AdminCall[] = [];
  readonly existing = new Set<string>();
  /** What queueFacts() answers for an existing queue; a created one gets its maxDeliveryCount. */
  facts: QueueFacts = { maxDeliveryCount: 10, requiresDuplicateDetection: false };

  constructor(private readonly peer?: AmqpTestPeer, private readonly fixed?: EntityCounts) {}

  async queueFacts(queue: string): Promise<QueueFacts | undefined> {
    this.calls.push({ op: 'queueFacts', queue });
    return this.existing.has(queue) ? this.facts : undefined;
  }

  async createQueue(queue: string, props: QueueCreationProperties): Promise<void> {
    this.calls.push({ op: 'createQueue', queue, props });
    this.existing.add(queue);
    this.facts = { ...this.facts, maxDeliveryCount: props.maxDeliveryCount ?? 10 };
  }

  async queueCounts(queue: string): Promise<EntityCounts> {
    this.calls.push({ op: 'queueCounts', queue });
    if (this.fixed) return this.fixed;
    const c = this.peer?.counts(queue) ?? { active: 0, deadLetter: 0 };
    return { active: c.active, deadLetter: c.deadLetter, scheduled: 0 };
  }

  async subscriptionCounts(topic: string, subscription: string): Promise<EntityCounts> {
    this.calls.push({ op: 'subscriptionCounts', topic, subscription });
    return this.fixed ?? { active: 0, deadLetter: 0, scheduled: 0 };
  }
}
