/**
 * The seed's Producer: POST /MessageProducer {"count", "intervalMilliseconds"} sends that many
 * {"text": "Hello World"} messages to the output binding through the sidecar, and answers once all are stored.
 */
import { setMaxListeners } from 'node:events';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from '../../src/util/log.js';
import { parseJson } from '../../src/util/json.js';
import { describeTarget, type ProducerConfig } from './config.js';
import { createBindingClient, SidecarError, type BindingClient } from './binding.js';
import { parseProduceRequest } from './request.js';
import { sendAll } from './send.js';
import { produceSchema, registerOpenApi } from './openapi.js';

export const MESSAGE = { text: 'Hello World' } as const;

/** The media types the seed's System.Text.Json input formatter read; anything else was 415 there and is here. */
const JSON_TYPES = /^(?:application\/json|text\/json|application\/[^\s;/]+\+json)\s*(?:;.*)?$/i;
/** ASP.NET Core MVC's JSON depth limit (MvcOptions' model binding recursion depth): deeper bodies are a 400. */
const MAX_JSON_DEPTH = 32;

export interface ProducerOptions {
  config: ProducerConfig;
  logger: Logger;
  /** Tests shorten this; see BindingClientOptions.connectWaitMs. */
  connectWaitMs?: number;
}

function badRequest(field: string, message: string): { errorCode: string; message: string; field: string } {
  return { errorCode: 'ERR_BAD_REQUEST', message, field };
}

export async function buildProducer(opts: ProducerOptions): Promise<FastifyInstance> {
  const { config, logger } = opts;
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  const binding: BindingClient = createBindingClient({
    sidecarUrl: config.sidecarUrl,
    target: config.target,
    apiToken: config.apiToken,
    connections: config.concurrency,
    connectWaitMs: opts.connectWaitMs,
  });
  app.addHook('onClose', async () => binding.close());

  // One JSON parser with our own message, and no other: a form or text body is refused by name.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') {
      done(Object.assign(new Error('body is empty: expected a JSON object like {"count": 1, "intervalMilliseconds": 0}'), { statusCode: 400, code: 'ERR_BAD_REQUEST' }));
      return;
    }
    const json = parseJson(s, MAX_JSON_DEPTH);
    if (json.ok) done(null, json.value);
    else done(Object.assign(new Error(`body is not valid JSON: ${json.reason}`), { statusCode: 400, code: 'ERR_BAD_REQUEST' }));
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const ct = req.headers['content-type'] ?? '(none)';
      return reply.code(415).send({
        errorCode: 'ERR_UNSUPPORTED_MEDIA_TYPE',
        message: `content-type must be application/json (or text/json, application/*+json), got ${ct}`,
        field: 'content-type',
      });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ errorCode: 'ERR_BODY_TOO_LARGE', message: 'body is larger than 64 KiB; a request is two numbers' });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send(badRequest('body', err.message));
    logger.error({ err }, 'unexpected error');
    return reply.code(500).send({ errorCode: 'ERR_INTERNAL', message: err.message });
  });

  await registerOpenApi(app, config.target);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.post('/MessageProducer', { schema: produceSchema, validatorCompiler: () => () => true }, async (req, reply) => {
    const parsed = parseProduceRequest(req.body);
    if (!parsed.ok) return reply.code(400).send(badRequest(parsed.error.field, parsed.error.message));
    const { count, intervalMilliseconds } = parsed.value;
    // The client hanging up (Ctrl-C on `qscale produce`) stops the run instead of sending into the void.
    const gone = new AbortController();
    // Every send in flight listens on this one signal (its request and its body).
    setMaxListeners(config.concurrency * 2 + 8, gone.signal);
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    const started = Date.now();
    const outcome = await sendAll({
      count,
      intervalMs: intervalMilliseconds,
      concurrency: config.concurrency,
      signal: gone.signal,
      send: (signal) => binding.send(MESSAGE, signal),
    });
    const ms = Date.now() - started;
    if (outcome.aborted) {
      logger.warn({ sent: outcome.sent, requested: count }, `client went away: stopped after ${outcome.sent} of ${count} messages`);
      // Nobody reads this answer; sending it completes the request's lifecycle.
      return reply.code(500).send({ errorCode: 'ERR_CLIENT_GONE', message: `client went away after ${outcome.sent} of ${count} messages`, sent: outcome.sent, requested: count });
    }
    if (outcome.error !== undefined) {
      const err = outcome.error;
      const detail = err instanceof Error ? err.message : String(err);
      const message = `sent ${outcome.sent} of ${count} messages, then failed: ${detail}`;
      logger.error({ sent: outcome.sent, requested: count, to: describeTarget(config.target) }, message);
      return reply.code(500).send({
        errorCode: 'ERR_SEND_FAILED',
        message,
        sent: outcome.sent,
        requested: count,
        ...(err instanceof SidecarError ? { sidecarStatus: err.status, sidecarBody: err.body } : {}),
      });
    }
    logger.info({ to: describeTarget(config.target), ms }, `sent ${count} message${count === 1 ? '' : 's'} to ${describeTarget(config.target)}`);
    return reply.code(200).send({ sent: outcome.sent });
  });

  return app;
}
