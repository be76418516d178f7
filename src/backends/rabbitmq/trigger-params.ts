/**
 * The queue-related fields of KEDA's `rabbitmq` trigger, shared by the broker-native scaler and by the embedded queue
 * when --embedded serves the trigger: queueName; mode with value, or the deprecated queueLength (QueueLength 20 when
 * none is given); activationValue (0). The choice of mode and target follows KEDA's validateTrigger to the letter:
 * a 0 counts as not given, mode and value come together, queueLength excludes both.
 */
import type { QueueTriggerParams, ResolvedTrigger } from '../../autoscaler/scaler.js';
import { defineTriggerMetadata, positiveTarget, triggerError, type ParsedTrigger } from '../trigger-metadata.js';

export const RABBITMQ_MODES = ['QueueLength', 'MessageRate', 'DeliverGetRate', 'PublishedToDeliveredRatio', 'ExpectedQueueConsumptionTime'] as const;
export type RabbitmqMode = (typeof RABBITMQ_MODES)[number];

export const rabbitmqQueueFields = [
  { name: 'queueName', type: 'string', required: true, description: 'The queue to measure (a regular expression with useRegex).' },
  { name: 'mode', type: 'string',
    description: `With value: ${RABBITMQ_MODES.join(', ')}. All but QueueLength read rates from the management API (protocol http).` },
  { name: 'value', type: 'float', description: 'Target for mode (per replica with AverageValue).' },
  { name: 'queueLength', type: 'float', description: 'Deprecated: the QueueLength target, without mode and value. Default 20.' },
  { name: 'activationValue', type: 'float', default: '0', description: 'Active when the metric is strictly above this.' },
] as const;

export const rabbitmqQueueParamsMetadata = defineTriggerMetadata(rabbitmqQueueFields);

export const DEFAULT_RABBITMQ_QUEUE_LENGTH = 20;

export interface RabbitmqQueueParams extends QueueTriggerParams {
  mode: RabbitmqMode;
}

/**
 * KEDA's validateTrigger: the mode and its target. `protocol`, when known, applies its last two rules (rate modes need
 * http; amqp takes no timeout), which KEDA checks only once mode and value are given.
 */
export function rabbitmqModeAndTarget(
  trigger: ResolvedTrigger,
  md: ParsedTrigger<typeof rabbitmqQueueFields>,
  protocol?: { protocol: 'amqp' | 'http'; timeoutGiven: boolean },
): { mode: RabbitmqMode; target: number } {
  const queueLength = md.queueLength ?? 0;
  const value = md.value ?? 0;
  const mode = md.mode === undefined || md.mode === 'Unknown' ? undefined : md.mode;
  if (queueLength === 0 && mode === undefined && value === 0) return { mode: 'QueueLength', target: DEFAULT_RABBITMQ_QUEUE_LENGTH };
  if (queueLength !== 0 && (mode !== undefined || value !== 0)) {
    throw triggerError(trigger, 'queueLength is deprecated and cannot be combined with mode and value: use mode and value', 'queueLength');
  }
  if (queueLength !== 0) return { mode: 'QueueLength', target: positiveTarget(trigger, queueLength, 'queueLength') };
  if (mode === undefined) throw triggerError(trigger, `value needs mode (${RABBITMQ_MODES.join(', ')})`, 'value');
  if (value === 0) throw triggerError(trigger, `mode ${mode} needs a value (its target), other than 0`, 'mode');
  if (!(RABBITMQ_MODES as readonly string[]).includes(mode)) {
    throw triggerError(trigger, `metadata 'mode' must be one of ${RABBITMQ_MODES.join(', ')} (as written), got '${mode}'`, 'mode');
  }
  const m = mode as RabbitmqMode;
  if (protocol && m !== 'QueueLength' && protocol.protocol !== 'http') {
    throw triggerError(trigger, `mode ${m} needs protocol http (the management API): AMQP cannot tell message rates`, 'mode');
  }
  if (protocol?.protocol === 'amqp' && protocol.timeoutGiven) {
    throw triggerError(trigger, 'timeout applies to protocol http only: KEDA refuses it with amqp', 'timeout');
  }
  return { mode: m, target: positiveTarget(trigger, value, 'value') };
}

export function parseRabbitmqQueueParams(trigger: ResolvedTrigger): RabbitmqQueueParams {
  const md = rabbitmqQueueParamsMetadata.parse(trigger);
  const { mode, target } = rabbitmqModeAndTarget(trigger, md);
  return { queueName: md.queueName, mode, target, activationTarget: md.activationValue };
}
