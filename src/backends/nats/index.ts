/**
 * NATS JetStream as a queue: the `bindings.qscale.nats-jetstream` binding and KEDA's `nats-jetstream` trigger.
 */
import type { BackendDefinition } from '../types.js';
import type { MetadataSpec } from '../../components/metadata.js';
import { NatsBackend } from './backend.js';
import { natsMetadata, NATS_BINDING_TYPE } from './metadata.js';

export { natsJetStreamTrigger, natsTriggerMetadata } from './trigger.js';
export { natsMetadata, NATS_BINDING_TYPE } from './metadata.js';
export { NatsBackend } from './backend.js';

export const natsBackend: BackendDefinition = {
  types: [NATS_BINDING_TYPE],
  // The registry holds specs of every shape; the precise field types stay with this module's own parse calls.
  metadata: natsMetadata as unknown as MetadataSpec,
  /** The stream is the queue: --embedded serves a queue of that name. */
  queueName(component) {
    return natsMetadata.parse(component.metadata, {
      subject: `component ${component.name} (${component.type})`,
      where: component.where,
    }).stream;
  },
  create(component, ctx) {
    return new NatsBackend(component, ctx);
  },
};
