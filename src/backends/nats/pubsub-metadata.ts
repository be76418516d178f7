/**
 * pubsub.jetstream metadata: every field of Dapr's metadata.yaml (components-contrib pubsub/jetstream), read as
 * daprd's code reads it (durations: Go durations or whole seconds; backOff: a comma-separated list), and what qscale
 * does with each: uses it, or refuses it when set (named, with the way out). docs/pubsub-brokers.md lists the same.
 */
import { defineMetadata, parseDuration, type FieldSpec } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import type { ResolvedComponent } from '../types.js';

export const JETSTREAM_PUBSUB_TYPE = 'pubsub.jetstream';

export const jetstreamPubSubMetadata = defineMetadata([
  { name: 'natsURL', type: 'string', required: true, description: 'NATS server URL(s), comma separated. Credentials in the URL are redacted in logs.' },
  // daprd's reference does not flag these as secrets; qscale never prints them all the same.
  { name: 'token', type: 'string', sensitive: true, description: 'Authentication token.' },
  { name: 'jwt', type: 'string', sensitive: true, description: 'Refused when set: qscale has no JWT / nkey login for NATS.' },
  { name: 'seedKey', type: 'string', sensitive: true, description: 'Refused when set (see jwt).' },
  { name: 'tls_client_cert', type: 'string', description: 'Refused when set: qscale has no client-certificate TLS for NATS.' },
  { name: 'tls_client_key', type: 'string', sensitive: true, description: 'Refused when set (see tls_client_cert).' },
  { name: 'name', type: 'string', default: 'dapr.io - pubsub.jetstream', description: 'Connection name the server shows.' },
  { name: 'streamName', type: 'string',
    description: 'The stream, which must exist (daprd does not create it). Default: the stream that takes the topic\'s subject.' },
  { name: 'durableName', type: 'string',
    description: 'Durable consumer name (what KEDA\'s nats-jetstream trigger names consumer). Unset: an ephemeral consumer per subscriber.' },
  { name: 'queueGroupName', type: 'string', description: 'Deliver group: replicas with the same one share the durable consumer\'s events.' },
  { name: 'startSequence', type: 'integer', min: 0, description: 'opt_start_seq, with deliverPolicy sequence.' },
  { name: 'startTime', type: 'integer', default: 0, min: 0, description: 'opt_start_time in Unix seconds, with deliverPolicy time (0: unset).' },
  { name: 'flowControl', type: 'boolean', default: false, description: 'flow_control of the consumer (needs heartbeat).' },
  { name: 'ackWait', type: 'duration', description: 'ack_wait of the consumer; also the NAK delay of a failed event (as daprd).' },
  { name: 'maxDeliver', type: 'integer', min: -1, description: 'max_deliver of the consumer.' },
  { name: 'backOff', type: 'string', description: 'backoff of the consumer: comma-separated durations such as 1s, 5s, 30s.' },
  { name: 'maxAckPending', type: 'integer', min: -1, description: 'max_ack_pending of the consumer.' },
  { name: 'replicas', type: 'integer', min: 0, description: 'num_replicas of the consumer.' },
  { name: 'memoryStorage', type: 'boolean', default: false, description: 'mem_storage of the consumer.' },
  { name: 'rateLimit', type: 'integer', min: 0, description: 'rate_limit_bps of the consumer.' },
  { name: 'heartbeat', type: 'duration', description: 'idle_heartbeat of the consumer.' },
  { name: 'deliverPolicy', type: 'string', enum: ['all', 'last', 'new', 'sequence', 'time'], description: 'Where a new consumer starts (default all).' },
  { name: 'ackPolicy', type: 'string', default: 'explicit', enum: ['explicit', 'all', 'none'], description: 'ack_policy of the consumer.' },
  { name: 'domain', type: 'string', description: 'JetStream domain.' },
  { name: 'apiPrefix', type: 'string', description: 'JetStream API prefix.' },
  { name: 'concurrency', type: 'string', default: 'single', enum: ['single', 'parallel'],
    description: 'single: one event at a time per subscription; parallel: as many as the sidecar allows.' },
] as const);

const REFUSED = new Set(['jwt', 'seedKey', 'tls_client_cert', 'tls_client_key']);

/** What qscale does with a declared field (the reference cross-check and docs read it). */
export function jetstreamPubSubFieldUse(f: FieldSpec): 'used' | 'refused' {
  return REFUSED.has(f.name) ? 'refused' : 'used';
}

