/**
 * The supervisor's dead-letter API, next to GET /status (what the dashboard's panel and `qscale dlq` use while
 * `qscale up` runs):
 *   GET  /dlq[?binding=NAME&limit=N]   every binding's dead letters (a binding that fails shows its own error)
 *   GET  /dlq/{binding}/{id}           one dead letter, body and metadata
 *   POST /dlq/requeue  {binding?, ids? | all: true}
 *   POST /dlq/purge    {binding?, ids? | all: true}
 *   POST /queue/purge  {binding}       the queue's ready messages
 * Bad input is a 400 naming the field; an unknown binding or id a 404; each with an errorCode. Every call is bounded.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { QscaleError, errorMessage } from '../errors.js';
import { foreignCaller } from '../dashboard/produce.js';
import { withTimeout } from '../util/timeout.js';
import type { DeadLetterApi } from './service.js';
import { DEFAULT_OP_TIMEOUT_MS } from './service.js';
import { httpStatusOf, type Selection } from './view.js';

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
/** A whole API call: connecting and the broker call, with room to spare; past it the caller gets a 504. */
export const API_TIMEOUT_MS = 2 * DEFAULT_OP_TIMEOUT_MS + 10_000;
const BODY_LIMIT = 1024 * 1024;

class BadRequest extends QscaleError {
  constructor(readonly field: string, message: string) {
    super('ERR_BAD_REQUEST', `${field}: ${message}`);
  }
}

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof BadRequest) return reply.code(400).send({ errorCode: err.code, field: err.field, message: err.message });
  if (err instanceof QscaleError) return reply.code(httpStatusOf(err.code)).send({ errorCode: err.code, message: err.message });
  return reply.code(500).send({ errorCode: 'ERR_INTERNAL', message: errorMessage(err) });
}

/** The JSON object a POST carries; an empty body is an empty object. */
function objectBody(req: FastifyRequest, allowed: readonly string[]): Record<string, unknown> {
  const body = req.body ?? {};
  if (typeof body !== 'object' || Array.isArray(body) || body === null) throw new BadRequest('body', 'must be a JSON object');
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new BadRequest(k, `unknown field (fields: ${allowed.join(', ')})`);
  }
  return body as Record<string, unknown>;
}

function bindingField(v: unknown, required: boolean): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new BadRequest('binding', required ? 'required: the name of a queue binding (its Component\'s metadata.name)' : 'must be the name of a queue binding (a non-empty string)');
  return v;
}

function selection(req: FastifyRequest): Selection {
  const body = objectBody(req, ['binding', 'ids', 'all']);
  const binding = bindingField(body.binding, false);
  let ids: string[] | undefined;
  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || body.ids.some((x) => typeof x !== 'string' || x === '')) throw new BadRequest('ids', 'must be an array of dead-letter ids (non-empty strings)');
    ids = body.ids as string[];
  }
  if (body.all !== undefined && typeof body.all !== 'boolean') throw new BadRequest('all', 'must be true or false');
  if (body.all === true && ids && ids.length > 0) throw new BadRequest('all', 'and ids both given: send either ids or all: true');
  if (body.all !== true && (!ids || ids.length === 0)) throw new BadRequest('ids', 'no dead letters named: send ids: [...] or all: true');
  return { binding, ids, all: body.all === true };
}

export function registerDeadLetterRoutes(server: FastifyInstance, api: DeadLetterApi): void {
  const bounded = <T>(what: string, p: Promise<T>): Promise<T> => withTimeout(p, API_TIMEOUT_MS, `${what}: no answer from the broker within ${API_TIMEOUT_MS} ms`);
  /** A change comes only from this loopback server's own pages or a client with no Origin (curl, the CLI). */
  const guard = (req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    const foreign = foreignCaller(req);
    return foreign ? reply.code(403).send({ errorCode: 'ERR_FORBIDDEN', message: `${foreign}: the supervisor changes dead letters and queues only for its own dashboard and local clients` }) : undefined;
  };

  void server.register(async (scope) => {
    // Encapsulated: a body that is not JSON is a 400 in this API's shape.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, text, done) => {
      const s = String(text);
      if (s.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(s) as unknown);
      } catch (err) {
        done(new BadRequest('body', `not JSON (${errorMessage(err)})`), undefined);
      }
    });
    scope.setErrorHandler((err, _req, reply) => {
      if (err instanceof BadRequest) return fail(reply, err);
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 413) return reply.code(413).send({ errorCode: 'ERR_BAD_REQUEST', field: 'body', message: `body: larger than ${BODY_LIMIT} bytes` });
      return fail(reply, err);
    });

    scope.get<{ Querystring: { binding?: string; limit?: string } }>('/dlq', async (req, reply) => {
      try {
        const raw = req.query.limit;
        const limit = raw === undefined || raw === '' ? DEFAULT_LIST_LIMIT : Number(raw);
        if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIST_LIMIT) throw new BadRequest('limit', `'${raw}' is not a count from 0 to ${MAX_LIST_LIMIT}`);
        const binding = req.query.binding === undefined ? undefined : bindingField(req.query.binding, true);
        return await bounded('list dead letters', api.list({ binding, limit }));
      } catch (err) {
        return fail(reply, err);
      }
    });

    scope.get<{ Params: { binding: string; id: string } }>('/dlq/:binding/:id', async (req, reply) => {
      try {
        return await bounded(`show dead letter ${req.params.id}`, api.show(req.params.id, req.params.binding));
      } catch (err) {
        return fail(reply, err);
      }
    });

    for (const action of ['requeue', 'purge'] as const) {
      scope.post(`/dlq/${action}`, async (req, reply) => {
        const refused = guard(req, reply);
        if (refused) return refused;
        try {
          const sel = selection(req);
          return await bounded(`${action} dead letters`, action === 'requeue' ? api.requeue(sel) : api.purge(sel));
        } catch (err) {
          return fail(reply, err);
        }
      });
    }

    scope.post('/queue/purge', async (req, reply) => {
      const refused = guard(req, reply);
      if (refused) return refused;
      try {
        const body = objectBody(req, ['binding']);
        return await bounded('purge the queue', api.purgeQueue(bindingField(body.binding, true)!));
      } catch (err) {
        return fail(reply, err);
      }
    });
  });
}
