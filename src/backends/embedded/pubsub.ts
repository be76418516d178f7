/**
 * The embedded queue as a pub/sub component, `pubsub.qscale.embedded` (local only: real Dapr has no such type).
 * Under --embedded it also serves every other pub/sub type, keeping its topics and consumer groups.
 *
 * A topic fans out to one queue per subscription: a subscription is a consumer group (subscription or component
 * metadata consumerID, else the app id), so replicas of one app share its queue and each app has its own. prepare()
 * binds the group's queue to the topic in the queue file, durably: from then on every publish lands in it too,
 * whether or not a replica runs. Delivery is the embedded binding's (leases, renewal, redelivery with the shared
 * back-off, maxDeliveryCount then dead letters), one EmbeddedBackend per subscribed queue.
 */
import { BrokerError } from '../../errors.js';
import { defineMetadata, type MetadataSpec } from '../../components/metadata.js';
import { withMetadataTemplates } from '../../components/templates.js';
import type { PubSub, PubSubContext, PubSubDefinition, SubscribeRequest } from '../../pubsub/types.js';
import type { MessageHandler, MessageMetadata, ReceiveOptions, ResolvedComponent } from '../types.js';
import { EmbeddedBackend } from './backend.js';
import { embeddedMetadata, parseEmbeddedComponent } from './metadata.js';
import { QueueStore } from './store.js';

export const EMBEDDED_PUBSUB_TYPE = 'pubsub.qscale.embedded';

/**
 * The queue that keeps a subscription's events: component, topic and consumer group, each readable in it. This is
 * the one place that names it (a KEDA trigger on a subscription maps to it).
 */
export function pubsubQueueName(component: string, topic: string, consumerGroup: string): string {
  return `pubsub/${component}/${encodeURIComponent(topic)}/${encodeURIComponent(consumerGroup)}`;
}

/** The key a publish fans out on: the component and the topic. */
function topicKey(component: string, topic: string): string {
  return `pubsub/${component}/${encodeURIComponent(topic)}`;
}

const ownFields = [
  { name: 'consumerID', type: 'string',
    description: 'The consumer group: replicas of one app share its queue. Default: the app id. Subscription metadata consumerID overrides it.' },
  { name: 'concurrency', type: 'integer', default: 10, min: 1, aliases: ['maxConcurrentHandlers'],
    description: 'Events handed to the app at once per subscription (the lower of this and --app-max-concurrency). Only that many are leased.' },
] as const;
const pubsubOwn = defineMetadata(ownFields);

/** The binding's delivery settings apply as they are (visibility, renewal, maxDeliveryCount, back-off). */
const sharedFields = embeddedMetadata.fields.filter((f) => f.name !== 'queueName' && f.name !== 'maxConcurrentHandlers');

// The registry holds specs of every shape; the precise field types stay with this module's own parse calls.
export const embeddedPubSubMetadata = defineMetadata([...ownFields, ...sharedFields]) as unknown as MetadataSpec;

/** The names a component of another type keeps when --embedded serves it. */
const KNOWN = new Set(
  [...ownFields, ...sharedFields].flatMap((f) => [f.name, ...('aliases' in f && f.aliases ? f.aliases : [])]).map((n) => n.toLowerCase()),
);

function subject(c: ResolvedComponent): string {
  return `component ${c.name} (${c.type})`;
}

export class EmbeddedPubSub implements PubSub {
  readonly name: string;
  readonly type: string;
  private store: QueueStore | undefined;
  private closing: Promise<void> | undefined;
  private readonly backends = new Set<EmbeddedBackend>();
  private readonly consumerID: string | undefined;
  private readonly concurrency: number;

  private readonly component: ResolvedComponent;

  /**
   * Created by the registry for its own type, and straight by the sidecar and qscale up for any pub/sub type under
   * --embedded: daprd's metadata templates ({appID}, ...) are filled here for the latter (a second fill changes nothing).
   */
  constructor(
    component: ResolvedComponent,
    private readonly ctx: PubSubContext,
  ) {
    this.component = withMetadataTemplates(component, ctx.appId);
    this.name = component.name;
    this.type = component.type;
    const metadata = this.ownMetadata();
    const own = pubsubOwn.parse(metadata, { subject: subject(component), where: component.where });
    this.consumerID = own.consumerID;
    this.concurrency = own.concurrency;
    // Checked now, so a bad value stops the sidecar at start rather than at the first subscription.
    this.settingsFor('check');
  }

  /** The component's metadata this type reads: all of it for the embedded type, the shared names for another. */
  private ownMetadata(): Record<string, string> {
    if (this.type === EMBEDDED_PUBSUB_TYPE) return this.component.metadata;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.component.metadata)) if (KNOWN.has(k.toLowerCase())) out[k] = v;
    return out;
  }

  private settingsFor(queueName: string): ReturnType<typeof parseEmbeddedComponent> {
    const metadata: Record<string, string> = { ...this.ownMetadata(), queueName, maxConcurrentHandlers: String(this.concurrency) };
    for (const k of Object.keys(metadata)) if (k !== 'maxConcurrentHandlers' && k.toLowerCase() === 'maxconcurrenthandlers') delete metadata[k];
    return parseEmbeddedComponent({ ...this.component, metadata });
  }

  /** The consumer group of a subscription: its own consumerID, the component's, else the app id. */
  consumerGroup(subscription: SubscribeRequest): string {
    const own = Object.entries(subscription.metadata).find(([k]) => k.toLowerCase() === 'consumerid')?.[1];
    return own || this.consumerID || this.ctx.appId;
  }

  /** The queue a subscription's events wait in. */
  queueOf(subscription: SubscribeRequest): string {
    return pubsubQueueName(this.name, subscription.topic, this.consumerGroup(subscription));
  }

  async init(): Promise<void> {
    this.db();
  }

  async publish(topic: string, data: Buffer, metadata: MessageMetadata): Promise<void> {
    await this.db().publish(topicKey(this.name, topic), data, metadata);
  }

  async prepare(subscription: SubscribeRequest): Promise<void> {
    this.db().bindTopic(topicKey(this.name, subscription.topic), this.queueOf(subscription));
  }

  async subscribe(subscription: SubscribeRequest, handler: MessageHandler, options: ReceiveOptions): Promise<void> {
    await this.prepare(subscription);
    const queueName = this.queueOf(subscription);
    const served = { ...this.component, metadata: { ...this.component.metadata, queueName } };
    const backend = new EmbeddedBackend(served, this.settingsFor(queueName), this.ctx);
    this.backends.add(backend);
    try {
      await backend.init();
      // The embedded queue keeps the metadata of a publish for itself: a subscriber gets none, as from Redis.
      await backend.receive((m) => handler({ id: m.id, data: m.data, metadata: {}, deliveryCount: m.deliveryCount, enqueuedAt: m.enqueuedAt }), options);
    } finally {
      this.backends.delete(backend);
      await backend.close();
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.backends].map((b) => b.close()));
      this.store?.unref();
    })();
    return this.closing;
  }

  private db(): QueueStore {
    if (this.closing) throw new BrokerError(`${subject(this.component)}: the embedded pub/sub is closed`);
    this.store ??= QueueStore.acquire(this.ctx.dataDir);
    return this.store;
  }
}

export const embeddedPubSub: PubSubDefinition = {
  types: [EMBEDDED_PUBSUB_TYPE],
  metadata: embeddedPubSubMetadata,
  localOnly: true,
  create: (component, ctx) => new EmbeddedPubSub(component, ctx),
};
