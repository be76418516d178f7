/**
 * CloudEvents 1.0 envelopes exactly as daprd builds them (dapr/dapr pkg/runtime/pubsub/cloudevents.go,
 * components-contrib pubsub/envelope.go): on publish, around the request body or, for a body sent as
 * `application/cloudevents+json`, by filling the fields that event lacks; on delivery, from a raw payload; and the
 * `expiration` a TTL adds when the component does not expire messages itself.
 *
 * Fields of an envelope built here: id (UUID v4, or metadata cloudevent.id), source (the app id), type
 * (com.dapr.event.sent), specversion 1.0, datacontenttype (the request's content type, text/plain when none), topic,
 * pubsubname, traceid and traceparent (the same W3C traceparent), tracestate, time (RFC 3339, local offset, seconds),
 * and data (JSON content types: the JSON value, numbers as written; a body that is not JSON: the text) or data_base64
 * (application/octet-stream, application/cloudevents+protobuf); subject when metadata cloudevent.subject gives one.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { daprTtl } from '../backends/dapr-ttl.js';
import { decodeFirst, decodeWhole, goTypeOf, marshal } from './go-decode.js';

export const CLOUDEVENT_CONTENT_TYPE = 'application/cloudevents+json';
export const DEFAULT_EVENT_TYPE = 'com.dapr.event.sent';
export const DEFAULT_BULK_EVENT_TYPE = 'com.dapr.event.sent.bulk';
export const DEFAULT_SOURCE = 'Dapr';
export const SPEC_VERSION = '1.0';

export type CloudEvent = Record<string, unknown>;

/** components-contrib contenttype: a type matches with or without parameters, case-insensitively. */
function isType(contentType: string, expected: string): boolean {
  const lower = contentType.toLowerCase();
  if (lower === expected) return true;
  const semi = lower.indexOf(';');
  return semi >= 0 && lower.slice(0, semi) === expected;
}

export const isCloudEventContentType = (ct: string): boolean => isType(ct, CLOUDEVENT_CONTENT_TYPE);
export const isJsonContentType = (ct: string): boolean => isType(ct, 'application/json');
export const isBinaryContentType = (ct: string): boolean => isType(ct, 'application/octet-stream');
export const isStringContentType = (ct: string): boolean => ct.toLowerCase().startsWith('text/') || isType(ct, 'application/xml');

