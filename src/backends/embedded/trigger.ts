/**
 * KEDA-style trigger `qscale-embedded` for `bindings.qscale.embedded` queues. Named like the Service Bus trigger's
 * fields (messageCount / activationMessageCount) since it counts the same thing.
 */
import { defineMetadata } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import type { QueueTriggerParams, ResolvedTrigger, TriggerDefinition } from '../../autoscaler/scaler.js';

export const EMBEDDED_TRIGGER_TYPE = 'qscale-embedded';

export const embeddedTriggerMetadata = defineMetadata([
  { name: 'queueName', type: 'string', required: true, description: 'The embedded queue to measure.' },
  { name: 'messageCount', type: 'number', default: 5, description: 'Target ready + in-flight messages per replica.' },
  { name: 'activationMessageCount', type: 'number', default: 0, min: 0,
    description: 'Active when ready + in-flight messages are strictly above this.' },
] as const);

export function parseEmbeddedTriggerParams(trigger: ResolvedTrigger): QueueTriggerParams {
  const md = embeddedTriggerMetadata.parse(trigger.metadata, trigger);
  if (!(md.messageCount > 0)) {
    throw new ConfigError(`${trigger.subject}: messageCount must be a number > 0, got ${md.messageCount}`, {
      ...trigger.where('messageCount'),
      field: 'messageCount',
    });
  }
  return { queueName: md.queueName, target: md.messageCount, activationTarget: md.activationMessageCount };
}

export const embeddedTrigger: TriggerDefinition = {
  type: EMBEDDED_TRIGGER_TYPE,
  parseQueueParams: parseEmbeddedTriggerParams,
  create(trigger) {
    // The scaler needs the data folder, which only the registry's createScaler knows.
    throw new ConfigError(`${trigger.subject}: the ${EMBEDDED_TRIGGER_TYPE} trigger is created through the registry (createScaler)`, trigger.where());
  },
};
