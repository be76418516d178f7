/**
 * Every binding type and trigger type qscale serves. Adding a broker = one line in each sorted list below
 * (test/conformance checks that every folder under src/backends/ is listed and has a conformance row).
 *
 * With `embedded: true`, every queue binding and queue trigger is served by the embedded SQLite queue instead,
 * keeping the queue name the broker definition reads from the component or trigger.
 */
import { ConfigError } from '../errors.js';
import type { FieldSpec } from '../components/metadata.js';
import type { ResolvedTrigger, Scaler, TriggerDefinition } from '../autoscaler/scaler.js';
import type { Backend, BackendContext, BackendDefinition, ResolvedComponent } from './types.js';
import { serviceBusBackend, serviceBusTrigger } from './azure/servicebus/index.js';
import {
  EMBEDDED_TRIGGER_TYPE, EMBEDDED_TYPE, EmbeddedBackend, createEmbeddedScaler, embeddedBackend, embeddedMetadata,
  embeddedTrigger, parseEmbeddedComponent,
} from './embedded/index.js';
import { natsBackend, natsJetStreamTrigger } from './nats/index.js';
import { postgresqlBackend, postgresqlTrigger } from './postgresql/index.js';
import { rabbitmqBackend, rabbitmqTrigger } from './rabbitmq/index.js';
import { redisBackend, redisStreamsTrigger } from './redis/index.js';

export const backendDefinitions: readonly BackendDefinition[] = [
  serviceBusBackend,
  embeddedBackend,
  natsBackend,
  postgresqlBackend,
  redisBackend,
  rabbitmqBackend,
];

export const triggerDefinitions: readonly TriggerDefinition[] = [
  serviceBusTrigger,
  natsJetStreamTrigger,
  postgresqlTrigger,
  embeddedTrigger,
  rabbitmqTrigger,
  redisStreamsTrigger,
];

export function findBackend(type: string): BackendDefinition | undefined {
  return backendDefinitions.find((d) => d.types.includes(type));
}

export function findTrigger(type: string): TriggerDefinition | undefined {
  return triggerDefinitions.find((d) => d.type === type);
}

export function supportedBindingTypes(): string[] {
  return backendDefinitions.flatMap((d) => d.types).sort();
}

export function supportedTriggerTypes(): string[] {
  return triggerDefinitions.map((d) => d.type).sort();
}

export interface BindingDescription {
  type: string;
  fields: readonly FieldSpec[];
}

/** The declared metadata of a binding type, for docs and `validate`. */
export function describeBinding(type: string): BindingDescription | undefined {
  const def = findBackend(type);
  if (!def) return undefined;
  return { type, fields: def.metadata.fields };
}

function unsupported(component: ResolvedComponent): ConfigError {
  return new ConfigError(
    `component ${component.name}: unsupported binding type '${component.type}' (supported: ${supportedBindingTypes().join(', ')})`,
    { ...component.where(), field: 'type' },
  );
}

export function createBackend(component: ResolvedComponent, ctx: BackendContext, opts: { embedded: boolean }): Backend {
  const def = findBackend(component.type);
  if (!def) throw unsupported(component);
  if (!opts.embedded || def === embeddedBackend) return def.create(component, ctx);
  const served = embeddedComponent(component, def.queueName(component));
  return new EmbeddedBackend(served, parseEmbeddedComponent(served), ctx);
}

/**
 * The component as the embedded queue sees it: its queue name, plus the metadata whose names the embedded binding
 * shares (maxDeliveryCount, maxConcurrentHandlers, lockRenewalInSec, ...). Name, type and positions are kept, so errors
 * still point at the user's file.
 */
function embeddedComponent(component: ResolvedComponent, queueName: string): ResolvedComponent {
  const fields: readonly FieldSpec[] = embeddedMetadata.fields;
  const known = new Set(fields.flatMap((f) => [f.name, ...(f.aliases ?? [])].map((n) => n.toLowerCase())));
  known.delete('queuename');
  const metadata: Record<string, string> = { queueName };
  for (const [k, v] of Object.entries(component.metadata)) if (known.has(k.toLowerCase())) metadata[k] = v;
  return { ...component, metadata };
}

export interface ScalerOptions {
  embedded: boolean;
  dataDir: string;
  /**
   * Under --embedded, the embedded queue to measure instead of the one the trigger names: the embedded pub/sub's
   * queue of the subscription the trigger reads (a consumer group, durable consumer or `<consumerID>-<topic>` queue).
   */
  embeddedQueue?: string;
}

export function createScaler(trigger: ResolvedTrigger, opts: ScalerOptions): Scaler {
  const def = findTrigger(trigger.type);
  if (!def) {
    throw new ConfigError(
      `${trigger.subject}: unsupported trigger type '${trigger.type}' (supported: ${supportedTriggerTypes().join(', ')})`,
      { ...trigger.where('type'), field: 'type' },
    );
  }
  if (opts.embedded || def.type === EMBEDDED_TRIGGER_TYPE) {
    return createEmbeddedScaler(opts.dataDir, embeddedQueueParams(def, trigger, opts.embedded ? opts.embeddedQueue : undefined), trigger.type, trigger.index, trigger.subject);
  }
  return def.create(trigger);
}

/**
 * The queue fields of a trigger the embedded queue serves: its own queue, or `queueName` when given (a pub/sub
 * subscription's queue); a trigger that measures no single queue is refused.
 */
export function embeddedQueueParams(def: TriggerDefinition, trigger: ResolvedTrigger, queueName?: string): ReturnType<TriggerDefinition['parseQueueParams']> {
  const own = def.parseQueueParams(trigger);
  const params = queueName !== undefined ? { ...own, queueName } : own;
  if (params.queueName === '') {
    throw new ConfigError(
      `${trigger.subject}: --embedded cannot serve this trigger: it measures no single queue; add metadata 'queueName' (a qscale extension) naming the queue to serve it from`,
      trigger.where(),
    );
  }
  return params;
}

export { EMBEDDED_TYPE };
