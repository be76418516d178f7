/**
 * The OpenAPI document and Swagger UI, where ASP.NET's Swashbuckle put them for the seed's Producer:
 * the UI at /swagger, the document at /swagger/v1/swagger.json (and /openapi.json). The UI's assets ship in
 * @fastify/swagger-ui, so it works offline.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { MAX_COUNT, MAX_INTERVAL_MS, describeTarget, type Target } from './config.js';

const errorBody = {
  type: 'object',
  properties: {
    errorCode: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string' },
  },
  required: ['errorCode', 'message'],
} as const;

/** Route schema of POST /MessageProducer: documentation only (the handler validates, with its own messages). */
export const produceSchema = {
  summary: 'Send count messages {"text": "Hello World"} to the output binding (or the topic)',
  description:
    'Each message goes to the sidecar as POST /v1.0/bindings/{binding} with {"data": {"text": "Hello World"}, ' +
    '"operation": "create"} — or, when the producer publishes to a topic, as POST /v1.0/publish/{pubsub}/{topic} with ' +
    '{"text": "Hello World"}. With intervalMilliseconds > 0 they go one after the other with that pause between ' +
    'them; with 0 they go concurrently. Answers 200 once every message is stored.',
  tags: ['MessageProducer'],
  body: {
    type: 'object',
    properties: {
      count: { type: 'integer', minimum: 0, maximum: MAX_COUNT, default: 0, description: 'how many messages to send (0 when left out)' },
      intervalMilliseconds: { type: 'integer', minimum: 0, maximum: MAX_INTERVAL_MS, default: 0, description: 'pause between two messages (0 when left out)' },
    },
    example: { count: 1, intervalMilliseconds: 0 },
  },
  response: {
    200: {
      description: 'every message was stored',
      type: 'object',
      properties: { sent: { type: 'integer' } },
    },
    400: { description: 'the body is not a valid request; field names the culprit', ...errorBody },
    415: { description: 'the body is not JSON (content-type application/json, text/json or application/*+json)', ...errorBody },
    500: {
      description: 'the sidecar refused a message or could not be reached; sent says how many were stored before',
      type: 'object',
      properties: {
        ...errorBody.properties,
        sent: { type: 'integer' },
        requested: { type: 'integer' },
        sidecarStatus: { type: 'integer' },
        sidecarBody: { type: 'string' },
      },
    },
  },
};

export async function registerOpenApi(app: FastifyInstance, target: Target): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'producer',
        version: 'v1',
        description: `The Producer of the producer/consumer pattern: sends messages to ${target.kind === 'binding' ? 'the output ' : ''}${describeTarget(target)} through its Dapr sidecar.`,
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/swagger', uiConfig: { docExpansion: 'list', deepLinking: false } });
  const doc = async (): Promise<unknown> => app.swagger();
  app.get('/swagger/v1/swagger.json', { schema: { hide: true } }, doc);
  app.get('/openapi.json', { schema: { hide: true } }, doc);
  app.get('/swagger/index.html', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/swagger'));
}
