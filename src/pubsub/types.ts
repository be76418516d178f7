/**
 * The broker side of Dapr's pub/sub building block: what one component type (pubsub.redis, pubsub.jetstream, …) does.
 * Kept small on purpose, as the binding contract in src/backends/types.ts: publish, subscribe, prepare, close.
 *
 * Everything Dapr-specific above the broker — CloudEvents, routes and rules, the app's SUCCESS / RETRY / DROP answer,
 * dead-letter topics, bulk publish — lives in the sidecar (src/sidecar/pubsub/), identical for every broker.
 */
import type { MetadataSpec } from '../components/metadata.js';
import type { BackendContext, MessageHandler, MessageMetadata, ReceiveOptions, ResolvedComponent } from '../backends/types.js';

/**
 * One subscription of one app to one topic. Replicas of an app share a subscription (each event goes to one of them);
 * different apps have different subscriptions (each gets every event): the names are derived exactly as the real Dapr
 * component derives them (consumer group = consumerID, RabbitMQ queue `{consumerID}-{topic}`, Service Bus topic
 * subscription = consumerID, JetStream durable / queue group from metadata), where consumerID defaults to the app id.
 */
export interface SubscribeRequest {
  topic: string;
  /** Subscription metadata (Subscription spec.metadata / programmatic metadata), e.g. a per-subscription override. */
  metadata: MessageMetadata;
}

export interface PubSub {
  /** Component name, e.g. "orders-pubsub". */
  readonly name: string;
  /** Component type, e.g. "pubsub.redis". */
  readonly type: string;
  /** Connect and check what can be checked. Called once, bounded by the component's initTimeout. */
  init(): Promise<void>;
  /**
   * Stores one event on the topic: `data` is exactly the bytes to deliver (a CloudEvent envelope or a raw payload, as
   * the sidecar built it); `metadata` the publish request's metadata (ttlInSeconds, content type…), which the broker
   * keeps where the real component keeps it. Resolves once the broker has it.
   */
  publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<void>;
  /**
   * Creates what keeps events for this app's subscription from now on (consumer group, durable consumer, queue bound
   * to the exchange, topic subscription) without consuming: what lets a subscriber scaled to zero miss nothing.
   * Idempotent.
   */
  prepare(subscription: SubscribeRequest): Promise<void>;
  /**
   * Delivers the subscription's events to `handler` until options.signal aborts (then drains, as Backend.receive):
   * `true` = processed, ack; false / a failure / a throw = not processed, the broker redelivers it as the real component
   * does (or dead-letters it where the component does so itself). Rejects on a fatal broker error.
   */
  subscribe(subscription: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface PubSubContext extends BackendContext {
  /** The app id of the sidecar: the default consumerID. */
  appId: string;
}

/** One line in the pub/sub registry. */
export interface PubSubDefinition {
  /** Component types served, e.g. ["pubsub.redis"]. */
  types: readonly string[];
  metadata: MetadataSpec;
  /** True for a type real Dapr does not have (the embedded queue's): `validate --cluster` refuses it, and docs say so. */
  localOnly: boolean;
  create(component: ResolvedComponent, ctx: PubSubContext): PubSub;
}
