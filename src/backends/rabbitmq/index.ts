/**
 * RabbitMQ: Dapr's `bindings.rabbitmq` binding and KEDA's `rabbitmq` trigger.
 */
import type { MetadataSpec } from '../../components/metadata.js';
import type { BackendDefinition } from '../types.js';
import { RabbitmqBackend } from './backend.js';
import { RABBITMQ_TYPE, componentContext, parseRabbitmqComponent, rabbitmqMetadata } from './metadata.js';

export { RabbitmqBackend } from './backend.js';
export { rabbitmqMetadata, parseRabbitmqComponent, RABBITMQ_TYPE, type RabbitmqSettings } from './metadata.js';
export { rabbitmqTrigger, rabbitmqTriggerMetadata, parseRabbitmqTrigger, rabbitmqMetricName } from './trigger.js';
export { parseRabbitmqQueueParams, rabbitmqQueueParamsMetadata } from './trigger-params.js';

export const rabbitmqBackend: BackendDefinition = {
  types: [RABBITMQ_TYPE],
  // The registry holds specs of every shape; precise field types stay with this module's own parse calls.
  metadata: rabbitmqMetadata as unknown as MetadataSpec,
  queueName(component) {
    return rabbitmqMetadata.parse(component.metadata, componentContext(component)).queueName;
  },
  create(component, ctx) {
    return new RabbitmqBackend(component, parseRabbitmqComponent(component), ctx);
  },
};
