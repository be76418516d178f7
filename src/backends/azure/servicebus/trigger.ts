/**
 * KEDA's `azure-servicebus` trigger: the ActiveMessageCount of a queue (or of a topic's subscription) read from the
 * management API, authenticated as KEDA does: with the connection string (TriggerAuthentication parameter
 * `connection`, or connectionFromEnv), or — when the TriggerAuthentication's podIdentity provider is azure-workload —
 * with Azure AD on `namespace` plus the cloud's Service Bus suffix (identity.ts: Azure CLI, then workload identity).
 * useRegex is refused with a reason.
 */
import { boundedRead } from '../../trigger-support.js';
import { defineTriggerMetadata, triggerError } from '../../trigger-metadata.js';
import type { MetricAndActivity, MetricType, ResolvedTrigger, Scaler, TriggerDefinition } from '../../../autoscaler/scaler.js';
import { SdkQueueAdmin, type QueueAdmin } from './admin.js';
import { NoAzureCredentialError, chained, kedaWorkloadChain, type PodIdentity } from '../identity.js';
import { BrokerError } from '../../../errors.js';
import { parseConnectionString, secretsOf } from './connection.js';
import { describeServiceBusError } from './errors.js';
import { SERVICEBUS_TRIGGER_TYPE, parseServiceBusQueueParams, serviceBusQueueFields } from './trigger-params.js';

export const serviceBusTriggerMetadata = defineTriggerMetadata([
  ...serviceBusQueueFields,
  { name: 'connection', type: 'string', sensitive: true, from: ['authParams', 'resolvedEnv'],
    description: 'Connection string with Manage rights (TriggerAuthentication parameter connection, or connectionFromEnv).' },
  { name: 'namespace', type: 'string', description: 'podIdentity azure-workload: the namespace name (without its domain).' },
  { name: 'cloud', type: 'string', description: 'podIdentity azure-workload: the Azure cloud of namespace (AzurePublicCloud by default, or Private).' },
  { name: 'endpointSuffix', type: 'string', description: 'podIdentity azure-workload with cloud Private: the Service Bus endpoint suffix.' },
  { name: 'useRegex', type: 'bool', description: 'Not supported locally: name one entity.' },
  { name: 'operation', type: 'string', default: 'sum', enum: ['sum', 'max', 'avg'], description: 'With useRegex only.' },
] as const);

export interface ServiceBusTriggerSettings {
  entity: { kind: 'queue'; queueName: string } | { kind: 'subscription'; topicName: string; subscriptionName: string };
  /** The entity as written, for the metric name (KEDA does not lower-case it). */
  metricEntity: string;
  target: number;
  activationTarget: number;
  /** '' with podIdentity. */
  connectionString: string;
  /** The namespace's host name. */
  host: string;
  /** podIdentity azure-workload: Azure AD instead of the connection string. */
  podIdentity: PodIdentity | undefined;
}

/** KEDA's ServiceBusEndpointSuffix of each cloud it names (pkg/scalers/azure/cloud_config.go). */
const SERVICEBUS_SUFFIX: Readonly<Record<string, string>> = {
  AZUREPUBLICCLOUD: 'servicebus.windows.net',
  AZUREUSGOVERNMENTCLOUD: 'servicebus.usgovcloudapi.net',
  AZURECHINACLOUD: 'servicebus.chinacloudapi.cn',
  AZUREGERMANCLOUD: 'servicebus.cloudapi.de',
};

/** KEDA's ParseEnvironmentProperty for the Service Bus endpoint suffix; undefined + why when it fails. */
function endpointSuffix(cloud: string | undefined, suffix: string | undefined): string | { error: string; field: string } {
  if (cloud === undefined || cloud === '') return SERVICEBUS_SUFFIX.AZUREPUBLICCLOUD!;
  if (cloud.toLowerCase() === 'private') {
    return suffix ? suffix : { error: 'endpointSuffix must be provided for Private cloud type', field: 'endpointSuffix' };
  }
  return SERVICEBUS_SUFFIX[cloud.toUpperCase()] ?? { error: `invalid cloud environment ${cloud}`, field: 'cloud' };
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
  const pod = trigger.podIdentity;
  let host: string;
  let connectionString = '';
  let podIdentity: PodIdentity | undefined;
  if (pod === undefined || pod.provider === 'none') {
    if (md.connection === undefined) {
      const how = md.namespace !== undefined ? ' (namespace is read with a TriggerAuthentication whose podIdentity provider is azure-workload)' : '';
      throw triggerError(trigger, `no connection setting given: set connectionFromEnv, or authenticationRef to a TriggerAuthentication with parameter connection${how}`, 'connection');
    }
  } else if (pod.provider === 'azure-workload') {
    if (md.namespace === undefined) throw triggerError(trigger, 'namespace is required when using pod identity (podIdentity azure-workload): give the namespace name', 'namespace');
  } else {
    throw triggerError(trigger, `azure service bus doesn't support pod identity ${pod.provider}: use azure-workload, or a connection`, 'namespace');
  }
  if (md.useRegex) throw triggerError(trigger, 'useRegex is not supported by qscale: name one queue or subscription', 'useRegex');
  if (pod?.provider === 'azure-workload') {
    // KEDA reads namespace, cloud and endpointSuffix only here; a connection given too is not used.
    const suffix = endpointSuffix(md.cloud, md.endpointSuffix);
    if (typeof suffix !== 'string') throw triggerError(trigger, suffix.error, suffix.field);
    host = `${md.namespace}.${suffix}`;
    podIdentity = pod;
  } else {
    const parts = parseConnectionString(md.connection ?? '');
    if (typeof parts === 'string') throw triggerError(trigger, `connection is not a Service Bus connection string: ${parts}`, 'connection');
    connectionString = parts.withoutEntityPath;
    host = parts.host;
  }
  const entity = md.queueName !== undefined
    ? { kind: 'queue' as const, queueName: q.queueName }
    : { kind: 'subscription' as const, topicName: md.topicName ?? '', subscriptionName: md.subscriptionName ?? '' };
  return {
    entity,
    metricEntity: md.queueName ?? md.topicName ?? '',
    target: q.target,
    activationTarget: q.activationTarget,
    connectionString,
    host,
    podIdentity,
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
  try {
    return new ServiceBusScaler(trigger, s, admin ?? defaultAdmin(s));
  } catch (err) {
    if (err instanceof NoAzureCredentialError) throw new BrokerError(`${trigger.subject}: ${err.message}`);
    throw err;
  }
}

/** The management client KEDA would build: from the connection string, or the namespace and its pod identity. */
export function defaultAdmin(s: ServiceBusTriggerSettings): SdkQueueAdmin {
  return s.podIdentity
    ? SdkQueueAdmin.fromCredential(s.host, chained(kedaWorkloadChain(s.podIdentity)))
    : SdkQueueAdmin.fromConnectionString(s.connectionString);
}

export const serviceBusTrigger: TriggerDefinition = {
  type: SERVICEBUS_TRIGGER_TYPE,
  parseQueueParams: parseServiceBusQueueParams,
  create: (trigger) => createServiceBusScaler(trigger),
};
