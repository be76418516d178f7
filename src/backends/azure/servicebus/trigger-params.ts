/**
 * The queue facts of Azure Service Bus that must hold even without a connection to Azure, so --embedded can serve the
 * seed's `bindings.azure.servicebusqueues` component and its `azure-servicebus` trigger on a laptop:
 * - the component's queue is its `queueName` metadata, lower-cased (Service Bus entity names are case-insensitive);
 * - KEDA's trigger: queueName (or topicName + subscriptionName), messageCount (default 5; KEDA 1.x spelled it
 *   queueLength), activationMessageCount (default 0).
 * Self-contained on purpose: the Service Bus backend and its native scaler build on these.
 */
import { defineMetadata } from '../../../components/metadata.js';
import { ConfigError } from '../../../errors.js';
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

export const serviceBusQueueParamsMetadata = defineMetadata([
  { name: 'queueName', type: 'string', description: 'The queue to measure (or topicName + subscriptionName).' },
  { name: 'topicName', type: 'string', description: 'The topic whose subscription to measure.' },
  { name: 'subscriptionName', type: 'string', description: 'The subscription of topicName to measure.' },
  { name: 'messageCount', type: 'number', description: 'Target active messages per replica. Default 5.' },
  { name: 'queueLength', type: 'number', description: 'KEDA 1.x name of messageCount.' },
  { name: 'activationMessageCount', type: 'number', default: 0, min: 0,
    description: 'Active when the active message count is strictly above this.' },
] as const);

export function parseServiceBusQueueParams(trigger: ResolvedTrigger): QueueTriggerParams {
  const md = serviceBusQueueParamsMetadata.parse(trigger.metadata, trigger);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), field });
  let queueName: string;
  if (md.queueName !== undefined) {
    if (md.topicName !== undefined) throw fail('give queueName or topicName, not both', 'topicName');
    queueName = md.queueName;
  } else if (md.topicName !== undefined) {
    if (md.subscriptionName === undefined) throw fail('topicName needs subscriptionName', 'topicName');
    queueName = `${md.topicName}/subscriptions/${md.subscriptionName}`;
  } else {
    throw fail("missing required metadata 'queueName' (or topicName and subscriptionName)", 'queueName');
  }
  if (md.messageCount !== undefined && md.queueLength !== undefined) {
    throw fail('queueLength is the KEDA 1.x name of messageCount: give only messageCount', 'queueLength');
  }
  const target = md.messageCount ?? md.queueLength ?? DEFAULT_SERVICEBUS_MESSAGE_COUNT;
  if (!(target > 0)) {
    throw fail(`the target must be a number > 0, got ${target}`, md.queueLength !== undefined ? 'queueLength' : 'messageCount');
  }
  return { queueName: queueName.toLowerCase(), target, activationTarget: md.activationMessageCount };
}
