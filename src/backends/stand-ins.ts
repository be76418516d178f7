/**
 * Stand-ins for queue bindings whose broker is not built in: they know the queue name (so --embedded serves the
 * component) and refuse to connect for real with a clear message. The broker's own registry line replaces them.
 */
import { ConfigError } from '../errors.js';
import { defineMetadata, type MetadataSpec } from '../components/metadata.js';
import type { TriggerDefinition } from '../autoscaler/scaler.js';
import type { BackendDefinition } from './types.js';
import {
  SERVICEBUS_QUEUES_TYPE, SERVICEBUS_TRIGGER_TYPE, parseServiceBusQueueParams, serviceBusQueueName,
} from './azure/servicebus/trigger-params.js';

const serviceBusMetadata = defineMetadata([
  { name: 'queueName', type: 'string', required: true, description: 'The Service Bus queue (case-insensitive).' },
  { name: 'connectionString', type: 'string', sensitive: true, description: 'Service Bus connection string.' },
  { name: 'namespaceName', type: 'string', description: 'Namespace for Microsoft Entra ID authentication.' },
  { name: 'maxDeliveryCount', type: 'integer', min: 1, description: 'Deliveries before dead-lettering.' },
  { name: 'maxConcurrentHandlers', type: 'integer', default: 1, min: 1, binding: 'input', description: 'Handlers at once.' },
  { name: 'lockRenewalInSec', type: 'integer', default: 20, min: 0, binding: 'input', description: 'Lock renewal period.' },
  { name: 'lockDurationInSec', type: 'integer', description: 'Lock duration of the queue.' },
] as const);

export const serviceBusStandIn: BackendDefinition = {
  types: [SERVICEBUS_QUEUES_TYPE],
  metadata: serviceBusMetadata as unknown as MetadataSpec,
  queueName: serviceBusQueueName,
  create(component) {
    throw new ConfigError(
      `component ${component.name} (${component.type}): Azure Service Bus is not built into this qscale: ` +
        'run with --embedded to serve the queue locally',
      component.where(),
    );
  },
};

export const serviceBusTriggerStandIn: TriggerDefinition = {
  type: SERVICEBUS_TRIGGER_TYPE,
  parseQueueParams: parseServiceBusQueueParams,
  create(trigger) {
    throw new ConfigError(
      `${trigger.subject}: the azure-servicebus scaler is not built into this qscale: run with --embedded`,
      trigger.where(),
    );
  },
};
