/**
 * Stands in for Service Bus's management (ATOM) API in tests: answers from the AMQP test peer's own counts and
 * records every call. Not Service Bus, and not its HTTP API.
 */
import type { EntityCounts, QueueAdmin } from '../../../src/backends/azure/servicebus/admin.js';
import type { QueueCreationProperties } from '../../../src/backends/azure/servicebus/metadata.js';
import type { AmqpTestPeer } from './amqp-peer.js';

export type AdminCall =
  | { op: 'queueExists'; queue: string }
  | { op: 'createQueue'; queue: string; props: QueueCreationProperties }
  | { op: 'queueCounts'; queue: string }
  | { op: 'subscriptionCounts'; topic: string; subscription: string };

export class RecordingAdmin implements QueueAdmin {
  readonly calls: AdminCall[] = [];
  readonly existing = new Set<string>();

  constructor(private readonly peer?: AmqpTestPeer, private readonly fixed?: EntityCounts) {}

  async queueExists(queue: string): Promise<boolean> {
    this.calls.push({ op: 'queueExists', queue });
    return this.existing.has(queue);
  }

  async createQueue(queue: string, props: QueueCreationProperties): Promise<void> {
    this.calls.push({ op: 'createQueue', queue, props });
    this.existing.add(queue);
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
