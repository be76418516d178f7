/**
 * The one qscale-only setup step of a pubsub.jetstream component: creating the stream it names when it is missing,
 * asked for by the annotation `qscale.io/jetstream-stream-subjects` on the Component (Kubernetes and daprd ignore
 * annotations; daprd never creates streams, so on a cluster a Job or the nats CLI does it, with the same settings:
 * `nats stream add <streamName> --subjects <subjects> --defaults`, limits retention on file storage).
 */
import type { ResolvedComponent } from '../types.js';
import { errorMessage } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';
import { withMetadataTemplates } from '../../components/templates.js';
import { connectNats, describe, natsLib, scrubNats } from './connect.js';
import { parseJetStreamPubSub } from './pubsub-metadata.js';

export const JETSTREAM_STREAM_ANNOTATION = 'qscale.io/jetstream-stream-subjects';

/** Creates the component's stream (streamName) with these subjects unless it exists; says which it did. */
export async function ensureJetStreamStream(component: ResolvedComponent, appId: string, subjects: readonly string[]): Promise<{ created: boolean; stream: string; where: string }> {
  const s = parseJetStreamPubSub(withMetadataTemplates(component, appId));
  if (s.streamName === undefined) throw new Error(`component ${component.name} (${component.type}): annotation ${JETSTREAM_STREAM_ANNOTATION} needs metadata 'streamName': the stream to create`);
  const stream = s.streamName;
  const target = { urls: s.urls, token: s.token };
  const timeoutMs = component.initTimeoutMs;
  const where = describe(target);
  let nc: Awaited<ReturnType<typeof connectNats>> | undefined;
  try {
    return await withTimeout((async () => {
      nc = await connectNats(target, 'qscale:stream-setup', timeoutMs);
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs, ...(s.domain ? { domain: s.domain } : {}), ...(s.apiPrefix ? { apiPrefix: s.apiPrefix } : {}) });
      const exists = await jsm.streams.info(stream).then(() => true, (err: unknown) => {
        if ((err as { code?: string }).code === '404' || /not found/i.test(errorMessage(err))) return false;
        throw err;
      });
      if (exists) return { created: false, stream, where };
      const lib = natsLib();
      await jsm.streams.add({ name: stream, subjects: [...subjects], retention: lib.RetentionPolicy.Limits, storage: lib.StorageType.File });
      return { created: true, stream, where };
    })(), timeoutMs, `no answer from NATS JetStream at ${where} within ${timeoutMs} ms (initTimeout)`);
  } catch (err) {
    throw new Error(`cannot create stream '${stream}' on NATS JetStream at ${where}: ${scrubNats(errorMessage(err), target)}`);
  } finally {
    if (nc) await withTimeout(nc.close(), 2000, 'close').catch(() => undefined);
  }
}
