/**
 * The supervisor's loopback HTTP endpoint: the running system's state as JSON (`qscale status` reads it) and the
 * dashboard (src/dashboard), and the dead letters of the system's queue bindings (GET /dlq, src/dlq/http.ts).
 * Loopback only. The routes that change anything: the dashboard's produce form, passed to the producer app as
 * `POST /MessageProducer` would be, and the dead-letter API's requeue and purge (POST /dlq/*, POST /queue/purge).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { SystemStatus } from './state.js';
import { registerDashboard, type DashboardSource } from '../dashboard/routes.js';
import { kedaMetrics } from '../metrics/keda.js';
import { registerDeadLetterRoutes } from '../dlq/http.js';
import type { DeadLetterApi } from '../dlq/service.js';

export async function startControlServer(getStatus: () => Promise<SystemStatus>, port = 0, dashboard?: DashboardSource, deadLetters?: DeadLetterApi): Promise<{ url: string; server: FastifyInstance }> {
  const server = Fastify({ logger: false });
  server.get('/status', async () => getStatus());
  server.get('/healthz', async (_req, reply) => reply.code(204).send());
  server.get('/metrics', async (_req, reply) => reply.type(kedaMetrics.contentType).send(await kedaMetrics.metrics()));
  if (dashboard) registerDashboard(server, dashboard);
  if (deadLetters) registerDeadLetterRoutes(server, deadLetters);
  server.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ errorCode: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url}: try GET /status${deadLetters ? ' or GET /dlq' : ''}` });
  });
  await server.listen({ host: '127.0.0.1', port });
  const addr = server.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return { url: `http://127.0.0.1:${actual}`, server };
}
