/**
 * daprd's publish API (dapr/dapr pkg/api/http/http.go onPublish, onBulkPublish):
 * - `POST|PUT /v1.0/publish/{pubsubname}/{topic...}`: the body wrapped in a CloudEvent (cloudevents.ts) unless
 *   `metadata.rawPayload=true`; `metadata.*` query parameters are the request's metadata; 204 once the broker has it.
 * - `POST|PUT /v1.0-alpha1/publish/bulk/{pubsubname}/{topic...}` (and /v1.0/publish/bulk/...): a JSON list of
 *   `{entryId, event, contentType, metadata}`, each entry published on its own; 204 when all were taken, else 500
 *   with `{"failedEntries":[{"entryId","error"}],"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE"}`.
 * The topic is the rest of the path (it may hold slashes), read from the raw path as Go's router reads it.
 */
import type { MessageMetadata } from '../../backends/types.js';
import type { DaprMetrics } from '../../metrics/dapr.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../../util/timeout.js';
import { goMarshal } from '../http/go-json.js';
import { sendNotFound } from '../http/errors.js';
import type { ApiRequest, Reply } from '../http/router.js';
import type { ApiServer } from '../http/server.js';
import { describeCause } from '../outage.js';
import {
  applyTtl, childSpan, envelopeBytes, isBinaryContentType, isCloudEventContentType, isJsonContentType, isStringContentType,
  newCloudEvent, type TraceContext,
} from '../../pubsub/cloudevents.js';
import { decodeFirst, goTypeOf, plainNumbers } from '../../pubsub/go-decode.js';
import { topicAllowed } from '../../pubsub/scopes.js';
import { parseGoBool } from '../../pubsub/subscriptions.js';
import {
  REASONS, errorString, forbidden, publishFailed, sendPubSubError, statusOf, type PubSubError,
} from './errors.js';
import type { LoadedPubSub } from './load.js';

export interface PublishContext {
  appId: string;
  pubsubs: ReadonlyMap<string, LoadedPubSub>;
  logger: Logger;
  maxBodyBytes: number;
  metrics?: DaprMetrics | undefined;
  /** Bound on one broker call of this component. */
  publishTimeoutMs(ps: LoadedPubSub): number;
}

/** `metadata.<key>` query parameters, first value of each, as Go's url.Query gives them. */
export function requestMetadata(url: string): Record<string, string> {
  const q = url.indexOf('?');
  const out: Record<string, string> = {};
  if (q === -1) return out;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
    if (k.startsWith('metadata.') && !(k.slice(9) in out)) out[k.slice(9)] = v;
  }
  return out;
}

