/**
 * Every pub/sub component type qscale serves, one line each (sorted by broker). A type real Dapr does not have is
 * marked localOnly. With `embedded: true`, every pub/sub type is served by the embedded queue instead, keeping the
 * topic and consumer names the real component would use.
 */
import { createRequire } from 'node:module';
import { ConfigError } from '../errors.js';
import { withMetadataTemplates } from '../components/templates.js';
import type { ResolvedComponent } from '../backends/types.js';
import type { PubSub, PubSubContext, PubSubDefinition } from './types.js';
import { esModuleLoader } from '../backends/lazy-modules.js';

// A broker's pub/sub module loads with the first use of one of its types: an embedded sidecar loads none of the
// others, a sidecar on another broker not the embedded queue (nor better-sqlite3).
const load = await esModuleLoader(createRequire(import.meta.url), [
  '../backends/azure/servicebus/pubsub.js', '../backends/embedded/pubsub.js', '../backends/nats/pubsub.js', '../backends/rabbitmq/pubsub.js', '../backends/redis/pubsub.js',
] as const, (m) => import(m));

/** The embedded queue's pub/sub type (its module, checked when it loads, lists the same). */
export const EMBEDDED_PUBSUB_TYPE = 'pubsub.qscale.embedded';

interface Entry {
  /** Its types, as its definition lists them (checked when it loads). */
  types: readonly string[];
  definition(): PubSubDefinition;
}

function lazy(types: readonly string[], module: Parameters<typeof load>[0], name: string): Entry {
  let def: PubSubDefinition | undefined;
  return {
    types,
    definition() {
      if (def === undefined) {
        def = (load(module) as Record<string, PubSubDefinition>)[name]!;
        if (def.types.join() !== types.join()) throw new Error(`internal: ${name} serves ${def.types.join(', ')}, but the registry lists ${types.join(', ')}`);
      }
      return def;
    },
  };
}

const ENTRIES: readonly Entry[] = [
  lazy(['pubsub.azure.servicebus.queues', 'pubsub.azure.servicebusqueues'], '../backends/azure/servicebus/pubsub.js', 'serviceBusQueuesPubSub'),
  lazy(['pubsub.azure.servicebus.topics', 'pubsub.azure.servicebus'], '../backends/azure/servicebus/pubsub.js', 'serviceBusTopicsPubSub'),
  lazy([EMBEDDED_PUBSUB_TYPE], '../backends/embedded/pubsub.js', 'embeddedPubSub'),
  lazy(['pubsub.jetstream'], '../backends/nats/pubsub.js', 'jetstreamPubSub'),
  lazy(['pubsub.rabbitmq'], '../backends/rabbitmq/pubsub.js', 'rabbitmqPubSub'),
  lazy(['pubsub.redis'], '../backends/redis/pubsub.js', 'redisPubSub'),
];

/** Every pub/sub definition (loading every broker's pub/sub module). */
export function pubsubDefinitions(): PubSubDefinition[] {
  return ENTRIES.map((e) => e.definition());
}

export function findPubSub(type: string): PubSubDefinition | undefined {
  return ENTRIES.find((e) => e.types.includes(type))?.definition();
}

export function supportedPubSubTypes(): string[] {
  return ENTRIES.flatMap((e) => e.types).sort();
}

export function isPubSubType(type: string): boolean {
  return type.startsWith('pubsub.');
}

/** A pub/sub component of any type served by the embedded queue (--embedded), keeping its topics and consumer names. */
export function createEmbeddedPubSub(component: ResolvedComponent, ctx: PubSubContext): PubSub {
  const { EmbeddedPubSub } = load('../backends/embedded/pubsub.js') as typeof import('../backends/embedded/pubsub.js');
  return new EmbeddedPubSub(component, ctx);
}

export function createPubSub(component: ResolvedComponent, ctx: PubSubContext): PubSub {
  const def = findPubSub(component.type);
  if (!def) {
    throw new ConfigError(
      `component ${component.name}: unsupported pub/sub type '${component.type}' (supported: ${supportedPubSubTypes().join(', ') || 'none'})`,
      { ...component.where(), field: 'type' },
    );
  }
  // daprd fills {appID}, {uuid}, {namespace} and {podName} in every component's metadata before the component reads
  // it: so do all pub/sub types here (a consumerID of "{appID}" names the app's queue or group after the app).
  return def.create(withMetadataTemplates(component, ctx.appId), ctx);
}
