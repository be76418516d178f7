/**
 * One event of a subscription to the app, as daprd's HTTP postman delivers it (dapr/dapr
 * pkg/runtime/subscription/subscription.go, postman/http/http.go), and what its answer means:
 * - `POST <route>` with the stored event as body and `content-type: application/cloudevents+json` (for a rawPayload
 *   subscription: a CloudEvent made on delivery, the payload as data_base64), the message metadata as headers
 *   (`pubsubname` among them), a `traceparent` continuing the event's trace, and `dapr-api-token` when APP_API_TOKEN
 *   is set;
 * - 2xx with `{"status":"SUCCESS"}`, an empty status, or no JSON status at all: processed; `RETRY` or an unknown
 *   status: retry; `DROP`: dropped (acked, with a warning); 404: dropped (logged as an error); any other status or
 *   a call that fails: retry.
 * Before the app is called, an expired event (`expiration` past) and one no routing rule takes are dropped.
 */
import type { CloudEvent } from '../../pubsub/cloudevents.js';
import {
  CLOUDEVENT_CONTENT_TYPE, childSpan, eventTraceparent, hasExpired, isBinaryContentType, rawPayloadEvent, readStoredEvent,
} from '../../pubsub/cloudevents.js';
import { decodeFirst, marshal } from '../../pubsub/go-decode.js';
import { chooseRoute, rawPayloadOf, type Subscription } from '../../pubsub/subscriptions.js';
import type { AppChannel } from '../app-channel.js';
import { metadataHeaders } from '../app-channel.js';
import { appPath } from '../bindings.js';

/** How much of the app's answer is read: its status JSON, and the start of a refusal for the log. */
export const ANSWER_BYTES = 64 * 1024;

/** What became of one event. `drop` and `success` ack it; `retry` leaves it to the dead-letter topic or the broker. */
export type Verdict =
  | { kind: 'success' }
  | { kind: 'drop'; why: string; level: 'warn' | 'error' | 'debug'; deadLetter: 'try' | 'must' }
  | { kind: 'retry'; why: string };

export interface Prepared {
  /** The event as the rules and the log see it. */
  event: CloudEvent;
  body: Buffer;
  id: string;
}

/** The event daprd routes and the body it posts, or why it cannot read the message (a retry, or the DLT). */
export function prepareEvent(sub: Subscription, data: Buffer, metadata: Readonly<Record<string, string>>): Prepared | { error: string } {
  const raw = rawPayloadOf(sub.metadata);
  if (typeof raw === 'object') return { error: `error deserializing pubsub metadata: ${raw.error}` };
  const contentType = metadata['content-type'] ?? 'application/json';
  if (raw) {
    const event = rawPayloadEvent(data, sub.topic, sub.pubsubName, metadata);
    return { event, body: Buffer.from(marshal(event)), id: String(event.id) };
  }
  if (isBinaryContentType(contentType)) {
    // A binary CloudEvent: its attributes arrive as ce_ metadata.
    const event: CloudEvent = {};
    for (const [k, v] of Object.entries(metadata)) if (k.toLowerCase().startsWith('ce_')) event[k.toLowerCase().slice(3)] = v;
    event.data = data.toString('base64');
    event.datacontenttype = contentType;
    return { event, body: data, id: String(event.id ?? '') };
  }
  const read = readStoredEvent(data, metadata);
  if (!read.ok) return { error: `error deserializing cloud event in pubsub ${sub.pubsubName} and topic ${sub.topic}: ${read.reason}` };
  return { event: read.event, body: data, id: String(read.event.id ?? '') };
}

/** The checks before the app is called: expired, and which route. */
export function route(sub: Subscription, p: Prepared): { path: string } | Verdict {
  if (hasExpired(p.event)) {
    return { kind: 'drop', level: 'warn', deadLetter: 'try', why: `dropping expired pub/sub event ${p.id} as of ${String(p.event.expiration)}` };
  }
  const choice = chooseRoute(sub.rules, p.event);
  if (choice.kind === 'error') return { kind: 'retry', why: `error finding matching route for event ${p.id} in pubsub ${sub.pubsubName} and topic ${sub.topic}: ${choice.reason}` };
  if (choice.kind === 'none') return { kind: 'drop', level: 'debug', deadLetter: 'try', why: `no matching route for event ${p.id} in pubsub ${sub.pubsubName} and topic ${sub.topic}; skipping` };
  return { path: choice.path };
}

/** The app's answer as daprd reads it. */
export function verdictOf(statusCode: number, body: Buffer, p: Prepared, topic: string): Verdict {
  if (statusCode >= 200 && statusCode <= 299) {
    const d = decodeFirst(body.toString('utf8'));
    if (!d.ok || d.value === null || typeof d.value !== 'object' || Array.isArray(d.value)) return { kind: 'success' };
    const field = Object.keys(d.value).find((k) => k === 'status') ?? Object.keys(d.value).find((k) => k.toLowerCase() === 'status');
    const status = field === undefined ? '' : (d.value as Record<string, unknown>)[field];
    if (status !== null && status !== undefined && typeof status !== 'string') return { kind: 'success' };
    switch (status ?? '') {
      case '':
      case 'SUCCESS':
        return { kind: 'success' };
      case 'RETRY':
        return { kind: 'retry', why: `RETRY status returned from app while processing pub/sub event ${p.id}` };
      case 'DROP':
        return { kind: 'drop', level: 'warn', deadLetter: 'must', why: `DROP status returned from app while processing pub/sub event ${p.id}` };
      default:
        return { kind: 'retry', why: `unknown status returned from app while processing pub/sub event ${p.id}, status: ${String(status)}` };
    }
  }
  const text = body.toString('utf8').slice(0, 200);
  if (statusCode === 404) {
    return { kind: 'drop', level: 'error', deadLetter: 'must', why: `non-retriable error returned from app while processing pub/sub event ${p.id}: ${text}. status code returned: 404` };
  }
  return { kind: 'retry', why: `retriable error returned from app while processing pub/sub event ${p.id}, topic: ${topic}, body: ${text}. status code returned: ${statusCode}` };
}

/** Posts the event to the app at `path` and reads the answer. */
export async function postEvent(channel: AppChannel, path: string, p: Prepared, metadata: Readonly<Record<string, string>>, topic: string): Promise<Verdict> {
  const headers = metadataHeaders(metadata);
  if (typeof headers === 'string') return { kind: 'retry', why: `error returned from app channel while sending pub/sub event to app: ${headers}` };
  headers['content-type'] = CLOUDEVENT_CONTENT_TYPE;
  headers.traceparent = childSpan(eventTraceparent(p.event)).traceparent;
  let answer: { statusCode: number; body: Buffer };
  try {
    answer = await channel.exchange({ method: 'POST', path: appPath(path), headers, body: p.body, keepBytes: ANSWER_BYTES, limited: true });
  } catch (err) {
    return { kind: 'retry', why: `error returned from app channel while sending pub/sub event to app: ${(err as Error).message}` };
  }
  return verdictOf(answer.statusCode, answer.body, p, topic);
}
