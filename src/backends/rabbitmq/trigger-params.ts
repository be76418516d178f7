/**
 * The queue-related fields of KEDA's `rabbitmq` trigger, shared by the broker-native scaler and by the embedded queue
 * when --embedded serves the trigger: queueName; mode QueueLength | MessageRate with value, or the legacy queueLength
 * (default 20 when neither is given); activationValue (default 0).
 */
import { defineMetadata } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import type { QueueTriggerParams, ResolvedTrigger } from '../../autoscaler/scaler.js';

export const rabbitmqQueueParamsMetadata = defineMetadata([
  { name: 'queueName', type: 'string', required: true, description: 'The queue to measure.' },
  { name: 'mode', type: 'string', enum: ['QueueLength', 'MessageRate'],
    description: 'QueueLength: messages per replica; MessageRate: publish rate per replica (http only).' },
  { name: 'value', type: 'number', description: 'Target for mode, per replica (AverageValue).' },
  { name: 'queueLength', type: 'number', description: 'Deprecated: the QueueLength target. Default 20.' },
  { name: 'activationValue', type: 'number', default: 0, description: 'Active when the metric is strictly above this.' },
] as const);

export const DEFAULT_RABBITMQ_QUEUE_LENGTH = 20;

export interface RabbitmqQueueParams extends QueueTriggerParams {
  mode: 'QueueLength' | 'MessageRate';
}

export function parseRabbitmqQueueParams(trigger: ResolvedTrigger): RabbitmqQueueParams {
  const md = rabbitmqQueueParamsMetadata.parse(trigger.metadata, trigger);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), field });
  if (md.queueLength !== undefined && (md.mode !== undefined || md.value !== undefined)) {
    throw fail('queueLength is deprecated and cannot be combined with mode and value: use mode and value', 'queueLength');
  }
  let mode: 'QueueLength' | 'MessageRate' = 'QueueLength';
  let target = md.queueLength ?? DEFAULT_RABBITMQ_QUEUE_LENGTH;
  if (md.mode !== undefined || md.value !== undefined) {
    if (md.mode === undefined) throw fail("value needs mode (QueueLength or MessageRate)", 'value');
    if (md.value === undefined) throw fail(`mode ${md.mode} needs a value`, 'mode');
    mode = md.mode as 'QueueLength' | 'MessageRate';
    target = md.value;
  }
  if (!(target > 0)) throw fail(`the target must be a number > 0, got ${target}`, md.queueLength !== undefined ? 'queueLength' : 'value');
  return { queueName: md.queueName, mode, target, activationTarget: md.activationValue };
}
