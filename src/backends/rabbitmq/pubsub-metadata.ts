/**
 * pubsub.rabbitmq metadata: the fields of Dapr's metadata.yaml with the defaults daprd applies (components-contrib
 * pubsub/rabbitmq createMetadata), plus what its code reads beside them (consumerID, concurrencyMode, host) and
 * qscale's requeue back-off. Declared once: parsing, errors, redaction and docs come from here;
 * test/backends/rabbitmq/pubsub-metadata.test.ts cross-checks it with the reference metadata.yaml.
 *
 * Where daprd and its metadata.yaml disagree, qscale does what daprd does: `durable` is documented "false" but
 * daprd's code defaults it to true, and a queue or exchange declared with the other durability cannot be declared
 * again by the other side.
 */
import { defineMetadata, type MetadataContext } from '../../components/metadata.js';
import { ConfigError } from '../../errors.js';
import { daprTtl, withoutTtl } from '../dapr-ttl.js';
import { redeliveryFields, redeliveryPolicy, type RedeliveryPolicy } from '../redelivery.js';
import type { ResolvedComponent } from '../types.js';

export const RABBITMQ_PUBSUB_TYPE = 'pubsub.rabbitmq';

export const EXCHANGE_KINDS = ['fanout', 'topic', 'direct', 'headers'] as const;

export const rabbitmqPubSubMetadata = defineMetadata([
  { name: 'connectionString', type: 'string', sensitive: true, aliases: ['host'],
    description: 'amqp://[user][:password]@host[:port][/vhost] (or amqps://). Or give hostname, username and password. ' +
      "'host' is read as its deprecated name, as daprd reads it." },
  { name: 'protocol', type: 'string', enum: ['amqp', 'amqps'],
    description: 'amqp or amqps, with hostname; it must match the scheme of connectionString when both are given.' },
  { name: 'hostname', type: 'string', description: "Host (and port) to connect to when connectionString is not given. Default 'localhost'." },
  { name: 'username', type: 'string', description: 'User, with hostname.' },
  { name: 'password', type: 'string', sensitive: true, description: 'Password, with hostname and username.' },
  { name: 'caCert', type: 'string', description: 'CA certificate (PEM) trusted for amqps.' },
  { name: 'clientCert', type: 'string', sensitive: true, description: 'Client certificate (PEM) for amqps.' },
  { name: 'clientKey', type: 'string', sensitive: true, description: 'Client key (PEM) for amqps.' },
  { name: 'saslExternal', type: 'boolean', default: false,
    description: 'With amqps and caCert, clientCert and clientKey: log in as the certificate (SASL EXTERNAL).' },
  { name: 'consumerID', type: 'string',
    description: "Names this app's queue on every topic: '<consumerID>-<topic>'. Default: the app id." },
  { name: 'durable', type: 'boolean', default: true,
    description: "Declare the topic's exchange and the app's queue durable. daprd's default is true (its metadata.yaml says false)." },
  { name: 'deletedWhenUnused', type: 'boolean', default: true,
    description: 'Declare the exchange and the queue auto-delete: the queue goes (with its messages) when its last consumer leaves.' },
  { name: 'exchangeKind', type: 'string', default: 'fanout', enum: EXCHANGE_KINDS,
    description: "Kind of the topic's exchange; with topic, direct or headers the routingKey metadata decides which queues get an event." },
  { name: 'maxLen', type: 'integer', min: 0, description: 'x-max-length of the queue (and of its dead-letter queue). 0 or absent: no limit.' },
  { name: 'maxLenBytes', type: 'integer', min: 0,
    description: 'x-max-length-bytes of the queue (and of its dead-letter queue). 0 or absent: no limit.' },
  { name: 'enableDeadLetter', type: 'boolean', default: false,
    description: "A failed event (nacked without requeue) goes to the queue 'dlq-<queue>' through the exchange 'dlx-<queue>'." },
  { name: 'requeueInFailure', type: 'boolean', default: false,
    description: 'A failed event goes back to the queue. false (daprd\'s default): it is dropped, or dead-lettered with enableDeadLetter.' },
  { name: 'prefetchCount', type: 'integer', default: 0, min: 0, max: 255,
    description: 'Unacked events per consumer at most. 0: no limit of its own; qscale never holds more than its handlers can take.' },
  { name: 'concurrency', type: 'string', default: 'parallel', enum: ['parallel', 'single'],
    description: 'Declared by Dapr, but daprd reads concurrencyMode instead and so does qscale: this one alone changes nothing.' },
  { name: 'concurrencyMode', type: 'string', enum: ['parallel', 'single'],
    description: 'single: one event at a time. parallel (default): as many as the sidecar allows.' },
  { name: 'deliveryMode', type: 'integer', default: 0, min: 0, max: 2,
    description: 'Delivery mode of published events: 2 persistent, 0 or 1 transient.' },
  { name: 'autoAck', type: 'boolean', default: false,
    description: 'The broker forgets an event as it hands it over: a failed event, or one in hand when the subscriber stops, is lost.' },
  { name: 'publisherConfirm', type: 'boolean', default: false,
    description: 'Accepted, no effect: qscale always waits for the broker to confirm a published event.' },
  { name: 'reconnectWaitSeconds', type: 'duration', default: '3s',
    description: 'Wait between reconnect attempts (a duration, or whole seconds).' },
  { name: 'ttlInSeconds', type: 'duration',
    description: "Time to live of every published event without a 'ttl' / 'ttlInSeconds' of its own (a duration or whole seconds)." },
  { name: 'clientName', type: 'string', description: 'Connection name the broker shows. Default qscale:<component>.' },
  { name: 'heartBeat', type: 'duration', default: '10s', description: 'AMQP heartbeat of the connection.' },
  { name: 'publishMessagePropertiesToMetadata', type: 'boolean', default: false,
    description: 'Give the app an event\'s AMQP properties and headers as metadata.messageid, metadata.<header>, ...' },
  // qscale's: with requeueInFailure only, the wait before a failed event goes back (0s: at once, as daprd does).
  ...redeliveryFields,
] as const);

