/**
 * Azure Service Bus: Dapr's `bindings.azure.servicebusqueues` binding and KEDA's `azure-servicebus` trigger.
 */
import type { MetadataSpec } from '../../../components/metadata.js';
import type { BackendDefinition } from '../../types.js';
import { ServiceBusBackend } from './backend.js';
import { SERVICEBUS_QUEUES_TYPE, parseServiceBusComponent, serviceBusMetadata } from './metadata.js';
import { serviceBusQueueName } from './trigger-params.js';

export { ServiceBusBackend, defaultClients, type ServiceBusClients } from './backend.js';
export { SdkQueueAdmin, type QueueAdmin, type QueueFacts, type EntityCounts } from './admin.js';
export { serviceBusMetadata, parseServiceBusComponent, SERVICEBUS_QUEUES_TYPE, type ServiceBusSettings } from './metadata.js';
export { serviceBusTrigger, serviceBusTriggerMetadata, parseServiceBusTrigger, createServiceBusScaler, serviceBusMetricName } from './trigger.js';
export {
  SERVICEBUS_TRIGGER_TYPE, DEFAULT_SERVICEBUS_MESSAGE_COUNT, parseServiceBusQueueParams, serviceBusQueueName,
  serviceBusQueueParamsMetadata,
} from './trigger-params.js';

export const serviceBusBackend: BackendDefinition = {
  types: [SERVICEBUS_QUEUES_TYPE],
  // The registry holds specs of every shape; precise field types stay with this module's own parse calls.
  metadata: serviceBusMetadata as unknown as MetadataSpec,
  queueName: serviceBusQueueName,
  create(component, ctx) {
    return new ServiceBusBackend(component, parseServiceBusComponent(component), ctx);
  },
};
