/** Health, metadata and shutdown: the endpoints the SDK, the supervisor and probes rely on. */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from './context.js';
import { sendError } from './errors.js';

export function registerRuntimeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { appid?: unknown } }>('/v1.0/healthz', async (req, reply) => {
    const h = ctx.health();
    if (!h.ready) return sendError(reply, 'ERR_HEALTH_NOT_READY', `dapr is not ready: ${h.reason}`);
    // As daprd: a caller checking that this port still serves the app it expects (a name resolver) says which.
    const { appid } = req.query;
    if (appid !== undefined && appid !== ctx.appId) return sendError(reply, 'ERR_HEALTH_APPID_NOT_MATCH', 'dapr app-id does not match');
    return reply.code(204).send();
  });
  // daprd's outbound health is a start-up gate (components loaded), not a live check of each broker.
  app.get('/v1.0/healthz/outbound', async (_req, reply) => {
    if (ctx.componentsLoaded()) return reply.code(204).send();
    return sendError(reply, 'ERR_OUTBOUND_HEALTH_NOT_READY', 'dapr outbound is not ready');
  });
  app.get('/v1.0/metadata', async (_req, reply) => reply.code(200).type('application/json').send(JSON.stringify(ctx.metadata())));
  app.post('/v1.0/shutdown', async (_req, reply) => {
    reply.raw.once('finish', () => ctx.shutdown());
    return reply.code(204).send();
  });
}
