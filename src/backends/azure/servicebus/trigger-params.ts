/**
 * The queue facts of Azure Service Bus that must hold even without a connection to Azure, so --embedded can serve the
 * seed's `bindings.azure.servicebusqueues` component and its `azure-servicebus` trigger on a laptop:
 * - the component's queue is its `queueName` metadata, lower-cased (Service Bus entity names are case-insensitive);
 * - KEDA's trigger: queueName (or topicName + subscriptionName), messageCount (default 5; KEDA 1.x spelled it
 *   queueLength, which only a keda.k8s.io/v1alpha1 ScaledObject may use), activationMessageCount (default 0).
 * Self-contained on purpose: the Service Bus backend and its native scaler build on these.
 */
import { ConfigError } from '../../../errors.js';
import { defineTriggerMetadata, positiveTarget, triggerError } from '../../trigger-metadata.js';
import type { QueueTriggerParams, ResolvedTrigger } from '../../../autoscaler/scaler.js';
import type { ResolvedComponent } from '../../types.js';

export const SERVICEBUS_QUEUES_TYPE = 'bindings.azure.servicebusqueues';
export const SERVICEBUS_TRIGGER_TYPE = 'azure-servicebus';
export const DEFAULT_SERVICEBUS_MESSAGE_COUNT = 5;

export function serviceBusQueueName(component: ResolvedComponent): string {
  const raw = Object.entries(component.metadata).find(([k]) => k.toLowerCase() === 'queuename')?.[1]?.trim() ?? '';
  if (raw === '') {
    throw new ConfigError(`component ${component.name} (${component.type}): missing required metadata 'queueName'`, {
      ...component.where(),
      field: 'queueName',
    });
  }
  return raw.toLowerCase();
}

export const serviceBusQueueFields = [
  { name: 'queueName', type: 'string', description: 'The queue to measure (or topicName + subscriptionName).' },
  { name: 'topicName', type: 'string', description: 'The topic whose subscription to measure.' },
  { name: 'subscriptionName', type: 'string', description: 'The subscription of topicName to measure.' },
  { name: 'messageCount', type: 'int', default: String(DEFAULT_SERVICEBUS_MESSAGE_COUNT), description: 'Target active messages per replica.' },
  { name: 'activationMessageCount', type: 'int', default: '0', description: 'Active when the active message count is strictly above this.' },
] as const;

export const serviceBusQueueParamsMetadata = defineTriggerMetadata(serviceBusQueueFields);

/**
 * KEDA's Validate: a queue, or a topic with its subscription, never both. KEDA 2 reads the target from messageCount
 * only; the KEDA 1.x name queueLength is mapped for keda.k8s.io/v1alpha1 ScaledObjects (scaledobject.ts) and refused
 * under keda.sh/v1alpha1, where KEDA would ignore it and scale on the default 5.
 */
export function parseServiceBusQueueParams(trigger: ResolvedTrigger): QueueTriggerParams {
  const md = serviceBusQueueParamsMetadata.parse(trigger);
  const written = trigger.sources?.triggerMetadata ?? trigger.metadata;
  if (written.queueLength !== undefined) {
    throw triggerError(
      trigger,
      `queueLength is the KEDA 1.x name of the target: KEDA 2 (keda.sh/v1alpha1) does not read it and would scale on the default messageCount ${DEFAULT_SERVICEBUS_MESSAGE_COUNT}; write messageCount`,
      'queueLength',
    );
  }
  let queueName: string;
  if (md.queueName !== undefined) {
    if (md.subscriptionName !== undefined) throw triggerError(trigger, 'subscription name provided with queue name', 'subscriptionName');
    if (md.topicName !== undefined) throw triggerError(trigger, 'both topic and queue name metadata provided: give one', 'topicName');
    queueName = md.queueName;
  } else if (md.topicName !== undefined) {
    if (md.subscriptionName === undefined) throw triggerError(trigger, 'no subscription name provided with topic name', 'topicName');
    queueName = `${md.topicName}/subscriptions/${md.subscriptionName}`;
  } else {
    throw triggerError(trigger, "no service bus entity given: give queueName, or topicName and subscriptionName", 'queueName');
  }
  positiveTarget(trigger, md.messageCount, 'messageCount');
  return { queueName: queueName.toLowerCase(), target: md.messageCount, activationTarget: md.activationMessageCount };
}
