/**
 * The embedded queue: `bindings.qscale.embedded` (SQLite, no broker) and its `qscale-embedded` trigger. Under
 * --embedded the registry also serves every other queue binding type and trigger from here, keeping queue names.
 */
import type { MetadataSpec } from '../../components/metadata.js';
import type { BackendDefinition } from '../types.js';
import { EmbeddedBackend } from './backend.js';
import { EMBEDDED_TYPE, componentContext, embeddedMetadata, parseEmbeddedComponent } from './metadata.js';

export { EmbeddedBackend, type EmbeddedBackendOptions, type SettledOutcome } from './backend.js';
export { EMBEDDED_TYPE, embeddedMetadata, parseEmbeddedComponent, type EmbeddedSettings } from './metadata.js';
export { createEmbeddedScaler, watchArrivals } from './scaler.js';
export { EMBEDDED_TRIGGER_TYPE, embeddedTrigger, embeddedTriggerMetadata, parseEmbeddedTriggerParams } from './trigger.js';
export { QueueStore, QUEUE_FILE } from './store.js';
export { readDeadLetters } from './dead-letters.js';

export const embeddedBackend: BackendDefinition = {
  types: [EMBEDDED_TYPE],
  // The registry holds specs of every shape; the precise field types stay with this module's own parse calls.
  metadata: embeddedMetadata as unknown as MetadataSpec,
  queueName(component) {
    return embeddedMetadata.parse(component.metadata, componentContext(component)).queueName;
  },
  create(component, ctx) {
    return new EmbeddedBackend(component, parseEmbeddedComponent(component), ctx);
  },
};