/** Go's PathUnescape: %XX decoded as bytes, '+' kept; undefined for a bad escape. */
function unescapePath(s: string): string | undefined {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Go's escaping of a path: what it writes for a path it decoded, to tell whether the raw form was the default one. */
function escapePath(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The pub/sub name and topic of `/<prefix>/{pubsubname}/{topic...}`: Go's router reads the decoded path, unless the
 * raw path is not Go's default escaping of it (a %2F in a topic), when it reads the raw one.
 */
export function pathParams(url: string, prefix: string): { pubsubName: string; topic: string } | undefined {
  const q = url.indexOf('?');
  const raw = q === -1 ? url : url.slice(0, q);
  const decoded = unescapePath(raw);
  const path = decoded !== undefined && escapePath(decoded) === raw ? decoded : raw;
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash === -1) return undefined;
  return { pubsubName: rest.slice(0, slash), topic: rest.slice(slash + 1) };
}

type Validated = { ok: true; ps: LoadedPubSub; pubsubName: string; topic: string } | { ok: false; error: PubSubError };

/** daprd's validateAndGetPubsubAndTopic: name, then component, then topic. */
function validate(ctx: PublishContext, pubsubName: string, topic: string, metadata: Record<string, string>): Validated {
  if (pubsubName === '') {
    return { ok: false, error: { code: 'ERR_PUBSUB_EMPTY', reason: REASONS.empty, message: 'pubsub name is empty', pubsub: '', metadata, resourceInfo: true } };
  }
  const ps = ctx.pubsubs.get(pubsubName);
  if (!ps) {
    return { ok: false, error: { code: 'ERR_PUBSUB_NOT_FOUND', reason: REASONS.notFound, message: `pubsub ${pubsubName} is not found`, pubsub: pubsubName, metadata, resourceInfo: false } };
  }
  if (topic === '') {
    return { ok: false, error: { code: 'ERR_TOPIC_NAME_EMPTY', reason: REASONS.topicEmpty, message: `topic is empty in pubsub ${pubsubName}`, pubsub: pubsubName, metadata, resourceInfo: true } };
  }
  return { ok: true, ps, pubsubName, topic };
}

function rawPayloadError(pubsubName: string, metadata: Record<string, string>): PubSubError | undefined {
  const v = metadata.rawPayload;
  if (v === undefined || v === '' || parseGoBool(v) !== undefined) return undefined;
  const message = `failed deserializing metadata. Error: rawPayload value must be a valid boolean: actual is '${v}'`;
  return { code: 'ERR_PUBSUB_REQUEST_METADATA', reason: REASONS.metadata, message, pubsub: pubsubName, metadata, resourceInfo: true };
}

function traceOf(req: ApiRequest): TraceContext {
  const tp = req.headers.traceparent;
  const ts = req.headers.tracestate;
  return childSpan(typeof tp === 'string' ? tp : undefined, typeof ts === 'string' ? ts : Array.isArray(ts) ? ts.join(',') : '');
}

/** One event to the broker, bounded; the component's outage report follows each outcome. */
async function toBroker(ctx: PublishContext, ps: LoadedPubSub, topic: string, data: Buffer, metadata: MessageMetadata): Promise<string | undefined> {
  const ms = ctx.publishTimeoutMs(ps);
  try {
    await withTimeout(ps.pubsub.publish(topic, data, metadata), ms, `no answer from the broker within ${ms} ms (is it reachable?); the event may still be stored`);
  } catch (err) {
    const cause = describeCause(err, ps.component);
    ps.publishOutage.failed(cause);
    return cause;
  }
  ps.publishOutage.succeeded();
  return undefined;
}

type Target = { ps: LoadedPubSub; pubsubName: string; topic: string; metadata: Record<string, string> };

/** The component and topic of the path with the request's metadata, or the answer already sent (404s). */
async function target(ctx: PublishContext, req: ApiRequest, reply: Reply, prefix: string): Promise<Target | Reply> {
  const params = pathParams(req.url, prefix);
  if (!params) return sendNotFound(reply, req.method, req.url);
  const metadata = requestMetadata(req.url);
  const v = validate(ctx, params.pubsubName, params.topic, metadata);
  if (!v.ok) return sendPubSubError(reply, v.error);
  return { ps: v.ps, pubsubName: v.pubsubName, topic: v.topic, metadata };
}

async function publishOne(ctx: PublishContext, req: ApiRequest, reply: Reply, prefix: string): Promise<Reply> {
  const t = await target(ctx, req, reply, prefix);
  if (!('ps' in t)) return t;
  const { ps, pubsubName, topic, metadata } = t;
  const body = req.body;
  if (body.truncated) return sendPubSubError(reply, publishFailed(pubsubName, topic, 'http: request body too large'));
  const rawError = rawPayloadError(pubsubName, metadata);
  if (rawError) return sendPubSubError(reply, rawError);
  let data = body.bytes;
  if (metadata.rawPayload === undefined || metadata.rawPayload === '' || parseGoBool(metadata.rawPayload) === false) {
    const contentType = typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : '';
    const built = newCloudEvent({ appId: ctx.appId, topic, pubsubName, contentType, data, trace: traceOf(req), metadata });
    if (!built.ok) {
      return sendPubSubError(reply, {
        code: 'ERR_PUBSUB_CLOUD_EVENTS_SER', reason: REASONS.cloudEvent, message: 'cannot create cloudevent', pubsub: pubsubName,
        metadata: { appID: ctx.appId, error: built.reason }, resourceInfo: true,
      });
    }
    applyTtl(built.envelope, metadata, ps.expires);
    data = envelopeBytes(built.envelope);
  }
  const started = performance.now();
  const refused = !topicAllowed(topic, ps.scopes, ps.scopes.publishing);
  const cause = refused ? undefined : await toBroker(ctx, ps, topic, data, metadata);
  ctx.metrics?.pubsubEgress(pubsubName, topic, !refused && cause === undefined, performance.now() - started);
  if (refused) return sendPubSubError(reply, forbidden(pubsubName, topic, ctx.appId));
  if (cause !== undefined) return sendPubSubError(reply, publishFailed(pubsubName, topic, cause));
  return reply.code(204).send();
}

/** components-contrib ConvertEventToBytes: an entry's event as bytes for its content type, or why not. */
function eventBytes(event: unknown, contentType: string): Buffer | string {
  const mismatch = 'error: mismatch between contentType and event';
  if (isBinaryContentType(contentType)) {
    if (typeof event !== 'string') return mismatch;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(event) || event.length % 4 !== 0) return `error: unable to decode base64 application/octect-stream data: illegal base64 data at input byte ${Math.max(0, event.search(/[^A-Za-z0-9+/=]/))}`;
    return Buffer.from(event, 'base64');
  }
  if (isStringContentType(contentType)) return typeof event === 'string' ? Buffer.from(event, 'utf8') : mismatch;
  if (isJsonContentType(contentType) || isCloudEventContentType(contentType)) return Buffer.from(goMarshal(event));
  return mismatch;
}