export interface RabbitmqPubSubSettings {
  url: string;
  tls: { ca?: string; cert?: string; key?: string; external: boolean };
  /** Default consumerID; undefined = the app id. */
  consumerID: string | undefined;
  durable: boolean;
  autoDelete: boolean;
  exchangeKind: (typeof EXCHANGE_KINDS)[number];
  maxLen: number | undefined;
  maxLenBytes: number | undefined;
  enableDeadLetter: boolean;
  requeueInFailure: boolean;
  prefetchCount: number;
  single: boolean;
  deliveryMode: number;
  autoAck: boolean;
  reconnectWaitMs: number;
  /** Whole ms, or undefined: events without a TTL of their own never expire. */
  defaultTtlMs: number | undefined;
  connectionName: string | undefined;
  heartbeatSeconds: number;
  propertiesToMetadata: boolean;
  redelivery: RedeliveryPolicy;
  /** Accepted and without effect here (as in daprd, or because qscale always does it): one line each, said once. */
  notices: string[];
}

export function pubsubContext(c: ResolvedComponent): MetadataContext {
  return { subject: `component ${c.name} (${c.type})`, where: (f) => c.where(f) };
}

export function parseRabbitmqPubSub(c: ResolvedComponent): RabbitmqPubSubSettings {
  const ctx = pubsubContext(c);
  const m = rabbitmqPubSubMetadata.parse(withoutTtl(c.metadata), ctx);
  const fail = (field: string, message: string): ConfigError => new ConfigError(`${ctx.subject}: ${message}`, { ...ctx.where(field), field });
  const url = connectionUrl(m, fail);
  const scheme = new URL(url).protocol.replace(/:$/, '');
  if (m.saslExternal && (!m.caCert || !m.clientCert || !m.clientKey)) {
    throw fail('saslExternal', 'saslExternal can only be true when caCert, clientCert and clientKey are all given');
  }
  const ttl = daprTtl(c.metadata);
  if (ttl && 'error' in ttl) throw fail(ttl.key, `metadata '${ttl.key}' must be ${ttl.error}, got '${ttl.value}'`);
  const notices: string[] = [];
  const note = (field: string, text: string): void => {
    const w = ctx.where(field);
    notices.push(`${w.file ?? ''}:${w.line ?? ''}: ${ctx.subject}: ${text}`);
  };
  if (given(c, 'concurrency') && !given(c, 'concurrencyMode') && m.concurrency === 'single') {
    note('concurrency', "concurrency: single has no effect, in daprd as here (daprd reads 'concurrencyMode'): events are handled in parallel; write concurrencyMode: single for one at a time");
  }
  const tlsGiven = m.caCert !== undefined || m.clientCert !== undefined || m.clientKey !== undefined;
  if (tlsGiven && scheme !== 'amqps') note('caCert', 'caCert, clientCert and clientKey are used with amqps only, in daprd as here: this connection is plain amqp');
  return {
    url,
    // daprd applies the TLS settings to amqps only.
    tls: scheme === 'amqps'
      ? { ...(m.caCert ? { ca: m.caCert } : {}), ...(m.clientCert ? { cert: m.clientCert } : {}), ...(m.clientKey ? { key: m.clientKey } : {}), external: m.saslExternal }
      : { external: false },
    consumerID: m.consumerID?.trim() || undefined,
    durable: m.durable,
    autoDelete: m.deletedWhenUnused,
    exchangeKind: m.exchangeKind as RabbitmqPubSubSettings['exchangeKind'],
    maxLen: m.maxLen !== undefined && m.maxLen > 0 ? m.maxLen : undefined,
    maxLenBytes: m.maxLenBytes !== undefined && m.maxLenBytes > 0 ? m.maxLenBytes : undefined,
    enableDeadLetter: m.enableDeadLetter,
    requeueInFailure: m.requeueInFailure,
    prefetchCount: m.prefetchCount,
    single: m.concurrencyMode === 'single',
    deliveryMode: m.deliveryMode,
    autoAck: m.autoAck,
    reconnectWaitMs: m.reconnectWaitSeconds,
    // Go's Duration.Milliseconds(): whole milliseconds.
    defaultTtlMs: ttl ? Math.trunc(ttl.ms) : undefined,
    connectionName: m.clientName,
    heartbeatSeconds: m.heartBeat / 1000,
    propertiesToMetadata: m.publishMessagePropertiesToMetadata,
    redelivery: redeliveryPolicy(m, ctx),
    notices,
  };
}

