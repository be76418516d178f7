/**
 * GET /v1.0/metadata in daprd's shape (the JS SDK polls it before its first call), plus a `qscale` block with
 * delivery figures that `qscale status` reads. Each input binding there carries its enqueue → ack latency samples
 * (`latency`: a LatencyReport, latency.ts), which the supervisor collects for the dashboard.
 */
import type { ResolvedComponent } from '../backends/types.js';
import type { LoadedBinding } from './backends.js';
import type { ReaderStats } from './input.js';
import type { Outage, OutageState } from './outage.js';
import type { LoadedPubSub } from './pubsub/load.js';
import type { SubscriptionStats } from './pubsub/subscriber.js';
import type { Subscription } from '../pubsub/subscriptions.js';

export const RUNTIME_VERSION = 'qscale-0.1.0';

export interface SidecarStats {
  inFlight: number;
  delivered: number;
  succeeded: number;
  failed: number;
  appReachable: boolean;
  draining: boolean;
  inputBindings: ReaderStats[];
}

export interface OutputBindingStats {
  name: string;
  /** Set while calls fail: the cause of the last failure and since when calls fail. */
  outage?: OutageState;
}

export interface MetadataInput {
  appId: string;
  appPort: number | undefined;
  appChannelAddress: string;
  appMaxConcurrency: number | undefined;
  bindings: readonly LoadedBinding[];
  /** Components loaded as neither an input nor an output binding: listed, as daprd lists them, with no capabilities. */
  inert?: readonly ResolvedComponent[];
  stats: SidecarStats;
  outputOutages: ReadonlyMap<string, Outage>;
  /** Pub/sub components: listed with the features daprd lists as their capabilities. */
  pubsubs?: readonly LoadedPubSub[];
  /** The subscriptions the sidecar runs (declarative, and the app's own once it answered). */
  subscriptions?: readonly Subscription[];
  subscriptionStats?: readonly SubscriptionStats[];
}

/** A subscription as daprd's metadata lists it: rules only when there are some, match only when not empty. */
function listedSubscription(s: Subscription): object {
  const out: Record<string, unknown> = { pubsubname: s.pubsubName, topic: s.topic };
  if (Object.keys(s.metadata).length > 0) out.metadata = s.metadata;
  if (s.rules.length > 0) out.rules = s.rules.map((r) => (r.match === '' ? { path: r.path } : { match: r.match, path: r.path }));
  out.deadLetterTopic = s.deadLetterTopic;
  out.type = s.type;
  return out;
}

export function sumStats(readers: readonly ReaderStats[], appReachable: boolean, draining: boolean): SidecarStats {
  let inFlight = 0;
  let delivered = 0;
  let succeeded = 0;
  let failed = 0;
  for (const r of readers) {
    inFlight += r.inFlight;
    delivered += r.delivered;
    succeeded += r.succeeded;
    failed += r.failed;
  }
  return { inFlight, delivered, succeeded, failed, appReachable, draining, inputBindings: readers.map((r) => ({ ...r })) };
}

function outputStats(outages: ReadonlyMap<string, Outage>): OutputBindingStats[] {
  return [...outages].map(([name, o]) => (o.state ? { name, outage: o.state } : { name }));
}

export function metadataBody(m: MetadataInput): object {
  const appConnectionProperties: Record<string, unknown> = { protocol: 'http', channelAddress: m.appChannelAddress };
  if (m.appPort !== undefined) appConnectionProperties.port = m.appPort;
  if (m.appMaxConcurrency !== undefined) appConnectionProperties.maxConcurrency = m.appMaxConcurrency;
  return {
    id: m.appId,
    runtimeVersion: RUNTIME_VERSION,
    enabledFeatures: [],
    actors: [],
    components: [
      ...m.bindings.map((b) => ({
        name: b.plan.name,
        type: b.plan.type,
        version: b.component.version,
        capabilities: [...(b.plan.input ? ['INPUT_BINDING'] : []), ...(b.plan.output ? ['OUTPUT_BINDING'] : [])],
      })),
      ...(m.pubsubs ?? []).map((p) => ({ name: p.name, type: p.component.type, version: p.component.version, capabilities: [...p.features] })),
      ...(m.inert ?? []).map((c) => ({ name: c.name, type: c.type, version: c.version, capabilities: [] })),
    ],
    httpEndpoints: [],
    subscriptions: (m.subscriptions ?? []).map(listedSubscription),
    extended: {
      daprRuntimeVersion: RUNTIME_VERSION,
      'qscale.inFlight': String(m.stats.inFlight),
    },
    appConnectionProperties,
    qscale: { ...m.stats, outputBindings: outputStats(m.outputOutages), subscriptions: m.subscriptionStats ?? [] },
  };
}