interface BulkEntry {
  entryId: string;
  event: Buffer;
  contentType: string;
  metadata: Record<string, string> | undefined;
}

/** Go's case-insensitive field match for one entry of the bulk body. */
function entryField(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const k = Object.keys(o).find((key) => key.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : o[k];
}

async function publishBulk(ctx: PublishContext, req: ApiRequest, reply: Reply, prefix: string): Promise<Reply> {
  const t = await target(ctx, req, reply, prefix);
  if (!('ps' in t)) return t;
  const { ps, pubsubName, topic, metadata } = t;
  const rawError = rawPayloadError(pubsubName, metadata);
  if (rawError) return sendPubSubError(reply, rawError);
  const rawPayload = parseGoBool(metadata.rawPayload ?? '') === true;

  const body = req.body;
  const unmarshal = (why: string): Reply => sendPubSubError(reply, {
    code: 'ERR_PUBSUB_EVENTS_SER', reason: REASONS.unmarshalEvents, pubsub: pubsubName, resourceInfo: true,
    message: `error when unmarshaling the request for topic ${topic} pubsub ${pubsubName}: ${why}`, metadata: { appID: ctx.appId },
  });
  // The events are decoded as Go decodes into `any`: numbers are float64 (JSON.parse's numbers).
  const d = decodeFirst(body.bytes.toString('utf8'));
  if (!d.ok) return unmarshal(body.truncated ? 'http: request body too large' : d.reason);
  const items = d.value === null ? [] : d.value;
  if (!Array.isArray(items)) return unmarshal(`json: cannot unmarshal ${goTypeOf(items)} into Go value of type []http.bulkPublishMessageEntry`);
  const plain = plainNumbers(items.slice()) as unknown[];
  const entries: BulkEntry[] = [];
  const ids = new Set<string>();
  for (const [i, item] of plain.entries()) {
    if (item !== null && (typeof item !== 'object' || Array.isArray(item))) {
      return unmarshal(`json: cannot unmarshal ${goTypeOf(items[i])} into Go value of type http.bulkPublishMessageEntry`);
    }
    const o = (item ?? {}) as Record<string, unknown>;
    const entryId = entryField(o, 'entryId');
    const contentType = entryField(o, 'contentType');
    const meta = entryField(o, 'metadata');
    if (entryId !== undefined && entryId !== null && typeof entryId !== 'string') return unmarshal(`json: cannot unmarshal ${goTypeOf(entryId)} into Go struct field bulkPublishMessageEntry.entryId of type string`);
    if (contentType !== undefined && contentType !== null && typeof contentType !== 'string') return unmarshal(`json: cannot unmarshal ${goTypeOf(contentType)} into Go struct field bulkPublishMessageEntry.contentType of type string`);
    let entryMeta: Record<string, string> | undefined;
    if (meta !== undefined && meta !== null) {
      if (typeof meta !== 'object' || Array.isArray(meta)) return unmarshal(`json: cannot unmarshal ${goTypeOf(meta)} into Go struct field bulkPublishMessageEntry.metadata of type map[string]string`);
      entryMeta = {};
      for (const [k, val] of Object.entries(meta as Record<string, unknown>)) {
        if (val !== null && typeof val !== 'string') return unmarshal(`json: cannot unmarshal ${goTypeOf(val)} into Go struct field bulkPublishMessageEntry.metadata of type string`);
        entryMeta[k] = val ?? '';
      }
    }
    const ct = (contentType as string | null | undefined) ?? '';
    const bytes = eventBytes(entryField(o, 'event') ?? null, ct);
    if (typeof bytes === 'string') {
      return sendPubSubError(reply, {
        code: 'ERR_PUBSUB_EVENTS_SER', reason: REASONS.marshalEnvelope, pubsub: pubsubName, resourceInfo: true,
        message: `error when marshalling cloud event envelope for topic ${topic} pubsub ${pubsubName}: ${bytes}`, metadata: { appID: ctx.appId, error: bytes },
      });
    }
    const id = (entryId as string | null | undefined) ?? '';
    if (id === '' || ids.has(id)) {
      const why = 'entryId is duplicated or not present for entry';
      return sendPubSubError(reply, {
        code: 'ERR_PUBSUB_EVENTS_SER', reason: REASONS.marshalEvents, pubsub: pubsubName, resourceInfo: true,
        message: `error marshaling events to bytes for topic ${topic} pubsub ${pubsubName}. error: ${why}`, metadata: { appID: ctx.appId, error: why },
      });
    }
    ids.add(id);
    // Request metadata fills what an entry's own metadata lacks, and only for an entry that has metadata.
    entries.push({ entryId: id, event: bytes, contentType: ct, metadata: entryMeta && { ...metadata, ...entryMeta } });
  }

  const trace = traceOf(req);
  const datas: Buffer[] = [];
  for (const e of entries) {
    if (rawPayload) {
      datas.push(e.event);
      continue;
    }
    // Each entry gets a span of its own under the request's trace.
    const entryTrace = childSpan(trace.traceparent, trace.tracestate);
    const built = newCloudEvent({ appId: ctx.appId, topic, pubsubName, contentType: e.contentType, data: e.event, trace: entryTrace, metadata: e.metadata ?? {} });
    if (!built.ok) {
      return sendPubSubError(reply, {
        code: 'ERR_PUBSUB_CLOUD_EVENTS_SER', reason: REASONS.cloudEvent, message: 'cannot create cloudevent', pubsub: pubsubName,
        metadata: { appID: ctx.appId, error: built.reason }, resourceInfo: true,
      });
    }
    applyTtl(built.envelope, e.metadata ?? {}, ps.expires);
    datas.push(envelopeBytes(built.envelope));
  }

  const started = performance.now();
  const refused = !topicAllowed(topic, ps.scopes, ps.scopes.publishing);
  const failed: Array<{ entryId: string; error: string }> = [];
  if (!refused) {
    // Each entry published on its own, all at once (daprd's default bulk publisher), in any order.
    const causes = await Promise.all(entries.map((e, i) => toBroker(ctx, ps, topic, datas[i]!, e.metadata ?? {})));
    causes.forEach((cause, i) => {
      if (cause !== undefined) failed.push({ entryId: entries[i]!.entryId, error: cause });
    });
  }
  const published = refused ? 0 : entries.length - failed.length;
  ctx.metrics?.pubsubBulkEgress(pubsubName, topic, !refused && failed.length === 0, published, performance.now() - started);
  if (refused) return sendPubSubError(reply, forbidden(pubsubName, topic, ctx.appId));
  if (failed.length === 0) return reply.code(204).send();
  const err = publishFailed(pubsubName, topic, failed[0]!.error);
  const data = `{"failedEntries":[${failed.map((f) => `{"entryId":${goMarshal(f.entryId)},"error":${goMarshal(f.error)}}`).join(',')}],"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE"}`;
  // daprd also says it in headers: metadata.responseData and metadata.error.
  return reply
    .code(statusOf(err))
    .header('metadata.responseData', data)
    .header('metadata.error', errorString(err))
    .header('content-type', 'application/json')
    .send(Buffer.from(data));
}

export function registerPublish(app: ApiServer, ctx: PublishContext): void {
  const single = async (req: ApiRequest, reply: Reply): Promise<Reply> => {
    // In /v1.0, publish/bulk/... is the bulk API (a static segment wins over the pubsub name in daprd's router).
    if (/^\/v1\.0\/publish\/bulk\//.test(req.url)) return publishBulk(ctx, req, reply, '/v1.0/publish/bulk/');
    return publishOne(ctx, req, reply, '/v1.0/publish/');
  };
  const bulk = async (req: ApiRequest, reply: Reply): Promise<Reply> => publishBulk(ctx, req, reply, '/v1.0-alpha1/publish/bulk/');
  app.route(['POST', 'PUT'], '/v1.0/publish/*', single);
  app.route(['POST', 'PUT'], '/v1.0-alpha1/publish/bulk/*', bulk);
}

