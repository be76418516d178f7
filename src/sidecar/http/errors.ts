/**
 * Every error the sidecar's HTTP API answers with, declared once: status and stable code. Where daprd has the same
 * failure, the code and status are daprd's, so clients that switch on them keep working.
 */
import type { Reply } from './router.js';

export const API_ERRORS = {
  ERR_MALFORMED_REQUEST: { status: 400, description: 'the request body is not the JSON the endpoint expects, or is over --max-body-size before its JSON ends; or the URL has a bad percent-escape' },
  ERR_INVOKE_OUTPUT_BINDING: { status: 500, description: 'the output binding call failed (unknown binding, operation, broker error)' },
  ERR_HEALTH_NOT_READY: { status: 500, description: 'app not reachable yet, stopping, or an input binding cannot receive (its broker is unreachable)' },
  ERR_HEALTH_APPID_NOT_MATCH: { status: 500, description: 'GET /v1.0/healthz?appid=<id> asked for another app id' },
  ERR_OUTBOUND_HEALTH_NOT_READY: { status: 500, description: 'components are not loaded yet' },
  ERR_NOT_FOUND: { status: 404, description: 'no such API route' },
  ERR_INTERNAL: { status: 500, description: 'an unexpected failure inside the sidecar' },
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** Dapr's error body: `{"errorCode": "...", "message": "..."}`. */
export function sendError(reply: Reply, code: ApiErrorCode, message: string): Reply {
  return reply.code(API_ERRORS[code].status).type('application/json; charset=utf-8').send(JSON.stringify({ errorCode: code, message }));
}

/** The answer for a method and path no route serves (also a route's own "not this path after all"). */
export function sendNotFound(reply: Reply, method: string, url: string): Reply {
  reply.routed = false;
  return sendError(reply, 'ERR_NOT_FOUND', `no API route for ${method} ${url.split('?')[0]}`);
}
