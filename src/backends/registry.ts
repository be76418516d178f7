/**
 * Every binding type and trigger type qscale serves. Adding a broker = one row in BROKERS below
 * (test/conformance checks that every folder under src/backends/ is listed and has a conformance row).
 *
 * With `embedded: true`, every queue binding and queue trigger is served by the embedded SQLite queue instead,
 * keeping the queue name the broker definition reads from the component or trigger.
 *
 * A broker's modules load with the first use of one of its binding types (or of the trigger list): a sidecar serving
 * the embedded queue never loads, compiles or holds the code of the other brokers, and one on another broker never
 * loads the embedded queue's (nor better-sqlite3).
 */
import { createRequire } from 'node:module';
import { ConfigError } from '../errors.js';
import type { FieldSpec } from '../components/metadata.js';
import type { ResolvedTrigger, Scaler, TriggerDefinition } from '../autoscaler/scaler.js';
import type { Backend, BackendContext, BackendDefinition, ResolvedComponent } from './types.js';
import { EMBEDDED_TYPE, embeddedMetadata, parseEmbeddedComponent } from './embedded/metadata.js';
import { EMBEDDED_TRIGGER_TYPE } from './embedded/trigger.js';
import { esModuleLoader } from './lazy-modules.js';

interface Broker {
  /** Its binding types, as its definition lists them (checked when it loads). */
  types: readonly string[];
  definitions(): { backend: BackendDefinition; trigger: TriggerDefinition };
}

const brokerModule = await esModuleLoader(createRequire(import.meta.url), [
  './azure/servicebus/index.js', './embedded/index.js', './nats/index.js', './postgresql/index.js', './rabbitmq/index.js', './redis/index.js',
] as const, (m) => import(m));

function broker(types: readonly string[], module: Parameters<typeof brokerModule>[0], backend: string, trigger: string): Broker {
  let defs: ReturnType<Broker['definitions']> | undefined;
  return {
    types,
    definitions() {
      if (defs === undefined) {
        const m = brokerModule(module) as Record<string, unknown>;
        defs = { backend: m[backend] as BackendDefinition, trigger: m[trigger] as TriggerDefinition };
        if (defs.backend.types.join() !== types.join()) {
          throw new Error(`internal: ${module} serves ${defs.backend.types.join(', ')}, but the registry lists ${types.join(', ')}`);
        }
      }
      return defs;
    },
  };
}

const embedded = broker([EMBEDDED_TYPE], './embedded/index.js', 'embeddedBackend', 'embeddedTrigger');
/** The embedded queue's module (loaded on first use). */
const embeddedModule = (): typeof import('./embedded/index.js') => brokerModule('./embedded/index.js') as typeof import('./embedded/index.js');
const serviceBus = broker(['bindings.azure.servicebusqueues'], './azure/servicebus/index.js', 'serviceBusBackend', 'serviceBusTrigger');
const nats = broker(['bindings.qscale.nats-jetstream'], './nats/index.js', 'natsBackend', 'natsJetStreamTrigger');
const postgresql = broker(['bindings.qscale.postgresql'], './postgresql/index.js', 'postgresqlBackend', 'postgresqlTrigger');
const rabbitmq = broker(['bindings.rabbitmq'], './rabbitmq/index.js', 'rabbitmqBackend', 'rabbitmqTrigger');
const redis = broker(['bindings.qscale.redis'], './redis/index.js', 'redisBackend', 'redisStreamsTrigger');

/** The brokers in the order backendDefinitions lists them, and in the order triggerDefinitions does. */
const BACKEND_ORDER: readonly Broker[] = [serviceBus, embedded, nats, postgresql, redis, rabbitmq];
const TRIGGER_ORDER: readonly Broker[] = [serviceBus, nats, postgresql, embedded, rabbitmq, redis];

/** A read-only array whose items are made at its first use (an index, length, find, includes, iteration...). */
function lazyList<T>(make: () => T[]): readonly T[] {
  let list: T[] | undefined;
  const real = (): T[] => (list ??= make());
  return new Proxy([] as T[], {
    get: (_t, key) => {
      const v = Reflect.get(real(), key) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(real()) : v;
    },
    has: (_t, key) => Reflect.has(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(real(), key);
      return d && key !== 'length' ? { ...d, configurable: true } : d;
    },
    set: () => false,
    deleteProperty: () => false,
  });
}

/** Every broker's binding definition (loading every broker's modules on first use). */
export const backendDefinitions: readonly BackendDefinition[] = lazyList(() => BACKEND_ORDER.map((b) => b.definitions().backend));

/** Every broker's trigger definition (loading every broker's modules on first use). */
export const triggerDefinitions: readonly TriggerDefinition[] = lazyList(() => TRIGGER_ORDER.map((b) => b.definitions().trigger));

export function findBackend(type: string): BackendDefinition | undefined {
  return BACKEND_ORDER.find((b) => b.types.includes(type))?.definitions().backend;
}

export function findTrigger(type: string): TriggerDefinition | undefined {
  return triggerDefinitions.find((d) => d.type === type);
}

export function supportedBindingTypes(): string[] {
  return BACKEND_ORDER.flatMap((b) => b.types).sort();
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
  if (!opts.embedded || component.type === EMBEDDED_TYPE) return def.create(component, ctx);
  const served = embeddedComponent(component, def.queueName(component));
  return new (embeddedModule().EmbeddedBackend)(served, parseEmbeddedComponent(served), ctx);
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
    return embeddedModule().createEmbeddedScaler(opts.dataDir, embeddedQueueParams(def, trigger, opts.embedded ? opts.embeddedQueue : undefined), trigger.type, trigger.index, trigger.subject);
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
