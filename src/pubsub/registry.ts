/**
 * Every pub/sub component type qscale serves, one line each (sorted by broker). A type real Dapr does not have is
 * marked localOnly. With `embedded: true`, every pub/sub type is served by the embedded queue instead, keeping the
 * topic and consumer names the real component would use.
 */
import { ConfigError } from '../errors.js';
import { withMetadataTemplates } from '../components/templates.js';
import type { ResolvedComponent } from '../backends/types.js';
import type { PubSub, PubSubContext, PubSubDefinition } from './types.js';
import { serviceBusQueuesPubSub, serviceBusTopicsPubSub } from '../backends/azure/servicebus/pubsub.js';
import { embeddedPubSub } from '../backends/embedded/pubsub.js';
import { jetstreamPubSub } from '../backends/nats/pubsub.js';
import { rabbitmqPubSub } from '../backends/rabbitmq/pubsub.js';
import { redisPubSub } from '../backends/redis/pubsub.js';

export const pubsubDefinitions: readonly PubSubDefinition[] = [
  serviceBusQueuesPubSub,
  serviceBusTopicsPubSub,
  embeddedPubSub,
  jetstreamPubSub,
  rabbitmqPubSub,
  redisPubSub,
];

export function findPubSub(type: string): PubSubDefinition | undefined {
  return pubsubDefinitions.find((d) => d.types.includes(type));
}

export function supportedPubSubTypes(): string[] {
  return pubsubDefinitions.flatMap((d) => d.types).sort();
}

export function isPubSubType(type: string): boolean {
  return type.startsWith('pubsub.');
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
