/**
 * pubsub.rabbitmq's events on the wire, as daprd's component writes and reads them (components-contrib
 * pubsub/rabbitmq publishSync, handleMessage; common/component/rabbitmq ApplyMetadataToPublishing).
 * Out: content type text/plain unless the metadata gives contentType; messageID, correlationID and type become the
 * properties of those names (keys matched exactly, then in any case); `priority` (exactly that key) the priority,
 * clamped to 0-255; `ttl` / `ttlInSeconds` the expiration, else the component's ttlInSeconds; deliveryMode as
 * configured; no headers. A priority or TTL daprd cannot read is dropped, with a warning, as daprd drops it.
 * In: no metadata, unless publishMessagePropertiesToMetadata: then metadata.messageid, metadata.correlationid,
 * metadata.type, metadata.contenttype and metadata.<header> for each header.
 */
import type { ConsumeMessage, Options } from 'amqplib';
import type { MessageMetadata } from '../types.js';
import { daprTtl } from '../dapr-ttl.js';
import { lookup } from './message.js';

export interface PublishDefaults {
  deliveryMode: number;
  defaultTtlMs: number | undefined;
}

/** `dropped`: told of each entry daprd would drop (with why), to warn once. */
export function pubsubPublishOptions(md: MessageMetadata, d: PublishDefaults, dropped: (why: string) => void): Options.Publish {
  const opts: Options.Publish = { contentType: lookup(md, 'contentType') ?? 'text/plain' };
  // Go leaves a delivery mode of 0 out of the frame; 1 and 2 are sent as they are.
  if (d.deliveryMode > 0) opts.deliveryMode = d.deliveryMode;
  const ttl = daprTtl(md);
  if (ttl && 'error' in ttl) {
    dropped(`metadata '${ttl.key}' must be ${ttl.error}, got '${ttl.value}': the event is published without it, as daprd publishes it`);
  }
  const ttlMs = ttl && !('error' in ttl) ? Math.trunc(ttl.ms) : d.defaultTtlMs;
  if (ttlMs !== undefined) opts.expiration = String(ttlMs);
  const priority = md.priority;
  if (priority !== undefined && priority !== '') {
    if (/^[+-]?\d+$/.test(priority.trim())) opts.priority = Math.min(255, Math.max(0, Number(priority.trim())));
    else dropped(`metadata 'priority' must be an integer, got '${priority}': the event is published without a priority, as daprd publishes it`);
  }
  const messageId = lookup(md, 'messageID');
  if (messageId !== undefined) opts.messageId = messageId;
  const correlationId = lookup(md, 'correlationID');
  if (correlationId !== undefined) opts.correlationId = correlationId;
  const type = lookup(md, 'type');
  if (type !== undefined) opts.type = type;
  return opts;
}

/** What daprd gives the app with publishMessagePropertiesToMetadata (else nothing). */
export function pubsubMetadataOf(msg: ConsumeMessage, withProperties: boolean): MessageMetadata {
  const out: MessageMetadata = {};
  if (!withProperties) return out;
  const p = msg.properties;
  if (typeof p.messageId === 'string' && p.messageId !== '') out['metadata.messageid'] = p.messageId;
  if (typeof p.correlationId === 'string' && p.correlationId !== '') out['metadata.correlationid'] = p.correlationId;
  if (typeof p.type === 'string' && p.type !== '') out['metadata.type'] = p.type;
  if (typeof p.contentType === 'string' && p.contentType !== '') out['metadata.contenttype'] = p.contentType;
  for (const [k, v] of Object.entries(p.headers ?? {})) {
    if (v === undefined || v === null) continue;
    out[`metadata.${k}`] = Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

/**
 * 1 on the first delivery. A quorum queue counts earlier deliveries in x-delivery-count; a classic queue only says
 * "redelivered" (then 2, at least).
 */
export function pubsubDeliveryCount(msg: ConsumeMessage): number {
  const raw = msg.properties.headers?.['x-delivery-count'] as unknown;
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw + 1;
  return msg.fields.redelivered ? 2 : 1;
}
