/**
 * Metadata of the `bindings.qscale.embedded` binding. When --embedded serves another queue binding type, the same
 * names are read from that component where they match (Service Bus spells the visibility timeout lockDurationInSec
 * and shares maxDeliveryCount, maxConcurrentHandlers and lockRenewalInSec), so its settings carry over.
 */
import { defineMetadata, type MetadataContext } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import { redeliveryFields, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';
import type { ResolvedComponent } from '../types.js';

export const EMBEDDED_TYPE = 'bindings.qscale.embedded';

export const embeddedMetadata = defineMetadata([
  { name: 'queueName', type: 'string', required: true, description: 'The queue. Many queues share one file, each by name.' },
  { name: 'visibilityTimeoutInSec', type: 'number', default: 60, min: 0.05, binding: 'input', aliases: ['lockDurationInSec'],
    description: 'Lease of a delivered message (Service Bus lock duration). A lease not completed, released or renewed ' +
      'in time makes the message ready again: how the work of a killed process comes back.' },
  { name: 'lockRenewalInSec', type: 'number', min: 0, binding: 'input',
    description: 'How often leases of messages still in the handler are renewed. Default: a third of ' +
      'visibilityTimeoutInSec. 0: never renew.' },
  { name: 'maxDeliveryCount', type: 'integer', default: 10, min: 1, binding: 'input',
    description: 'Deliveries before a message that keeps failing is moved to the dead letters (Service Bus default 10).' },
  { name: 'maxConcurrentHandlers', type: 'integer', default: 1, min: 0, binding: 'input',
    description: 'Messages handed to the app at once (the lower of this and the sidecar\'s app max concurrency); ' +
      '0 = no limit of its own, as Dapr. Only that many are leased: nothing is prefetched.' },
  ...redeliveryFields,
] as const);

export interface EmbeddedSettings {
  queueName: string;
  visibilityMs: number;
  /** 0 = never renew. */
  renewEveryMs: number;
  maxDeliveryCount: number;
  maxConcurrentHandlers: number;
  redelivery: RedeliveryPolicy;
}

export function componentContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseEmbeddedComponent(c: ResolvedComponent): EmbeddedSettings {
  const ctx = componentContext(c);
  const m = embeddedMetadata.parse(c.metadata, ctx);
  const visibilityMs = m.visibilityTimeoutInSec * 1000;
  const renewEveryMs = m.lockRenewalInSec === undefined ? visibilityMs / 3 : m.lockRenewalInSec * 1000;
  if (renewEveryMs >= visibilityMs) {
    throw new ConfigError(
      `${ctx.subject}: lockRenewalInSec (${renewEveryMs / 1000}) must be below the visibility timeout ` +
        `(${m.visibilityTimeoutInSec} s), or leases expire before they are renewed`,
      { ...c.where('lockRenewalInSec'), field: 'lockRenewalInSec' },
    );
  }
  return {
    queueName: m.queueName,
    visibilityMs,
    renewEveryMs,
    maxDeliveryCount: m.maxDeliveryCount,
    maxConcurrentHandlers: m.maxConcurrentHandlers === 0 ? Infinity : m.maxConcurrentHandlers,
    redelivery: redeliveryPolicy(m, ctx),
  };
}
