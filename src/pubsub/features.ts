/**
 * What each real Dapr pub/sub component declares as its features (components-contrib, each component's Features()):
 * daprd lists them as the component's capabilities in GET /v1.0/metadata, and adds a CloudEvent `expiration` for a
 * ttl only when the component has no MESSAGE_TTL of its own.
 */

const FEATURES: Readonly<Record<string, readonly string[]>> = {
  'pubsub.azure.servicebus.queues': ['MESSAGE_TTL', 'BULK_PUBSUB'],
  'pubsub.azure.servicebus.topics': ['MESSAGE_TTL', 'BULK_PUBSUB'],
  'pubsub.jetstream': [],
  'pubsub.rabbitmq': ['MESSAGE_TTL'],
  'pubsub.redis': [],
};

/** The features daprd lists for a component type; none for a type real Dapr does not have. */
export function pubsubFeatures(type: string): readonly string[] {
  return FEATURES[type] ?? [];
}

/**
 * Whether the component that actually serves the type expires messages itself. The embedded queue does not: under
 * --embedded the sidecar writes `expiration` into the envelope and drops the event on delivery, so a ttl still holds.
 */
export function expiresMessages(type: string, servedEmbedded: boolean): boolean {
  return !servedEmbedded && pubsubFeatures(type).includes('MESSAGE_TTL');
}
