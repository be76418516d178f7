/**
 * One sidecar: loads components, serves the Dapr HTTP API, reads input bindings into the app, and stops gracefully
 * (stop taking messages, finish and ack in-flight work within the grace period, close backends).
 */
import { loadResources } from '../components/index.js';
import { createBackend, findBackend, supportedBindingTypes } from '../backends/registry.js';
import { EMBEDDED_TYPE } from '../backends/embedded/metadata.js';
import type { ResolvedComponent } from '../backends/types.js';
import { createLogger } from '../util/log.js';
import { ConfigError, QscaleError, errorMessage } from '../errors.js';
import { withTimeout } from '../util/timeout.js';
import { AppChannel } from './app-channel.js';
import { deliveredMetadata } from './delivered-metadata.js';
import { loadBindings, type LoadedBinding } from './backends.js';
import { buildApiServer } from './http/server.js';
import type { Health } from './http/context.js';
import { InputReader } from './input.js';
import { DaprMetrics } from '../metrics/dapr.js';
import { startMetricsServer } from './metrics.js';
import { metadataBody, sumStats } from './metadata.js';
import { Outage } from './outage.js';
import { isPubSubType } from '../pubsub/registry.js';
import type { Subscription } from '../pubsub/subscriptions.js';
import { loadPubSubs, type LoadedPubSub } from './pubsub/load.js';
import { registerPublish } from './pubsub/publish.js';
import { PubSubSubscriber } from './pubsub/subscriber.js';
import {
  DEFAULT_GRACE_MS,
  DEFAULT_HTTP_PORT,
  DEFAULT_HTTP_TIMEOUTS,
  DEFAULT_LISTEN,
  DEFAULT_MAX_BODY_BYTES,
  outputBindingTimeoutMs,
  type BackendFactory,
  type DrainResult,
  type SidecarHandle,
  type SidecarOptions,
} from './options.js';

const BACKEND_CLOSE_TIMEOUT_MS = 5000;