function given(c: ResolvedComponent, field: string): boolean {
  const k = field.toLowerCase();
  return Object.entries(c.metadata).some(([key, v]) => key.toLowerCase() === k && v !== '');
}

/** connectionString as given, or built from protocol, hostname, username and password as daprd builds it. */
function connectionUrl(
  m: { connectionString?: string | undefined; protocol?: string | undefined; hostname?: string | undefined; username?: string | undefined; password?: string | undefined },
  fail: (field: string, message: string) => ConfigError,
): string {
  if (m.connectionString !== undefined) {
    let u: URL;
    try {
      u = new URL(m.connectionString);
    } catch {
      throw fail('connectionString', "metadata 'connectionString' must be a URL such as amqp://user:password@host:5672 (value redacted)");
    }
    const scheme = u.protocol.replace(/:$/, '');
    if (scheme !== 'amqp' && scheme !== 'amqps') {
      throw fail('connectionString', `metadata 'connectionString' must start with amqp:// or amqps://, got '${scheme}://...'`);
    }
    if (m.protocol !== undefined && m.protocol !== scheme) {
      throw fail('protocol', `protocol '${m.protocol}' does not match the connection string's scheme '${scheme}'`);
    }
    return m.connectionString;
  }
  const host = (m.hostname ?? 'localhost').trim();
  let u: URL;
  try {
    u = new URL(`${m.protocol ?? 'amqp'}://${host}`);
  } catch {
    throw fail('hostname', `metadata 'hostname' must be a host name, optionally with :port, got '${host}'`);
  }
  if (u.pathname !== '' || u.search !== '' || u.username !== '') {
    throw fail('hostname', `metadata 'hostname' must be a host name, optionally with :port, got '${host}'`);
  }
  if (m.username) u.username = m.username;
  if (m.username && m.password) u.password = m.password;
  return u.toString();
}
