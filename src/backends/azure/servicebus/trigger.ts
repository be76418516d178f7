/**
 * KEDA's `azure-servicebus` trigger: the ActiveMessageCount of a queue (or of a topic's subscription) read from the
 * management API with the trigger's connection string (TriggerAuthentication parameter `connection`, or
 * connectionFromEnv). Pod identity (namespace without connection) and useRegex are cluster-only: refused with a reason.
 */
import { boundedRead } from '../../trigger-support.js';
import { defineTriggerMetadata, triggerError } from '../../trigger-metadata.js';
import type { MetricAndActivity, MetricType, ResolvedTrigger, Scaler, TriggerDefinition } from '../../../autoscaler/scaler.js';
import { SdkQueueAdmin, type QueueAdmin } from './admin.js';
import { parseConnectionString, secretsOf } from './connection.js';
import { describeServiceBusError } from './errors.js';
import { SERVICEBUS_TRIGGER_TYPE, parseServiceBusQueueParams, serviceBusQueueFields } from './trigger-params.js';

export const serviceBusTriggerMetadata = defineTriggerMetadata([
  ...serviceBusQueueFields,
  { name: 'connection', type: 'string', sensitive: true, from: ['authParams', 'resolvedEnv'],
    description: 'Connection string with Manage rights (TriggerAuthentication parameter connection, or connectionFromEnv).' },
  { name: 'namespace', type: 'string', description: 'Pod identity only (not supported locally).' },
  { name: 'cloud', type: 'string', description: 'Pod identity only: the Azure cloud of namespace.' },
  { name: 'endpointSuffix', type: 'string', description: 'Pod identity only: the endpoint suffix of a private cloud.' },
  { name: 'useRegex', type: 'bool', description: 'Not supported locally: name one entity.' },
  { name: 'operation', type: 'string', default: 'sum', enum: ['sum', 'max', 'avg'], description: 'With useRegex only.' },
] as const);

export interface ServiceBusTriggerSettings {
  entity: { kind: 'queue'; queueName: string } | { kind: 'subscription'; topicName: string; subscriptionName: string };
  /** The entity as written, for the metric name (KEDA does not lower-case it). */
  metricEntity: string;
  target: number;
  activationTarget: number;
  connectionString: string;
  host: string;
}

export function parseServiceBusTrigger(trigger: ResolvedTrigger): ServiceBusTriggerSettings {
  const q = parseServiceBusQueueParams(trigger);
  const md = serviceBusTriggerMetadata.parse(trigger);
  if (md.useRegex) {
    const pattern = md.queueName ?? md.subscriptionName ?? '';
    try {
      new RegExp(pattern);
    } catch {
      throw triggerError(trigger, `${md.queueName !== undefined ? 'queueName' : 'subscriptionName'} is not a valid regular expression`, md.queueName !== undefined ? 'queueName' : 'subscriptionName');
    }
  }
  if (md.connection === undefined) {
    if (md.namespace !== undefined) {
      throw triggerError(trigger, 'namespace (pod identity) is not supported by qscale: give connection through a TriggerAuthentication or connectionFromEnv', 'namespace');
    }
    throw triggerError(trigger, 'no connection setting given: set connectionFromEnv, or authenticationRef to a TriggerAuthentication with parameter connection', 'connection');
  }
  if (md.useRegex) throw triggerError(trigger, 'useRegex is not supported by qscale: name one queue or subscription', 'useRegex');
  const parts = parseConnectionString(md.connection);
  if (typeof parts === 'string') throw triggerError(trigger, `connection is not a Service Bus connection string: ${parts}`, 'connection');
  const entity = md.queueName !== undefined
    ? { kind: 'queue' as const, queueName: q.queueName }
    : { kind: 'subscription' as const, topicName: md.topicName ?? '', subscriptionName: md.subscriptionName ?? '' };
  return {
    entity,
    metricEntity: md.queueName ?? md.topicName ?? '',
    target: q.target,
    activationTarget: q.activationTarget,
    connectionString: parts.withoutEntityPath,
    host: parts.host,
  };
}

/** KEDA's name: s<index>-azure-servicebus-<queue or topic>, characters a metric name cannot hold replaced. */
export function serviceBusMetricName(index: number, entity: string): string {
  return `s${index}-` + `azure-servicebus-${entity}`.replace(/[/.:%()]/g, '-');
}

export class ServiceBusScaler implements Scaler {
  readonly metricName: string;
  readonly metricType: MetricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly secrets: string[];

  constructor(private readonly trigger: ResolvedTrigger, private readonly s: ServiceBusTriggerSettings, private readonly admin: QueueAdmin) {
    this.metricName = serviceBusMetricName(trigger.index, s.metricEntity);
    this.metricType = trigger.metricType;
    this.target = s.target;
    this.activationTarget = s.activationTarget;
    this.secrets = secretsOf(s.connectionString);
    this.describes = s.entity.kind === 'queue'
      ? `active messages of queue ${s.entity.queueName} (ActiveMessageCount, locked messages included)`
      : `active messages of subscription ${s.entity.subscriptionName} of topic ${s.entity.topicName} (ActiveMessageCount)`;
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    const e = this.s.entity;
    const abort = new AbortController();
    const counts = await boundedRead(
      () => (e.kind === 'queue'
        ? this.admin.queueCounts(e.queueName, abort.signal)
        : this.admin.subscriptionCounts(e.topicName, e.subscriptionName, abort.signal)),
      {
        subject: this.trigger.subject,
        what: e.kind === 'queue' ? `queue '${e.queueName}'` : `subscription '${e.subscriptionName}' of topic '${e.topicName}'`,
        where: this.s.host,
        describe: (err) => describeServiceBusError(err, this.secrets),
        onTimeout: () => abort.abort(),
      },
    );
    return { value: counts.active, active: counts.active > this.activationTarget };
  }

  async close(): Promise<void> {
    // The management client holds no connection between calls.
  }
}

export function createServiceBusScaler(trigger: ResolvedTrigger, admin?: QueueAdmin): ServiceBusScaler {
  const s = parseServiceBusTrigger(trigger);
  return new ServiceBusScaler(trigger, s, admin ?? SdkQueueAdmin.fromConnectionString(s.connectionString));
}

export const serviceBusTrigger: TriggerDefinition = {
  type: SERVICEBUS_TRIGGER_TYPE,
  parseQueueParams: parseServiceBusQueueParams,
  create: (trigger) => createServiceBusScaler(trigger),
};
