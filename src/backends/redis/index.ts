/**
 * Redis: the `bindings.qscale.redis` binding (a stream read through a consumer group) and KEDA's `redis-streams`
 * trigger on the same stream and group.
 */
import type { MetadataSpec } from '../../components/metadata.js';
import type { BackendDefinition } from '../types.js';
import { RedisBackend } from './backend.js';
import { REDIS_TYPE, componentContext, parseRedisComponent, redisMetadata } from './metadata.js';

export { RedisBackend } from './backend.js';
export { redisMetadata, parseRedisComponent, REDIS_TYPE, type RedisSettings } from './metadata.js';
export { redisStreamsTrigger, redisStreamsTriggerMetadata, parseRedisStreamsTrigger, redisStreamsMetricName } from './trigger.js';

export const redisBackend: BackendDefinition = {
  types: [REDIS_TYPE],
  // The registry holds specs of every shape; precise field types stay with this module's own parse calls.
  metadata: redisMetadata as unknown as MetadataSpec,
  queueName(component) {
    return redisMetadata.parse(component.metadata, componentContext(component)).queueName;
  },
  create(component, ctx) {
    return new RedisBackend(component, parseRedisComponent(component), ctx);
  },
};