export type JetStreamDeliverPolicy = 'all' | 'last' | 'new' | 'sequence' | 'time';

export interface JetStreamPubSubSettings {
  urls: string;
  token: string | undefined;
  connectionName: string;
  streamName: string | undefined;
  durableName: string | undefined;
  queueGroupName: string | undefined;
  deliverPolicy: JetStreamDeliverPolicy;
  startSequence: number | undefined;
  /** ms since the epoch. */
  startTime: number | undefined;
  flowControl: boolean;
  ackWaitMs: number | undefined;
  maxDeliver: number | undefined;
  backOffMs: number[];
  maxAckPending: number | undefined;
  replicas: number | undefined;
  memoryStorage: boolean;
  rateLimit: number | undefined;
  heartbeatMs: number | undefined;
  ackPolicy: 'explicit' | 'all' | 'none';
  domain: string | undefined;
  apiPrefix: string | undefined;
  parallel: boolean;
}

export function parseJetStreamPubSub(c: ResolvedComponent): JetStreamPubSubSettings {
  const ctx = { subject: `component ${c.name} (${c.type})`, where: (f?: string) => c.where(f) };
  const m = jetstreamPubSubMetadata.parse(c.metadata, ctx);
  const bad = (field: string, why: string): ConfigError =>
    new ConfigError(`${ctx.subject}: metadata '${field}' ${why}`, { ...ctx.where(field), field });
  if (m.jwt || m.seedKey) throw bad(m.jwt ? 'jwt' : 'seedKey', 'is not supported: qscale has no JWT / nkey login for NATS (use token, or user:password in natsURL, locally)');
  if (m.tls_client_cert || m.tls_client_key) {
    throw bad(m.tls_client_cert ? 'tls_client_cert' : 'tls_client_key', 'is not supported: qscale has no client-certificate TLS for NATS');
  }
  const backOffMs: number[] = [];
  for (const part of (m.backOff ?? '').split(',')) {
    const t = part.trim();
    if (t === '') continue;
    const ms = parseDuration(t);
    if (ms === undefined) {
      throw bad('backOff', `must be comma-separated durations such as 1s, 5s, 30s (no brackets: daprd cannot read them either), got '${m.backOff ?? ''}'`);
    }
    backOffMs.push(ms);
  }
  // The server sets ack_wait to backOff's first step; daprd's client then finds the durable it made "different" and
  // refuses it from its second start on (an ephemeral consumer is new each time, so it never meets this).
  const firstStep = backOffMs[0];
  if (m.durableName?.trim() && m.ackWait !== undefined && m.ackWait > 0 && firstStep !== undefined && m.ackWait !== firstStep) {
    throw bad('ackWait', `is ${m.ackWait} ms with backOff set: NATS sets the durable consumer's ack wait to backOff's first step (${firstStep} ms), and daprd then refuses that consumer from its second start on; leave ackWait out or make it ${firstStep} ms`);
  }
  const deliverPolicy = (m.deliverPolicy ?? 'all') as JetStreamDeliverPolicy;
  if (deliverPolicy === 'sequence' && !m.startSequence) throw bad('deliverPolicy', "is 'sequence': give startSequence too");
  if (deliverPolicy === 'time' && !m.startTime) throw bad('deliverPolicy', "is 'time': give startTime (Unix seconds) too");
  const positive = (n: number | undefined): number | undefined => (n === undefined || n === 0 ? undefined : n);
  return {
    urls: m.natsURL,
    token: m.token || undefined,
    connectionName: m.name,
    streamName: m.streamName?.trim() || undefined,
    durableName: m.durableName?.trim() || undefined,
    queueGroupName: m.queueGroupName?.trim() || undefined,
    deliverPolicy,
    startSequence: positive(m.startSequence),
    startTime: m.startTime ? m.startTime * 1000 : undefined,
    flowControl: m.flowControl,
    ackWaitMs: positive(m.ackWait),
    maxDeliver: positive(m.maxDeliver),
    backOffMs,
    maxAckPending: positive(m.maxAckPending),
    replicas: positive(m.replicas),
    memoryStorage: m.memoryStorage,
    rateLimit: positive(m.rateLimit),
    heartbeatMs: positive(m.heartbeat),
    ackPolicy: m.ackPolicy as JetStreamPubSubSettings['ackPolicy'],
    domain: m.domain || undefined,
    apiPrefix: m.apiPrefix || undefined,
    parallel: m.concurrency === 'parallel',
  };
}
