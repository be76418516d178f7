/**
 * Pub/sub subscriptions of the scaled apps, as the supervisor sees them before any replica runs:
 *
 * - which subscription a ScaledObject's trigger reads, matched on the names daprd derives for it on that broker
 *   (redis-streams: stream = topic and consumer group = consumerID; nats-jetstream: durable consumer = durableName;
 *   rabbitmq: queue `<consumerID>-<topic>`), and so, under --embedded, which embedded pub/sub queue it measures;
 * - preparing each declarative subscription of a scaled app (consumer group, durable consumer, queue bound to the
 *   topic's exchange) before the first trigger read, so events published while the app is at zero replicas are kept
 *   and the trigger sees them: what the Deployment's first pod does on a cluster;
 * - the one line for a subscription only the app's running replicas make (GET /dapr/subscribe), where the broker
 *   then keeps nothing, or the trigger has nothing to read, until a replica runs.
 */
import type { ResolvedTrigger, SubscriptionRef } from '../autoscaler/scaler.js';
import type { ResolvedComponent } from '../backends/types.js';
import { EMBEDDED_PUBSUB_TYPE, EmbeddedPubSub } from '../backends/embedded/pubsub.js';
import { JetStreamPubSub } from '../backends/nats/pubsub.js';
import { JETSTREAM_STREAM_ANNOTATION, ensureJetStreamStream } from '../backends/nats/stream-setup.js';
import { rabbitmqSubscriptionQueue } from '../backends/rabbitmq/pubsub.js';
import { parseRabbitmqPubSub } from '../backends/rabbitmq/pubsub-metadata.js';
import { RedisPubSub } from '../backends/redis/pubsub.js';
import type { DeclaredSubscription } from '../components/subscriptions.js';
import { withMetadataTemplates } from '../components/templates.js';
import { createPubSub, findPubSub } from '../pubsub/registry.js';
import { topicAllowed, topicScopes } from '../pubsub/scopes.js';
import type { PubSub, PubSubContext } from '../pubsub/types.js';
import { errorMessage } from '../errors.js';
import { sleep } from '../util/abort.js';
import { createLogger, type Logger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';

/** One subscription of one app to one topic of one pub/sub component. */
export interface AppSubscription {
  appId: string;
  component: ResolvedComponent;
  topic: string;
  metadata: Record<string, string>;
  /** The Subscription resource; undefined when only the app's own GET /dapr/subscribe can make it. */
  declared: DeclaredSubscription | undefined;
}

/** The subscription a trigger reads. */
export interface TriggerSubscription {
  appId: string;
  component: ResolvedComponent;
  /** Undefined when only the app names it (a durable consumer of a subscription no resource declares). */
  topic: string | undefined;
  metadata: Record<string, string>;
  declared: DeclaredSubscription | undefined;
  /** The broker's name for it, as the trigger reads it ("consumer group 'consumer' of stream 'msgqueue'"). */
  names: string;
  /** The embedded pub/sub's queue that keeps its events (known with the topic). */
  embeddedQueue: string | undefined;
}

let quiet: Logger | undefined;
/** The components' own lines at warning and above: what qscale up prints is said by this module. */
function quietLogger(): Logger {
  if (!quiet) {
    quiet = createLogger('supervisor');
    if (quiet.level !== 'debug' && quiet.level !== 'trace') quiet.level = 'warn';
  }
  return quiet;
}

function context(appId: string, dataDir: string): PubSubContext {
  return { logger: quietLogger(), dataDir, appId };
}

/** The names daprd gives the app's subscription on the component's broker; undefined for what it cannot tell. */
function brokerNames(c: ResolvedComponent, appId: string, topic: string | undefined, metadata: Record<string, string>): Omit<SubscriptionRef, 'pubsubType'> {
  try {
    const ctx = context(appId, '');
    if (c.type === 'pubsub.redis') return { stream: topic, consumerGroup: new RedisPubSub(c, ctx).consumerGroup };
    if (c.type === 'pubsub.jetstream') return { durable: new JetStreamPubSub(c, ctx).durableName };
    if (c.type === 'pubsub.rabbitmq') {
      const consumerID = parseRabbitmqPubSub(withMetadataTemplates(c, appId)).consumerID ?? appId;
      return topic === undefined ? {} : { queue: rabbitmqSubscriptionQueue(consumerID, { topic, metadata }) };
    }
  } catch {
    // metadata the plan already reports
  }
  return {};
}

/** The consumerID a rabbitmq component names its queues with (`<consumerID>-<topic>`). */
function rabbitmqConsumerID(c: ResolvedComponent, appId: string): string | undefined {
  try {
    return parseRabbitmqPubSub(withMetadataTemplates(c, appId)).consumerID ?? appId;
  } catch {
    return undefined;
  }
}

export function embeddedQueueOf(c: ResolvedComponent, appId: string, topic: string, metadata: Record<string, string>): string | undefined {
  try {
    return new EmbeddedPubSub(c, context(appId, '')).queueOf({ topic, metadata });
  } catch {
    return undefined;
  }
}

function describeNames(ref: SubscriptionRef): string {
  if (ref.consumerGroup !== undefined) return `consumer group '${ref.consumerGroup}' of stream '${ref.stream ?? ''}'`;
  if (ref.durable !== undefined) return `durable consumer '${ref.durable}' of stream '${ref.stream ?? ''}'`;
  if (ref.queue !== undefined) return `queue '${ref.queue}'`;
  return `stream '${ref.stream ?? ''}'`;
}

/** The declarative subscriptions of an app that daprd would run: on a pub/sub component it loads, on a topic it may use. */
export function declaredSubscriptions(appId: string, pubsubs: readonly ResolvedComponent[], declared: readonly DeclaredSubscription[]): AppSubscription[] {
  const out: AppSubscription[] = [];
  const seen = new Set<string>();
  for (const d of declared) {
    const component = pubsubs.find((c) => c.name === d.pubsubName);
    if (!component) continue;
    // daprd runs the first Subscription declared for a pubsub and topic.
    const key = `${d.pubsubName}||${d.topic}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const scopes = topicScopes(component.metadata, appId);
    if (!topicAllowed(d.topic, scopes, scopes.subscribing)) continue;
    out.push({ appId, component, topic: d.topic, metadata: d.metadata, declared: d });
  }
  return out;
}

/**
 * The subscription of `appId` a trigger reads: a declared one whose broker names are the trigger's, else (a
 * subscription the app makes itself) a pub/sub component of the app whose consumerID or durableName the trigger names.
 */
export function matchTrigger(
  ref: SubscriptionRef,
  appId: string,
  pubsubs: readonly ResolvedComponent[],
  subscriptions: readonly AppSubscription[],
): TriggerSubscription | undefined {
  const result = (component: ResolvedComponent, topic: string | undefined, metadata: Record<string, string>, declared: DeclaredSubscription | undefined): TriggerSubscription => ({
    appId, component, topic, metadata, declared,
    names: describeNames(ref),
    embeddedQueue: topic === undefined ? undefined : embeddedQueueOf(component, appId, topic, metadata),
  });
  const sameNames = (n: Omit<SubscriptionRef, 'pubsubType'>, topic: string | undefined): boolean => {
    if (ref.pubsubType === 'pubsub.redis') return topic === ref.stream && (ref.consumerGroup === undefined || n.consumerGroup === ref.consumerGroup);
    if (ref.pubsubType === 'pubsub.jetstream') return n.durable !== undefined && n.durable === ref.durable;
    if (ref.pubsubType === 'pubsub.rabbitmq') return n.queue !== undefined && n.queue === ref.queue;
    return false;
  };
  for (const s of subscriptions) {
    if (s.component.type !== ref.pubsubType) continue;
    if (sameNames(brokerNames(s.component, appId, s.topic, s.metadata), s.topic)) return result(s.component, s.topic, s.metadata, s.declared);
  }
  // No resource declares it: the app's own subscription, named from the component alone.
  const candidates = pubsubs.filter((c) => c.type === ref.pubsubType);
  for (const c of candidates) {
    if (ref.pubsubType === 'pubsub.redis') {
      const group = brokerNames(c, appId, ref.stream, {}).consumerGroup;
      if (ref.stream !== undefined && (ref.consumerGroup === undefined ? candidates.length === 1 : group === ref.consumerGroup)) return result(c, ref.stream, {}, undefined);
    } else if (ref.pubsubType === 'pubsub.jetstream') {
      if (ref.durable !== undefined && brokerNames(c, appId, undefined, {}).durable === ref.durable) return result(c, undefined, {}, undefined);
    } else if (ref.pubsubType === 'pubsub.rabbitmq') {
      const id = rabbitmqConsumerID(c, appId);
      if (id !== undefined && ref.queue !== undefined && ref.queue.startsWith(`${id}-`) && ref.queue.length > id.length + 1) {
        return result(c, ref.queue.slice(id.length + 1), {}, undefined);
      }
    }
  }
  return undefined;
}

/**
 * The line for a trigger that reads a pub/sub component's kind of names that none of the app's subscriptions has
 * (a misspelt consumer group, durable or queue): what they are named instead. Undefined when the app has no
 * pub/sub component of that type (the trigger is then about something else).
 */
export function unmatchedLine(ref: SubscriptionRef, trigger: Pick<ResolvedTrigger, 'subject'>, appId: string, pubsubs: readonly ResolvedComponent[], subscriptions: readonly AppSubscription[]): string | undefined {
  const own = pubsubs.filter((c) => c.type === ref.pubsubType);
  if (own.length === 0) return undefined;
  const names = subscriptions
    .filter((s) => s.component.type === ref.pubsubType)
    .map((s) => `${describeNames({ pubsubType: ref.pubsubType, stream: s.topic, ...brokerNames(s.component, appId, s.topic, s.metadata) })} (topic ${s.topic} of ${s.component.name})`);
  const theirs = names.length > 0 ? `its subscriptions there are ${names.join(', ')}` : `no Subscription resource of app ${appId} is on ${own.map((c) => c.name).join(', ')}`;
  return `${trigger.subject} reads ${describeNames(ref)}, which is no subscription of app ${appId} on ${ref.pubsubType} (${theirs}): it measures something the app does not consume; name what daprd derives (consumer group = consumerID, durable = durableName, queue = <consumerID>-<topic>; consumerID defaults to the app id)`;
}

/**
 * The line for a subscription only the app's replicas make, read by the trigger of an app that scales to zero:
 * what the broker does with events meanwhile, and the way out. Undefined where nothing is lost (Redis keeps the
 * stream, and the consumer group daprd makes starts at its first entry).
 */
export function programmaticLine(s: TriggerSubscription, trigger: Pick<ResolvedTrigger, 'subject'>, embedded: boolean): string | undefined {
  if (s.declared) return undefined;
  const c = s.component;
  const fix = `declare it with a Subscription resource (apiVersion dapr.io/v2alpha1, pubsubname ${c.name}, topic ${s.topic ?? '<topic>'}, scopes [${s.appId}]): qscale up then makes it before the first trigger read, as the Deployment's first pod makes it on a cluster`;
  const made = `no Subscription resource declares it, so only app ${s.appId} makes it (GET /dapr/subscribe) once a replica runs`;
  if (c.type === 'pubsub.rabbitmq') {
    return `${trigger.subject} reads ${s.names} of app ${s.appId}'s subscription to topic '${s.topic ?? ''}' (${c.name}, ${c.type}), but ${made}: ` +
      `events published while ${s.appId} is at 0 replicas are not kept by ${embedded ? 'the embedded queue (as by RabbitMQ' : 'RabbitMQ (no queue is bound to the topic\'s exchange yet'}) and the trigger has no queue to read; ${fix}`;
  }
  if (c.type === 'pubsub.jetstream') {
    return `${trigger.subject} reads ${s.names} (${c.name}, ${c.type}), but ${made}: ` +
      `until then the trigger has no consumer to read${embedded ? ' (and under --embedded no topic to measure)' : ''}, so ${s.appId} never scales from 0 (the stream keeps the events meanwhile); ${fix}`;
  }
  return undefined;
}

/** Whether the broker keeps a topic's events for a subscription not made yet, so preparing the trigger's one changes nothing real. */
export function keptBeforeSubscribing(type: string): boolean {
  return type === 'pubsub.redis';
}

export interface PreparerOptions {
  embedded: boolean;
  dataDir: string;
  /** A line the user sees (failures, once per cause; recoveries; each subscription prepared). */
  report(line: string): void;
  /** Between two attempts after a failure. */
  retryMs?: number;
}

export interface Preparer {
  /** Settles once every subscription had its first attempt (prepared or reported). */
  first: Promise<void>;
  stop(): Promise<void>;
}

function describeSubscription(s: AppSubscription): string {
  const what = s.declared ? `Subscription ${s.declared.name ?? ''}` : 'the subscription its trigger reads';
  return `${what} of app ${s.appId} (topic ${s.topic} of ${s.component.name}, ${s.component.type})`;
}

/**
 * Prepares each subscription through the component's own PubSub.prepare (under --embedded, the embedded pub/sub's),
 * one connection per app and component, closed once its subscriptions are made. A failure is said once per cause
 * and tried again every retryMs until it works or the supervisor stops.
 */
export function prepareSubscriptions(list: readonly AppSubscription[], opts: PreparerOptions): Preparer {
  const stopping = new AbortController();
  const retryMs = opts.retryMs ?? 5000;
  const groups = new Map<string, AppSubscription[]>();
  for (const s of list) {
    const key = `${s.appId}\0${s.component.name}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const firsts: Array<Promise<void>> = [];
  const runs: Array<Promise<void>> = [];
  for (const subs of groups.values()) {
    let tried!: () => void;
    const first = new Promise<void>((r) => (tried = r));
    const run = prepareGroup(subs, opts, retryMs, stopping.signal, tried).finally(tried);
    firsts.push(first);
    runs.push(run);
  }
  return {
    first: Promise.all(firsts).then(() => undefined),
    async stop() {
      stopping.abort();
      await Promise.allSettled(runs);
    },
  };
}

async function prepareGroup(subs: readonly AppSubscription[], opts: PreparerOptions, retryMs: number, signal: AbortSignal, tried: () => void): Promise<void> {
  const c = subs[0]!.component;
  const appId = subs[0]!.appId;
  const pending = [...subs];
  let failing: { cause: string; since: number } | undefined;
  let attempt = 0;
  while (pending.length > 0 && !signal.aborted) {
    if (attempt++ > 0) await sleep(retryMs, signal);
    if (signal.aborted) return;
    let ps: PubSub | undefined;
    try {
      ps = open(c, context(appId, opts.dataDir), opts.embedded);
      await withTimeout(ps.init(), c.initTimeoutMs, `component ${c.name} (${c.type}) did not initialise within ${c.initTimeoutMs} ms (initTimeout)`);
      while (pending.length > 0 && !signal.aborted) {
        const s = pending[0]!;
        await withTimeout(ps.prepare({ topic: s.topic, metadata: s.metadata }), c.initTimeoutMs, `no answer within ${c.initTimeoutMs} ms (initTimeout)`);
        pending.shift();
        const after = failing ? ` after failing for ${Math.round((Date.now() - failing.since) / 1000)}s` : '';
        opts.report(`${describeSubscription(s)} made${after}: its events are kept while ${appId} has no replica`);
      }
      failing = undefined;
    } catch (err) {
      const cause = errorMessage(err);
      const s = pending[0]!;
      if (cause !== failing?.cause) {
        // A missing stream is JetStream's usual first-run failure: say the qscale-only way as well as the CLI's.
        const orCreate = c.type === 'pubsub.jetstream' && /does not exist|no stream/i.test(cause)
          ? `; or have qscale up create it: annotation ${JETSTREAM_STREAM_ANNOTATION}: "${s.topic}" on the Component`
          : '';
        opts.report(`cannot make ${describeSubscription(s)}: ${cause}${orCreate}; events published meanwhile may not be kept, and its trigger may not read; trying again every ${retryMs >= 1000 ? `${Math.round(retryMs / 1000)}s` : `${retryMs} ms`}`);
      }
      failing = { cause, since: failing?.since ?? Date.now() };
    } finally {
      if (ps) await withTimeout(ps.close(), 2000, 'close').catch(() => undefined);
      tried();
    }
  }
}

function open(c: ResolvedComponent, ctx: PubSubContext, embedded: boolean): PubSub {
  if (embedded || c.type === EMBEDDED_PUBSUB_TYPE) return new EmbeddedPubSub(c, ctx);
  if (!findPubSub(c.type)) throw new Error(`component ${c.name}: unsupported pub/sub type '${c.type}'`);
  return createPubSub(c, ctx);
}

/**
 * Creates the JetStream streams pub/sub components ask for (annotation qscale.io/jetstream-stream-subjects), once,
 * before anything else: a failure is one line, and the subscription's own attempts then say what is missing.
 */
export async function setUpStreams(setups: ReadonlyArray<{ component: ResolvedComponent; subjects: string[] }>, report: (line: string) => void): Promise<void> {
  await Promise.all(setups.map(async ({ component: c, subjects }) => {
    try {
      const r = await ensureJetStreamStream(c, '', subjects);
      if (r.created) report(`component ${c.name} (${c.type}): created stream '${r.stream}' (subjects ${subjects.join(', ')}) on NATS JetStream at ${r.where}, as its annotation qscale.io/jetstream-stream-subjects asks (qscale up only; on a cluster a Job or the nats CLI creates it)`);
    } catch (err) {
      report(`component ${c.name} (${c.type}): ${errorMessage(err)}`);
    }
  }));
}
