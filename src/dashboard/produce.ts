/**
 * POST /MessageProducer on the supervisor's loopback address, passed to the Ready producer replica as it came, so
 * the dashboard's form (served from the supervisor's origin) can send messages without knowing the producer's port.
 * The producer's answer comes back as it is: its own 400s name the field at fault.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { causeCode } from '../cli/produce/client.js';

export interface ProducerTarget {
  /** The producer app's id; undefined when the run file starts no producer. */
  producerAppId: string | undefined;
  /** The Ready producer replica's address; undefined while none is Ready. */
  producerUrl(): string | undefined;
}

/** The producer refuses bodies larger than this itself; the proxy reads no more. */
const BODY_LIMIT = 64 * 1024;

export function registerProduceProxy(server: FastifyInstance, target: ProducerTarget): void {
  // Encapsulated: the body is taken as bytes here only, whatever its type, and passed on unparsed.
  void server.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
    scope.post('/MessageProducer', async (req, reply) => forward(req, reply, target));
  });
}

function refuse(reply: FastifyReply, status: number, errorCode: string, message: string): FastifyReply {
  return reply.code(status).send({ errorCode, message });
}

/**
 * The address must be this loopback server's own, and a browser's Origin (when sent) this server's: a page from
 * elsewhere, or a host name rebound to 127.0.0.1, sends nothing through it.
 */
export function foreignCaller(req: FastifyRequest): string | undefined {
  const host = req.headers.host ?? '';
  if (!/^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i.test(host)) return `Host '${host}' is not a loopback address`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return `Origin '${origin}' is not this dashboard's (http://${host})`;
  return undefined;
}

async function forward(req: FastifyRequest, reply: FastifyReply, target: ProducerTarget): Promise<FastifyReply | undefined> {
  const foreign = foreignCaller(req);
  if (foreign) return refuse(reply, 403, 'ERR_FORBIDDEN', `${foreign}: the supervisor sends messages only for its own dashboard`);
  if (target.producerAppId === undefined) {
    return refuse(reply, 404, 'ERR_NO_PRODUCER', 'this system has no producer app: its run file starts none (an app whose id is or contains "producer")');
  }
  const url = target.producerUrl();
  if (!url) {
    void reply.header('retry-after', '1');
    return refuse(reply, 503, 'ERR_PRODUCER_NOT_READY', `the producer (app ${target.producerAppId}) has no Ready replica yet: send again once it is Ready (GET /status shows its replica)`);
  }
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort();
  });
  try {
    const res = await request(`${url}/MessageProducer`, {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json', accept: 'application/json' },
      body: Buffer.isBuffer(req.body) ? req.body : undefined,
      // A run with an interval takes as long as it takes: the producer answers once every message is stored.
      headersTimeout: 0,
      bodyTimeout: 0,
      signal: gone.signal,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const type = res.headers['content-type'];
    if (typeof type === 'string') void reply.header('content-type', type);
    return reply.code(res.statusCode).send(body);
  } catch (err) {
    if (gone.signal.aborted) return undefined; // the caller went away; the producer stops on its own
    return refuse(reply, 502, 'ERR_PRODUCER_UNREACHABLE', `cannot reach the producer at ${url} (${causeCode(err)}): its replica may be restarting (GET /status shows it); send again once it is Ready`);
  }
}
