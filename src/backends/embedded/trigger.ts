/**
 * KEDA-style trigger `qscale-embedded` (qscale's own) for `bindings.qscale.embedded` queues. Named like the Service Bus trigger's
 * fields (messageCount / activationMessageCount) since it counts the same thing.
 */
import { ConfigError } from '../../errors.js';
import { defineTriggerMetadata, positiveTarget } from '../trigger-metadata.js';
import type { QueueTriggerParams, ResolvedTrigger, TriggerDefinition } from '../../autoscaler/scaler.js';

export const EMBEDDED_TRIGGER_TYPE = 'qscale-embedded';

export const embeddedTriggerMetadata = defineTriggerMetadata([
  { name: 'queueName', type: 'string', required: true, description: 'The embedded queue to measure.' },
  { name: 'messageCount', type: 'float', default: '5', description: 'Target ready + in-flight messages per replica.' },
  { name: 'activationMessageCount', type: 'float', default: '0', description: 'Active when ready + in-flight messages are strictly above this.' },
] as const);

/** Read with the same rules as KEDA's triggers (trigger-metadata.ts), so it behaves like its neighbours. */
export function parseEmbeddedTriggerParams(trigger: ResolvedTrigger): QueueTriggerParams {
  const md = embeddedTriggerMetadata.parse(trigger);
  positiveTarget(trigger, md.messageCount, 'messageCount');
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
