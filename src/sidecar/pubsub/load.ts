/**
 * Pub/sub components of the sidecar: each created from the registry (or, under --embedded, served by the embedded
 * queue whatever its type, keeping its topics and consumer groups), initialised within its initTimeout; a failure
 * stops the sidecar naming the component, unless it says ignoreErrors, as daprd does.
 */
import { ConfigError, QscaleError } from '../../errors.js';
import type { ResolvedComponent } from '../../backends/types.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../../util/timeout.js';
import { EMBEDDED_PUBSUB_TYPE, createEmbeddedPubSub, createPubSub, findPubSub, supportedPubSubTypes } from '../../pubsub/registry.js';
import type { PubSub } from '../../pubsub/types.js';
import { expiresMessages, pubsubFeatures } from '../../pubsub/features.js';
import { topicScopes, type TopicScopes } from '../../pubsub/scopes.js';
import { Outage, describeCause } from '../outage.js';

export interface LoadedPubSub {
  name: string;
  component: ResolvedComponent;
  pubsub: PubSub;
  /** The embedded queue serves it (--embedded, or its own type). */
  servedEmbedded: boolean;
  scopes: TopicScopes;
  /** What daprd lists as its capabilities. */
  features: readonly string[];
  /** The component expires messages itself (MESSAGE_TTL): the sidecar then writes no `expiration`. */
  expires: boolean;
  /** Publish failures, one line per outage. */
  publishOutage: Outage;
}

export interface PubSubLoadContext {
  logger: Logger;
  dataDir: string;
  appId: string;
  embedded: boolean;
}

/** The error for a pub/sub type no registry line serves (under --embedded every pubsub.* type is served). */
export function unsupportedPubSub(c: ResolvedComponent): ConfigError {
  return new ConfigError(
    `component ${c.name}: unsupported pub/sub type '${c.type}' (supported: ${supportedPubSubTypes().join(', ') || 'none'}; with --embedded every pub/sub type is served by the embedded queue)`,
    { ...c.where(), field: 'spec.type' },
  );
}

function open(c: ResolvedComponent, ctx: PubSubLoadContext): { pubsub: PubSub; servedEmbedded: boolean } {
  const pctx = { logger: ctx.logger.child({ component: c.name }), dataDir: ctx.dataDir, appId: ctx.appId };
  if (c.type === EMBEDDED_PUBSUB_TYPE || ctx.embedded) return { pubsub: createEmbeddedPubSub(c, pctx), servedEmbedded: true };
  if (!findPubSub(c.type)) throw unsupportedPubSub(c);
  return { pubsub: createPubSub(c, pctx), servedEmbedded: false };
}

export async function loadPubSubs(components: readonly ResolvedComponent[], ctx: PubSubLoadContext): Promise<LoadedPubSub[]> {
  const loaded: LoadedPubSub[] = [];
  for (const component of components) {
    const subject = `component ${component.name} (${component.type})`;
    let pubsub: PubSub | undefined;
    try {
      const opened = open(component, ctx);
      pubsub = opened.pubsub;
      await withTimeout(pubsub.init(), component.initTimeoutMs, `init timed out after ${component.initTimeoutMs} ms (initTimeout)`);
      const print = (level: 'error' | 'warn' | 'info', line: string): void => ctx.logger[level](line);
      loaded.push({
        name: component.name,
        component,
        pubsub,
        servedEmbedded: opened.servedEmbedded,
        scopes: topicScopes(component.metadata, ctx.appId),
        features: pubsubFeatures(component.type),
        expires: expiresMessages(component.type, opened.servedEmbedded),
        publishOutage: new Outage({
          failing: (cause) => `${subject}: publishing fails: ${cause}; each publish answers 500 ERR_PUBSUB_PUBLISH_MESSAGE until the broker takes events again`,
          changed: (cause) => `${subject}: publishing still fails, now: ${cause}`,
          recovered: (s) => `${subject}: publishing works again after ${s} s`,
        }, print),
      });
      ctx.logger.info(`loaded component ${component.name} (${component.type})${opened.servedEmbedded && component.type !== EMBEDDED_PUBSUB_TYPE ? ', served by the embedded queue' : ''}`);
    } catch (err) {
      if (pubsub) await pubsub.close().catch(() => undefined);
      const reason = describeCause(err, component);
      const message = err instanceof QscaleError && err.code === 'ERR_CONFIG' ? reason : `${component.file}:${component.line}: ${subject}: init failed: ${reason}`;
      if (component.ignoreErrors) {
        ctx.logger.warn(`${message} (ignoreErrors: going on without it)`);
        continue;
      }
      await Promise.all(loaded.map((l) => l.pubsub.close().catch(() => undefined)));
      throw new QscaleError('ERR_COMPONENT_INIT', message);
    }
  }
  return loaded;
}