/** W3C trace context: what an envelope carries and what the app gets as headers. */
export interface TraceContext {
  traceparent: string;
  tracestate: string;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id and flags of a valid W3C traceparent (version ff, all-zero ids refused), else undefined. */
export function parseTraceparent(value: string | undefined): { traceId: string; flags: string } | undefined {
  const m = TRACEPARENT_RE.exec((value ?? '').trim());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  return { traceId: m[2]!, flags: m[4]! };
}

/**
 * daprd starts a span of its own for each call: the caller's trace when its traceparent is valid (the caller's
 * sampling flag kept, its tracestate carried), else a new trace; its default sampling rate (1 in 10,000) leaves a new
 * trace unsampled.
 */
export function childSpan(parentTraceparent: string | undefined, parentTracestate = ''): TraceContext {
  const parent = parseTraceparent(parentTraceparent);
  const spanId = randomBytes(8).toString('hex');
  if (parent) return { traceparent: `00-${parent.traceId}-${spanId}-${parent.flags}`, tracestate: parentTracestate.trim() };
  return { traceparent: `00-${randomBytes(16).toString('hex')}-${spanId}-00`, tracestate: '' };
}

/** Go's time.Now().Format(time.RFC3339): local time with its offset (Z in UTC), whole seconds. */
export function rfc3339(d: Date, utc = false): string {
  const offsetMin = utc ? 0 : -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offsetMin * 60_000);
  const base = local.toISOString().slice(0, 19);
  if (offsetMin === 0) return `${base}Z`;
  const sign = offsetMin > 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  return `${base}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** The envelope fields metadata may set (mapstructure WeakDecode: names matched case-insensitively). */
const OVERRIDES = ['id', 'traceid', 'tracestate', 'source', 'type', 'traceparent', 'subject'] as const;
type Override = (typeof OVERRIDES)[number];

function overrides(metadata: Readonly<Record<string, string>>): Partial<Record<Override, string>> {
  const out: Partial<Record<Override, string>> = {};
  for (const [k, v] of Object.entries(metadata)) {
    const lower = k.toLowerCase();
    if (!lower.startsWith('cloudevent.')) continue;
    const field = lower.slice('cloudevent.'.length) as Override;
    if ((OVERRIDES as readonly string[]).includes(field)) out[field] = v;
  }
  return out;
}

export interface PublishedEvent {
  appId: string;
  topic: string;
  pubsubName: string;
  /** The request's Content-Type header ('' when absent). */
  contentType: string;
  data: Buffer;
  trace: TraceContext;
  /** The request's metadata (cloudevent.* overrides, ttl). */
  metadata: Readonly<Record<string, string>>;
  now?: Date;
}

export type EnvelopeResult = { ok: true; envelope: CloudEvent } | { ok: false; reason: string };

/** daprd's NewCloudEvent: an existing CloudEvent completed, or a new envelope around the data. */
export function newCloudEvent(e: PublishedEvent): EnvelopeResult {
  const now = e.now ?? new Date();
  if (isCloudEventContentType(e.contentType)) return fromCloudEvent(e.data, e.topic, e.pubsubName, e.trace, now);
  const o = overrides(e.metadata);
  const id = o.id ?? '';
  const source = o.source ?? e.appId;
  const type = o.type ?? '';
  // traceparent supersedes traceid; both fields then carry the same value.
  const traceId = o.traceparent ? o.traceparent : (o.traceid ?? e.trace.traceparent);
  const traceState = o.tracestate ?? e.trace.tracestate;
  const contentType = e.contentType === '' ? 'text/plain' : e.contentType;
  const envelope: CloudEvent = {
    id: id === '' ? randomUUID() : id,
    specversion: SPEC_VERSION,
    datacontenttype: contentType,
    source: source === '' ? DEFAULT_SOURCE : source,
    type: type === '' ? DEFAULT_EVENT_TYPE : type,
    topic: e.topic,
    pubsubname: e.pubsubName,
    traceid: traceId,
    traceparent: traceId,
    tracestate: traceState,
    time: rfc3339(now),
  };
  if (isJsonContentType(contentType)) {
    const d = decodeFirst(e.data.toString('utf8'));
    envelope.data = d.ok ? d.value : e.data.toString('utf8');
  } else if (isBinaryContentType(contentType) || isType(contentType, 'application/cloudevents+protobuf')) {
    envelope.data_base64 = e.data.toString('base64');
  } else {
    envelope.data = e.data.toString('utf8');
  }
  if (o.subject) envelope.subject = o.subject;
  return { ok: true, envelope };
}

/** components-contrib FromCloudEvent: the app's own event, with topic and pubsubname set and missing fields filled. */
function fromCloudEvent(body: Buffer, topic: string, pubsubName: string, trace: TraceContext, now: Date): EnvelopeResult {
  const d = decodeFirst(body.toString('utf8'));
  if (!d.ok) return { ok: false, reason: d.reason };
  if (d.value === null || typeof d.value !== 'object' || Array.isArray(d.value)) {
    return { ok: false, reason: `json: cannot unmarshal ${goTypeOf(d.value)} into Go value of type map[string]interface {}` };
  }
  const m = d.value as CloudEvent;
  if (!('time' in m)) m.time = rfc3339(now);
  if (!('traceid' in m)) {
    m.traceid = trace.traceparent;
    m.traceparent = trace.traceparent;
  }
  if (!('tracestate' in m)) m.tracestate = trace.tracestate;
  m.topic = topic;
  m.pubsubname = pubsubName;
  if (m.source === undefined || m.source === null) m.source = DEFAULT_SOURCE;
  if (m.type === undefined || m.type === null) m.type = DEFAULT_EVENT_TYPE;
  if (m.specversion === undefined || m.specversion === null) m.specversion = SPEC_VERSION;
  return { ok: true, envelope: m };
}

/**
 * daprd's ApplyMetadata: a ttl (or ttlInSeconds) in the metadata sets `expiration` (now + ttl, UTC, RFC 3339) when the
 * component does not expire messages itself; an unreadable ttl is ignored here (the component may refuse it).
 */
export function applyTtl(envelope: CloudEvent, metadata: Readonly<Record<string, string>>, componentExpires: boolean, now = new Date()): void {
  if (componentExpires) return;
  const ttl = daprTtl(metadata);
  if (!ttl || 'error' in ttl) return;
  envelope.expiration = rfc3339(new Date(now.getTime() + ttl.ms), true);
}

/** The bytes daprd stores for an envelope (json.Marshal: keys sorted). */
export function envelopeBytes(envelope: CloudEvent): Buffer {
  return Buffer.from(marshal(envelope));
}

/** components-contrib HasExpired: an `expiration` in RFC 3339 that is past; one that cannot be read never expires. */
export function hasExpired(event: CloudEvent, now = Date.now()): boolean {
  const e = event.expiration;
  if (e === undefined || e === '' || e === null) return false;
  const text = String(e);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text)) return false;
  const t = Date.parse(text);
  return Number.isFinite(t) && t < now;
}

/**
 * The envelope daprd delivers for a subscription with rawPayload: a new id each delivery, the bytes as data_base64,
 * application/octet-stream, and the trace fields the message carries in its metadata.
 */
export function rawPayloadEvent(data: Buffer, topic: string, pubsubName: string, metadata: Readonly<Record<string, string>>): CloudEvent {
  const ce: CloudEvent = {
    id: randomUUID(),
    specversion: SPEC_VERSION,
    datacontenttype: 'application/octet-stream',
    source: DEFAULT_SOURCE,
    type: DEFAULT_EVENT_TYPE,
    topic,
    pubsubname: pubsubName,
    data_base64: data.toString('base64'),
  };
  if (metadata.traceid !== undefined) ce.traceid = metadata.traceid;
  if (metadata.traceparent !== undefined) {
    ce.traceparent = metadata.traceparent;
    ce.traceid = metadata.traceparent;
  }
  if (metadata.tracestate !== undefined) ce.tracestate = metadata.tracestate;
  return ce;
}

export type ReadEvent = { ok: true; event: CloudEvent } | { ok: false; reason: string };

/**
 * A stored event as daprd reads it before delivery (json.Unmarshal into a map): the whole body must be a JSON
 * object; trace fields missing from it are taken from the message metadata.
 */
export function readStoredEvent(data: Buffer, metadata: Readonly<Record<string, string>>): ReadEvent {
  const d = decodeWhole(data.toString('utf8'));
  if (!d.ok) return d;
  if (d.value !== null && (typeof d.value !== 'object' || Array.isArray(d.value))) {
    return { ok: false, reason: `json: cannot unmarshal ${goTypeOf(d.value)} into Go value of type map[string]interface {}` };
  }
  const event = (d.value ?? {}) as CloudEvent;
  if (!('traceid' in event) && metadata.traceid !== undefined) event.traceid = metadata.traceid;
  if (!('traceparent' in event) && metadata.traceparent !== undefined) {
    event.traceparent = metadata.traceparent;
    event.traceid = metadata.traceparent;
  }
  if (!('tracestate' in event) && metadata.tracestate !== undefined) event.tracestate = metadata.tracestate;
  return { ok: true, event };
}

/** The trace an event carries (traceparent, else traceid), when it is a string. */
export function eventTraceparent(event: CloudEvent): string | undefined {
  const v = event.traceparent ?? event.traceid;
  return typeof v === 'string' ? v : undefined;
}
