/**
 * A trigger as the autoscaler sees it (KEDA's scaler shape): one metric, its target, whether it is active.
 */
export type MetricType = 'AverageValue' | 'Value';

export interface MetricAndActivity {
  /** The metric's value now, e.g. messages in the queue. */
  value: number;
  /** value > activation threshold (strictly). */
  active: boolean;
}

export interface Scaler {
  /** e.g. "s0-azure-servicebus-msgqueue", as KEDA names external metrics. */
  readonly metricName: string;
  readonly metricType: MetricType;
  /** The target per replica (AverageValue) or in total (Value). */
  readonly target: number;
  readonly activationTarget: number;
  /** What the metric counts, in words, for status and docs ("ready + in flight messages of queue msgqueue"). */
  readonly describes: string;
  metricAndActivity(): Promise<MetricAndActivity>;
  /**
   * Optional: call `onArrival` as soon as work lands on an empty queue, so activation from zero does not wait a
   * whole pollingInterval. Returns an unsubscribe function.
   */
  watchArrivals?(onArrival: () => void): () => void;
  close(): Promise<void>;
}

/** A trigger's metadata after authenticationRef, TriggerAuthentication and <param>FromEnv were resolved. */
export interface ResolvedTrigger {
  /** index in spec.triggers */
  index: number;
  type: string;
  name?: string;
  metricType: MetricType;
  metadata: Record<string, string>;
  /** Metadata keys whose values came from a Secret, ConfigMap or the environment: never print their values. */
  sensitive?: readonly string[];
  /**
   * The three places KEDA reads a parameter from, kept apart (`metadata` merges them): the trigger's metadata as
   * written (`<param>FromEnv` keys included), the TriggerAuthentication's parameters, and the values `<param>FromEnv`
   * resolved to, keyed by param. Absent when the trigger was built by hand: then every parameter is in `metadata`.
   */
  sources?: {
    triggerMetadata: Readonly<Record<string, string>>;
    authParams: Readonly<Record<string, string>>;
    resolvedEnv: Readonly<Record<string, string>>;
  };
  /** The podIdentity of the TriggerAuthentication it references (provider other than none), for the triggers that read it. */
  podIdentity?: { provider: string; identityId?: string; identityTenantId?: string };
  /** "trigger 0 (azure-servicebus) of ScaledObject bindingconsumer-scaler" */
  subject: string;
  where(field?: string): { file?: string; line?: number };
}

/** The queue-related fields every queue trigger parses, broker-native or served by the embedded queue. */
export interface QueueTriggerParams {
  /** '' when the trigger measures no single queue (a postgresql query of another shape): --embedded cannot serve it. */
  queueName: string;
  target: number;
  activationTarget: number;
}

/**
 * What a queue trigger reads, in the names daprd gives a pub/sub subscription on that broker: the supervisor matches
 * them with an app's subscriptions (to prepare them, and to measure the embedded pub/sub's queue under --embedded).
 */
export interface SubscriptionRef {
  /** The pub/sub component type that names subscriptions this way, e.g. "pubsub.redis". */
  pubsubType: string;
  /** redis-streams: the stream, which is the topic; nats-jetstream: the stream that holds the topic. */
  stream?: string;
  /** redis-streams: the consumer group, which is the component's consumerID (default: the app id). */
  consumerGroup?: string;
  /** nats-jetstream: the durable consumer, which is the component's durableName. */
  durable?: string;
  /** rabbitmq: the queue, `<consumerID>-<topic>` (or the subscription's queueName). */
  queue?: string;
}

export interface TriggerDefinition {
  /** KEDA trigger type, e.g. "azure-servicebus". */
  type: string;
  /** Parses the trigger's metadata (KEDA's names and defaults), throwing ConfigError with file:line. */
  parseQueueParams(trigger: ResolvedTrigger): QueueTriggerParams;
  /** The broker names it reads, as a pub/sub component of that broker names an app's subscription (triggers that can read one). */
  subscriptionRef?(trigger: ResolvedTrigger): SubscriptionRef;
  /** The broker-native scaler. */
  create(trigger: ResolvedTrigger): Scaler;
}
