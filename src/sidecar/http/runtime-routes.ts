/** Health, metadata and shutdown: the endpoints the SDK, the supervisor and probes rely on. */
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';
import type { ApiServer } from './server.js';

/** The `appid` query parameter of a request target: undefined when absent, a list when given more than once. */
function appIdAsked(url: string): string | string[] | undefined {
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  const all = new URLSearchParams(url.slice(q + 1)).getAll('appid');
  return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
}

export function registerRuntimeRoutes(app: ApiServer, ctx: ApiContext): void {
  app.route(['GET'], '/v1.0/healthz', (req, reply) => {
    const h = ctx.health();
    if (!h.ready) return sendError(reply, 'ERR_HEALTH_NOT_READY', `dapr is not ready: ${h.reason}`);
    // As daprd: a caller checking that this port still serves the app it expects (a name resolver) says which.
    const appid = appIdAsked(req.url);
    if (appid !== undefined && appid !== ctx.appId) return sendError(reply, 'ERR_HEALTH_APPID_NOT_MATCH', 'dapr app-id does not match');
    return reply.code(204).send();
  });
  // daprd's outbound health is a start-up gate (components loaded), not a live check of each broker.
  app.route(['GET'], '/v1.0/healthz/outbound', (_req, reply) => {
    if (ctx.componentsLoaded()) return reply.code(204).send();
    return sendError(reply, 'ERR_OUTBOUND_HEALTH_NOT_READY', 'dapr outbound is not ready');
  });
  app.route(['GET'], '/v1.0/metadata', (_req, reply) => reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(ctx.metadata())));
  app.route(['POST'], '/v1.0/shutdown', (_req, reply) => {
    reply.raw.once('finish', () => ctx.shutdown());
    return reply.code(204).send();
  });
}