export async function startSidecar(options: SidecarOptions): Promise<SidecarHandle> {
  const logger = options.logger ?? createLogger('sidecar', { app_id: options.appId });
  const embedded = options.embedded ?? false;
  const dataDir = options.dataDir ?? process.env.QSCALE_DATA_DIR ?? '.qscale';
  const graceMs = options.gracePeriodMs ?? DEFAULT_GRACE_MS;
  const appChannelAddress = options.appChannelAddress ?? '127.0.0.1';
  const create: BackendFactory = options.createBackend ?? ((c, ctx, o) => createBackend(c, ctx, o));
  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...options.httpTimeouts };
  if (!(timeouts.headersMs > 0 && timeouts.headersMs <= timeouts.requestMs && timeouts.keepAliveMs > 0)) {
    throw new QscaleError('ERR_CONFIG', `HTTP timeouts must be positive with headers <= request, got ${JSON.stringify(timeouts)}`);
  }

  const metrics = options.metrics ? new DaprMetrics(options.appId) : undefined;
  logger.info(`starting qscale sidecar for app ${options.appId}`);
  if (embedded) logger.info(`--embedded: every queue binding and pub/sub component is served from the embedded SQLite queue in ${dataDir}, keeping its queue, topic and consumer names`);

  let components: readonly ResolvedComponent[];
  let pubsubComponents: readonly ResolvedComponent[];
  let declarative: readonly Subscription[] = [];
  if (options.components) {
    components = options.components.filter((c) => !isPubSubType(c.type));
    pubsubComponents = options.components.filter((c) => isPubSubType(c.type));
  } else {
    const loaded = await loadResources(options.resourcesPaths ?? [], { appId: options.appId });
    for (const s of loaded.skipped) logger.debug(`skipped ${s.kind} ${s.name} (${s.file}:${s.line}): ${s.reason}`);
    for (const n of loaded.notices) logger.info(n);
    components = loaded.components;
    pubsubComponents = loaded.pubsubs;
    declarative = loaded.subscriptions;
  }
  const checkType = (c: ResolvedComponent): void => {
    if (findBackend(c.type)) return;
    throw new ConfigError(`component ${c.name}: unsupported binding type '${c.type}' (supported: ${supportedBindingTypes().join(', ')})`, { ...c.where(), field: 'type' });
  };
  const { bindings, inert } = await loadBindings(components, create, {
    logger,
    dataDir,
    embedded,
    checkType: options.createBackend ? undefined : checkType,
    embeddedTypes: [EMBEDDED_TYPE],
  });
  let pubsubList: LoadedPubSub[];
  try {
    pubsubList = await loadPubSubs(pubsubComponents, { logger, dataDir, appId: options.appId, embedded });
  } catch (err) {
    await Promise.all(bindings.map((b) => b.backend.close().catch(() => undefined)));
    throw err;
  }
  const pubsubs = new Map(pubsubList.map((p) => [p.name, p]));
  const publishBound = (p: LoadedPubSub): number => options.outputBindingTimeoutMs ?? outputBindingTimeoutMs(p.component);
  if (options.brokerHeaders) logger.info('--broker-headers: the app also gets what the backends read from the broker that Dapr components do not pass on (daprd never sends these headers)');
  const callBound = (b: LoadedBinding): number => options.outputBindingTimeoutMs ?? outputBindingTimeoutMs(b.component);
  const outputs = new Map<string, LoadedBinding>();
  const outputOutages = new Map<string, Outage>();
  for (const b of bindings) {
    if (!b.plan.output) continue;
    outputs.set(b.plan.name, b);
    const subject = `component ${b.plan.name} (${b.plan.type})`;
    outputOutages.set(
      b.plan.name,
      new Outage(
        {
          failing: (cause) => `${subject}: output binding calls fail: ${cause}; each call answers 500 ERR_INVOKE_OUTPUT_BINDING until the broker takes messages again`,
          changed: (cause) => `${subject}: output binding calls still fail, now: ${cause}`,
          recovered: (s) => `${subject}: output binding calls succeed again after ${s} s`,
        },
        (level, line) => logger[level](line),
      ),
    );
  }

  const channel = options.appPort === undefined
    ? undefined
    : new AppChannel(appChannelAddress, options.appPort, options.appApiToken, options.appMaxConcurrency, options.appBindingOptionsTimeoutMs);
  const readers = channel
    ? bindings.filter((b) => b.plan.input).map((b) => {
      const view = deliveredMetadata({ type: b.plan.type, servedEmbedded: b.servedEmbedded, brokerHeaders: options.brokerHeaders ?? false });
      return new InputReader(b, channel, logger, options.appMaxConcurrency, view);
    })
    : [];
  if (!channel && bindings.some((b) => b.plan.input)) logger.info('no --app-port: input bindings are not read');
  for (const r of readers) r.metrics = metrics;
  const subscriber = new PubSubSubscriber({
    appId: options.appId, pubsubs, declarative, channel, logger, appMaxConcurrency: options.appMaxConcurrency, metrics, publishTimeoutMs: publishBound,
  });

  const receiving = new AbortController();
  let draining = false;
  let stopping: Promise<DrainResult> | undefined;

  // A standby reads nothing and dials nothing until it is adopted.
  let waiting = options.standby ?? false;
  const health = (): Health => {
    if (draining) return { ready: false, reason: 'shutting down' };
    if (waiting) return { ready: false, reason: 'standby: not adopted yet' };
    if (channel && !channel.isReachable) return { ready: false, reason: `app is not reachable on ${channel.origin} yet` };
    const broken = readers.find((r) => r.stats.outage !== undefined);
    if (broken) return { ready: false, reason: `input binding ${broken.stats.name} cannot receive: ${broken.stats.outage?.cause ?? 'unknown error'}` };
    const sub = subscriber.outage();
    if (sub) return { ready: false, reason: `subscription to topic ${sub.topic} on pubsub ${sub.pubsubname} cannot receive: ${sub.outage?.cause ?? 'unknown error'}` };
    return { ready: true };
  };
  const stats = (): ReturnType<typeof sumStats> => sumStats(readers.map((r) => r.stats), channel?.isReachable ?? false, draining);

  const server = buildApiServer({
    appId: options.appId,
    metrics,
    daprApiToken: options.daprApiToken,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    timeouts,
    outputBindingTimeoutMs: callBound,
    logger,
    outputs,
    outputOutage: (name) => outputOutages.get(name),
    // The API listens only once every component is loaded, so whoever can ask gets yes.
    componentsLoaded: () => true,
    health,
    metadata: () =>
      metadataBody({
        appId: options.appId,
        appPort: options.appPort,
        appChannelAddress,
        appMaxConcurrency: options.appMaxConcurrency,
        bindings,
        inert,
        stats: stats(),
        outputOutages,
        pubsubs: pubsubList,
        subscriptions: subscriber.subscriptions(),
        subscriptionStats: subscriber.stats(),
      }),
    shutdown: () => {
      logger.info('shutdown requested through POST /v1.0/shutdown');
      void stop().then((r) => options.onShutdown?.(r));
    },
  });

  registerPublish(server, { appId: options.appId, pubsubs, logger, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, metrics, publishTimeoutMs: publishBound });

  // The app's port is dialled while the API comes up: the first delivery need not wait for a dial after it.
  // Health needs the app's port too, even when no input binding is read (an output-only app).
  if (channel && !waiting) void channel.waitUntilReachable(receiving.signal);
  try {
    await server.listen({ port: options.httpPort ?? DEFAULT_HTTP_PORT, host: options.listenAddress ?? DEFAULT_LISTEN });
  } catch (err) {
    receiving.abort();
    await Promise.all(bindings.map((b) => b.backend.close().catch(() => undefined)));
    await Promise.all(pubsubList.map((p) => p.pubsub.close().catch(() => undefined)));
    await channel?.close();
    throw new QscaleError('ERR_LISTEN', `cannot listen on ${options.listenAddress ?? DEFAULT_LISTEN}:${options.httpPort ?? DEFAULT_HTTP_PORT}: ${errorMessage(err)}`);
  }
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.httpPort ?? DEFAULT_HTTP_PORT);
  logger.info(`HTTP API listening on ${options.listenAddress ?? DEFAULT_LISTEN}:${port}`);
  const metricsServer = metrics && options.metrics ? await startMetricsServer(metrics, options.metrics, logger) : undefined;

  let readersDone: Promise<unknown> = Promise.resolve();
  const begin = (): void => {
    if (channel) void channel.waitUntilReachable(receiving.signal);
    readersDone = Promise.all([...readers.map((r) => r.run(receiving.signal)), subscriber.run(receiving.signal)]);
    if (channel && readers.length > 0) logger.info(`waiting for the app on ${channel.origin} before reading input bindings`);
  };
  if (waiting) logger.info('standby: components loaded and the API up; the app is not dialled and nothing is read until the supervisor adopts this sidecar');
  else begin();
  const adopt = (): boolean => {
    if (!waiting || draining) return false;
    waiting = false;
    logger.info('adopted by the supervisor');
    begin();
    return true;
  };

  async function drain(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const done = readersDone.then(() => true as const);
    const drained = await Promise.race([done, timeout]);
    clearTimeout(timer);
    return drained;
  }

  function stop(): Promise<DrainResult> {
    stopping ??= (async () => {
      draining = true;
      const inFlight = stats().inFlight + subscriber.inFlight;
      logger.info(`stopping: no new messages are taken; ${inFlight} deliveries in flight, grace period ${graceMs / 1000}s`);
      receiving.abort();
      const drained = await drain();
      if (drained) {
        logger.info(`in-flight deliveries finished and acked (${stats().succeeded} succeeded, ${stats().failed} failed in total)`);
      } else {
        logger.warn(`grace period of ${graceMs / 1000}s is over with ${stats().inFlight + subscriber.inFlight} deliveries in flight: stopping anyway; their leases expire and the messages come back`);
        await channel?.destroy();
      }
      // Calls in progress finish first; one that still waits past its own bound is cut, so a stop always ends.
      const longestCall = Math.max(0, ...[...outputs.values()].map(callBound));
      await withTimeout(server.close(), longestCall + 1000, 'HTTP API close').catch(() => server.server.closeAllConnections());
      logger.info('HTTP API closed');
      await Promise.all(bindings.map((b) => withTimeout(b.backend.close(), BACKEND_CLOSE_TIMEOUT_MS, 'backend close').catch(() => undefined)));
      await Promise.all(pubsubList.map((p) => withTimeout(p.pubsub.close(), BACKEND_CLOSE_TIMEOUT_MS, 'pub/sub close').catch(() => undefined)));
      logger.info('components closed');
      await channel?.close();
      await metricsServer?.close();
      logger.info('sidecar stopped');
      return { drained };
    })();
    return stopping;
  }

  return { port, close: stop, adopt };
}
