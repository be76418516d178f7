/**
 * The seed's Consumer: POST /message-queue takes {"text": ...}, works WORK_MS, prints the seed's line, answers 200.
 * A body it cannot read gets a 400 naming why, so the sidecar does not ack it: the broker redelivers it and
 * dead-letters it after its max deliveries — the message is neither lost nor retried forever.
 */
import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../../src/util/log.js';
import type { ConsumerConfig } from './config.js';
import { excerpt, parseMessage } from './message.js';
import { processedLine } from './timefmt.js';

export interface ConsumerOptions {
  config: ConsumerConfig;
  logger: Logger;
  /** Where the processed lines go (stdout in the app). */
  print?: (line: string) => void;
}

export interface ConsumerApp {
  app: FastifyInstance;
  /** Messages being worked on right now. */
  inFlight(): number;
}

function tokenMatches(expected: string, got: string | string[] | undefined): boolean {
  if (typeof got !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildConsumer(opts: ConsumerOptions): ConsumerApp {
  const { config, logger } = opts;
  const print = opts.print ?? ((line: string) => void process.stdout.write(line + '\n'));
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  const route = `/${config.route}`;
  let inFlight = 0;

  // The sidecar always says application/json, but the bytes are whatever was stored: read them raw, judge them here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  if (config.apiToken !== undefined) {
    const token = config.apiToken;
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz') return;
      if (tokenMatches(token, req.headers['dapr-api-token'])) return;
      logger.warn({ method: req.method, url: req.url }, 'refused a request without the right dapr-api-token header (APP_API_TOKEN is set): answered 401');
      return reply.code(401).send({ errorCode: 'ERR_UNAUTHORIZED', message: 'missing or invalid dapr-api-token header' });
    });
  }

  app.get('/healthz', async () => ({ status: 'ok', inFlight }));

  // daprd asks every app for its programmatic subscriptions; none unless PUBSUB_NAME and TOPIC are set (declarative
  // Subscription resources need none).
  app.get('/dapr/subscribe', async () => (config.subscription ? [{ ...config.subscription, route }] : []));

  // Dapr probes the route with OPTIONS at start: 2xx means "this app reads the binding".
  app.options(route, async (_req, reply) => reply.code(200).send());

  app.post(route, async (req, reply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : undefined;
    const msg = parseMessage(raw);
    if (!msg.ok) {
      const preview = excerpt(raw);
      logger.warn(
        { route, bytes: raw?.length ?? 0, ...(preview ? { body: preview } : {}) },
        `rejected a message on ${route}: ${msg.reason}; answered 400, so the sidecar does not ack it and the broker dead-letters it after its max deliveries`,
      );
      return reply.code(400).send({ errorCode: 'ERR_BAD_MESSAGE', message: msg.reason });
    }
    inFlight += 1;
    try {
      const received = new Date();
      // A zero-length timer still waits for the next timers phase (about 1 ms): skip it when there is no work.
      if (config.workMs > 0) await sleep(config.workMs);
      print(processedLine(msg.text, received, new Date()));
    } finally {
      inFlight -= 1;
    }
    return reply.code(200).send();
  });

  return { app, inFlight: () => inFlight };
}
