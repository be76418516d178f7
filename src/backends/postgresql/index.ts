/**
 * PostgreSQL as a queue: the `bindings.qscale.postgresql` binding and KEDA's `postgresql` trigger.
 */
import type { BackendDefinition } from '../types.js';
import type { MetadataSpec } from '../../components/metadata.js';
import { PostgresBackend } from './backend.js';
import { postgresqlMetadata, POSTGRESQL_BINDING_TYPE } from './metadata.js';

export { postgresqlTrigger, postgresqlTriggerMetadata, queueFromQuery } from './trigger.js';
export { postgresqlMetadata, POSTGRESQL_BINDING_TYPE } from './metadata.js';
export { PostgresBackend } from './backend.js';

export const postgresqlBackend: BackendDefinition = {
  types: [POSTGRESQL_BINDING_TYPE],
  // The registry holds specs of every shape; the precise field types stay with this module's own parse calls.
  metadata: postgresqlMetadata as unknown as MetadataSpec,
  queueName(component) {
    return postgresqlMetadata.parse(component.metadata, {
      subject: `component ${component.name} (${component.type})`,
      where: component.where,
    }).queueName;
  },
  create(component, ctx) {
    return new PostgresBackend(component, ctx);
  },
};
