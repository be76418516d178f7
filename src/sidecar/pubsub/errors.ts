/**
 * The pub/sub API's errors, declared once, as daprd answers them (dapr/dapr pkg/api/errors/pubsub.go,
 * pkg/messages/errorcodes, dapr/kit errors): status, `errorCode`, `message`, and `details` — a
 * google.rpc.ResourceInfo (where daprd adds one) and a google.rpc.ErrorInfo with daprd's reason and metadata.
 */
import type { Reply } from '../http/router.js';
import { marshal } from '../../pubsub/go-decode.js';

export const PUBSUB_ERRORS = {
  ERR_PUBSUB_EMPTY: { status: 404, description: 'the pub/sub name in the path is empty' },
  ERR_PUBSUB_NOT_FOUND: { status: 404, description: 'no pub/sub component of that name is loaded (also when none is configured: daprd no longer answers ERR_PUBSUB_NOT_CONFIGURED over HTTP)' },
  ERR_PUBSUB_NOT_CONFIGURED: { status: 400, description: 'declared by daprd for a sidecar without pub/sub; its HTTP API answers ERR_PUBSUB_NOT_FOUND instead, and so does qscale' },
  ERR_TOPIC_NAME_EMPTY: { status: 404, description: 'the topic in the path is empty' },
  ERR_PUBSUB_FORBIDDEN: { status: 403, description: 'the topic is outside allowedTopics, or the component\'s publishingScopes do not give it to this app' },
  ERR_PUBSUB_REQUEST_METADATA: { status: 400, description: 'metadata.rawPayload is not a boolean' },
  ERR_PUBSUB_CLOUD_EVENTS_SER: { status: 500, description: 'a body sent as application/cloudevents+json is not a JSON object' },
  ERR_PUBSUB_EVENTS_SER: { status: 400, description: 'bulk publish: the body is not a list of entries, an entry\'s event does not fit its contentType, or an entryId is missing or repeated' },
  ERR_PUBSUB_PUBLISH_MESSAGE: { status: 500, description: 'the broker did not take the event (bulk publish: with the failed entries), or the body is over --max-body-size' },
} as const;

export type PubSubErrorCode = keyof typeof PUBSUB_ERRORS;

/** daprd's ErrorInfo reasons (the `details[].reason` clients may switch on). */
export const REASONS = {
  empty: 'DAPR_PUBSUB_NAME_EMPTY',
  notFound: 'DAPR_PUBSUB_NOT_FOUND',
  topicEmpty: 'DAPR_PUBSUB_TOPIC_NAME_EMPTY',
  forbidden: 'DAPR_PUBSUB_FORBIDDEN',
  metadata: 'DAPR_PUBSUB_METADATA_DESERIALIZATION',
  cloudEvent: 'DAPR_PUBSUB_CLOUD_EVENT_CREATION',
  marshalEnvelope: 'DAPR_PUBSUB_MARSHAL_ENVELOPE',
  marshalEvents: 'DAPR_PUBSUB_MARSHAL_EVENTS',
  unmarshalEvents: 'DAPR_PUBSUB_UNMARSHAL_EVENTS',
  publish: 'DAPR_PUBSUB_PUBLISH_MESSAGE',
} as const;

/** gRPC code names daprd's error strings carry ("api error: code = Internal desc = ..."). */
const GRPC_CODE: Record<number, string> = { 400: 'InvalidArgument', 403: 'PermissionDenied', 404: 'NotFound', 500: 'Internal' };

export interface PubSubError {
  code: PubSubErrorCode;
  reason: string;
  message: string;
  pubsub: string;
  /** The ErrorInfo metadata (request metadata, or {topic, error}, or {appID, error}). */
  metadata: Record<string, string>;
  /** daprd leaves out the ResourceInfo for an unknown pub/sub. */
  resourceInfo: boolean;
  /** Overrides the status of the code (NotFound raised by the broker side is a 400 in daprd). */
  status?: number;
  /** The gRPC code name of daprd's error string, where it is not the status' usual one. */
  grpc?: string;
}

/** The JSON daprd writes for the error. */
export function errorBody(e: PubSubError): string {
  const details: unknown[] = [];
  if (e.resourceInfo) {
    details.push({
      '@type': 'type.googleapis.com/google.rpc.ResourceInfo', resource_type: 'pubsub', resource_name: e.pubsub, owner: '', description: e.message,
    });
  }
  details.push({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: e.reason, domain: 'dapr.io', metadata: e.metadata });
  return `{"errorCode":${marshal(e.code)},"message":${marshal(e.message)},"details":[${details.map(marshal).join(',')}]}`;
}

export function statusOf(e: PubSubError): number {
  return e.status ?? PUBSUB_ERRORS[e.code].status;
}

/** daprd's error as a string (what it puts in the bulk publish `metadata.error` header). */
export function errorString(e: PubSubError): string {
  return `api error: code = ${e.grpc ?? GRPC_CODE[statusOf(e)] ?? 'Unknown'} desc = ${e.message}`;
}

export function sendPubSubError(reply: Reply, e: PubSubError): Reply {
  // As bytes: daprd's content type is application/json, with no charset.
  return reply.code(statusOf(e)).header('content-type', 'application/json').send(Buffer.from(errorBody(e)));
}

export function publishFailed(pubsub: string, topic: string, cause: string): PubSubError {
  return {
    code: 'ERR_PUBSUB_PUBLISH_MESSAGE', reason: REASONS.publish, pubsub, resourceInfo: true,
    message: `error when publishing to topic ${topic} in pubsub ${pubsub}: ${cause}`, metadata: { topic, error: cause },
  };
}

export function forbidden(pubsub: string, topic: string, appId: string): PubSubError {
  const cause = `topic ${topic} is not allowed for app id ${appId}`;
  return {
    code: 'ERR_PUBSUB_FORBIDDEN', reason: REASONS.forbidden, pubsub, resourceInfo: true, message: cause,
    metadata: { topic, error: `topic ${topic} is not allowed for app id ${appId}` }, grpc: 'PermissionDenied',
  };
}
