/**
 * KEDA's `rabbitmq` trigger. protocol amqp counts the queue's ready messages (a passive declare: what KEDA does, and
 * why KEDA users see unacked work ignored); protocol http reads the management API: ready + unacked for QueueLength
 * (ready only with excludeUnacknowledged), the publish and deliver/get rates for the rate modes, and with useRegex the
 * queues whose names match, summed, averaged or maxed. protocol auto picks by the host's scheme. Metric and activity
 * per mode are KEDA's (GetMetricsAndActivity); so are the parameter rules (Validate, validateTrigger).
 */
import type Amqp from 'amqplib';
import { lazyModule } from '../lazy-require.js';
import type { Channel, ChannelModel, Options } from 'amqplib';
import { errorMessage } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerConnection, boundedRead } from '../trigger-support.js';
import { defineTriggerMetadata, triggerError } from '../trigger-metadata.js';
import type { MetricAndActivity, MetricType, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { goQueryEscape } from '../azure/servicebus/message.js';
import { describeAmqpError } from './link.js';
import { ManagementClient, type ManagedQueue, type ManagementTls } from './management.js';
import { parseRabbitmqQueueParams, rabbitmqModeAndTarget, rabbitmqQueueFields, type RabbitmqMode } from './trigger-params.js';
import { passwordOf, redactUrl } from './url.js';

/** The amqplib client library, loaded on first use (see lazy-require.ts). */
const amqp = lazyModule<typeof Amqp>('amqplib');

const AUTH = ['authParams'] as const;
const AUTH_OR_ENV = ['authParams', 'resolvedEnv'] as const;

export const rabbitmqTriggerMetadata = defineTriggerMetadata([
  ...rabbitmqQueueFields,
  { name: 'host', type: 'string', required: true, sensitive: true, from: ['triggerMetadata', 'authParams', 'resolvedEnv'],
    description: 'amqp://user:password@host:5672/vhost or http://user:password@host:15672/vhost (usually from a TriggerAuthentication or hostFromEnv).' },
  { name: 'protocol', type: 'string', default: 'auto', from: ['triggerMetadata', 'authParams'],
    description: 'amqp, http, or auto: by the scheme of host.' },
  { name: 'vhostName', type: 'string', from: ['triggerMetadata', 'authParams'], description: 'Overrides the vhost named in host.' },
  { name: 'useRegex', type: 'bool', description: 'http only: queueName is a regular expression over the vhost\'s queues.' },
  { name: 'excludeUnacknowledged', type: 'bool', description: 'http only: count ready messages only.' },
  { name: 'pageSize', type: 'int', default: '100', description: 'With useRegex: how many matching queues are read (one page).' },
  { name: 'operation', type: 'string', default: 'sum', description: 'With useRegex: sum, avg or max over the matching queues.' },
  { name: 'timeout', type: 'duration', description: 'http only: the bound on a read (a duration, or milliseconds).' },
  { name: 'username', type: 'string', from: AUTH_OR_ENV, description: 'Overrides the user in host; needs password.' },
  { name: 'password', type: 'string', from: AUTH_OR_ENV, sensitive: true, description: 'Overrides the password in host; needs username.' },
  { name: 'tls', type: 'string', default: 'disable', from: AUTH, description: 'enable: TLS with ca, cert, key (amqps:// or https://).' },
  { name: 'ca', type: 'string', from: AUTH, sensitive: true, description: 'PEM: the CA to trust.' },
  { name: 'cert', type: 'string', from: AUTH, sensitive: true, description: 'PEM: the client certificate (with key).' },
  { name: 'key', type: 'string', from: AUTH, sensitive: true, description: 'PEM: the client key (with cert).' },
  { name: 'keyPassword', type: 'string', from: AUTH, sensitive: true, description: 'Decrypts key.' },
  { name: 'unsafeSsl', type: 'bool', description: 'Skip verifying the server\'s certificate.' },
  { name: 'workloadIdentityResource', type: 'string', from: AUTH, description: 'Azure AD workload identity (cluster only).' },
  { name: 'oauthTokenURI', type: 'string', from: AUTH, description: 'OAuth2 client credentials (cluster only).' },
  { name: 'scopes', aliases: ['scope'], type: 'string', from: AUTH, description: 'OAuth2 scopes.' },
  { name: 'clientID', type: 'string', from: AUTH, description: 'OAuth2 client id.' },
  { name: 'clientSecret', type: 'string', from: AUTH, sensitive: true, description: 'OAuth2 client secret.' },
  { name: 'endpointParams', type: 'string', from: AUTH, description: 'OAuth2 token request parameters.' },
] as const);

export interface RabbitmqTriggerSettings {
  queueName: string;
  mode: RabbitmqMode;
  target: number;
  activationTarget: number;
  protocol: 'amqp' | 'http';
  /** amqp: the URL to dial, credentials and vhost included; http: the management API base (credentials and path prefix included). */
  url: string;
  /** The vhost, for messages. */
  vhost: string;
  /** http: the vhost as KEDA puts it in the management API's path (`/%2F`, `/prod`). */
  vhostPath: string;
  excludeUnacknowledged: boolean;
  regex: { pageSize: number; operation: 'sum' | 'avg' | 'max' } | undefined;
  timeoutMs: number;
  /** TLS: for amqps:// (with tls enable) and https://. */
  tls: ManagementTls | undefined;
  /** amqps with a client certificate and no password anywhere: the EXTERNAL mechanism, as KEDA. */
  externalAuth: boolean;
}

/** Parses the URL without ever echoing it (it carries credentials). */
function parseHost(trigger: ResolvedTrigger, host: string, field: string): URL {
  try {
    return new URL(host);
  } catch {
    throw triggerError(trigger, 'host must be a URL such as amqp://user:password@host:5672/vhost or http://user:password@host:15672 (value redacted)', field);
  }
}

export function parseRabbitmqTrigger(trigger: ResolvedTrigger): RabbitmqTriggerSettings {
  const md = rabbitmqTriggerMetadata.parse(trigger);
  const hostField = rabbitmqTriggerMetadata.writtenAs(trigger, 'host') ?? 'host';
  const fail = (message: string, field: string): Error => triggerError(trigger, message, field);
  // KEDA's Validate, in its order.
  if (!['amqp', 'http', 'auto'].includes(md.protocol)) throw fail(`metadata 'protocol' must be amqp, http or auto, got '${md.protocol}'`, 'protocol');
  if (md.tls !== 'enable' && md.tls !== 'disable') throw fail(`TriggerAuthentication parameter 'tls' must be enable or disable, got '${md.tls}'`, 'tls');
  if ((md.cert === undefined) !== (md.key === undefined)) throw fail('TLS needs both key and cert (TriggerAuthentication parameters)', md.cert === undefined ? 'key' : 'cert');
  if (md.pageSize < 1) throw fail(`pageSize must be 1 or more, got ${md.pageSize}`, 'pageSize');
  if ((md.username === undefined) !== (md.password === undefined)) {
    throw fail('username and password must be given together', md.username === undefined ? 'password' : 'username');
  }
  const schemeOf = (u: string): string => /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(u)?.[1]?.toLowerCase() ?? '';
  const scheme = schemeOf(md.host);
  let protocol: 'amqp' | 'http';
  if (md.protocol === 'auto') {
    if (scheme === 'amqp' || scheme === 'amqps') protocol = 'amqp';
    else if (scheme === 'http' || scheme === 'https') protocol = 'http';
    else throw fail(`host must start with amqp://, amqps://, http:// or https:// for protocol auto, got '${scheme ? `${scheme}://` : 'no scheme'}' (value redacted)`, hostField);
  } else protocol = md.protocol as 'amqp' | 'http';
  if (protocol === 'amqp' && md.workloadIdentityResource !== undefined) {
    throw fail('workload identity is not supported for protocol amqp', 'workloadIdentityResource');
  }
  const oauth = md.oauthTokenURI !== undefined || md.clientID !== undefined || md.clientSecret !== undefined;
  if (oauth) {
    if (md.oauthTokenURI === undefined || md.clientID === undefined || md.clientSecret === undefined) {
      throw fail('OAuth2 needs oauthTokenURI, clientID and clientSecret in the TriggerAuthentication', 'oauthTokenURI');
    }
    if (protocol === 'amqp') throw fail('OAuth2 is supported with protocol http only, not amqp', 'oauthTokenURI');
    if (md.username !== undefined || md.workloadIdentityResource !== undefined) {
      throw fail('OAuth2 cannot be combined with username/password or Azure workload identity', 'oauthTokenURI');
    }
  }
  if (md.useRegex && protocol !== 'http') throw fail('useRegex needs protocol http (the management API)', 'useRegex');
  if (md.excludeUnacknowledged && protocol !== 'http') throw fail('excludeUnacknowledged needs protocol http (the management API)', 'excludeUnacknowledged');
  const timeoutGiven = md.timeout !== undefined && md.timeout !== 0;
  const { mode, target } = rabbitmqModeAndTarget(trigger, md, { protocol, timeoutGiven });
  // What KEDA accepts but can never run here, or never run at all: refused now, with the reason.
  if (oauth) throw fail('OAuth2 (oauthTokenURI, clientID, clientSecret) is not supported by qscale: give username and password, or credentials in host', 'oauthTokenURI');
  if (md.workloadIdentityResource !== undefined) {
    throw fail('Azure AD workload identity is cluster-only: locally, give username and password, or credentials in host', 'workloadIdentityResource');
  }
  const wantScheme = protocol === 'amqp' ? ['amqp', 'amqps'] : ['http', 'https'];
  if (!wantScheme.includes(scheme)) {
    throw fail(`protocol ${protocol} needs a host starting with ${wantScheme.map((s) => `${s}://`).join(' or ')}, got '${scheme ? `${scheme}://` : 'no scheme'}' (value redacted)`, hostField);
  }
  const u = parseHost(trigger, md.host, hostField);
  if (u.hostname === '') throw fail(`host names no host: ${scheme}://<host>:<port> (value redacted)`, hostField);
  const operation = md.operation;
  if (md.useRegex && operation !== 'sum' && operation !== 'avg' && operation !== 'max') {
    throw fail(`metadata 'operation' must be sum, avg or max, got '${operation}'`, 'operation');
  }
  if (md.username !== undefined && md.password !== undefined) {
    u.username = encodeURIComponent(md.username);
    u.password = encodeURIComponent(md.password);
  }
  const tlsOn = md.tls === 'enable';
  const secure = scheme === 'amqps' || scheme === 'https';
  let tls: ManagementTls | undefined;
  if (protocol === 'http' ? secure : scheme === 'amqps' && tlsOn) {
    tls = { rejectUnauthorized: !md.unsafeSsl };
    if (tlsOn) {
      if (md.ca !== undefined) tls.ca = md.ca;
      if (md.cert !== undefined) tls.cert = md.cert;
      if (md.key !== undefined) tls.key = md.key;
      if (md.keyPassword !== undefined) tls.passphrase = md.keyPassword;
    }
  }
  const externalAuth = protocol === 'amqp' && tls?.cert !== undefined && md.username === undefined && u.password === '';
  let vhost: string;
  let vhostPath = '';
  if (protocol === 'amqp') {
    const pathVhost = decodeURIComponent(u.pathname.replace(/^\//, ''));
    vhost = md.vhostName ?? (pathVhost === '' ? '/' : pathVhost);
    u.pathname = '/' + encodeURIComponent(vhost);
  } else {
    // KEDA's getVhostAndPathFromURL: the path's last segment is the vhost, what comes before it a path prefix.
    const segments = u.pathname.split('/');
    vhostPath = '/' + (segments[segments.length - 1] ?? '');
    const prefix = segments.slice(0, -1).filter((p) => p !== '').join('/');
    if (md.vhostName !== undefined) vhostPath = '/' + encodeURIComponent(md.vhostName);
    if (vhostPath === '/') vhostPath = '/%2F';
    vhost = decodeURIComponent(vhostPath.slice(1));
    u.pathname = prefix === '' ? '' : `/${prefix}`;
  }
  return {
    queueName: md.queueName,
    mode,
    target,
    activationTarget: md.activationValue,
    protocol,
    url: u.toString().replace(/\/$/, ''),
    vhost,
    vhostPath,
    excludeUnacknowledged: md.excludeUnacknowledged ?? false,
    regex: md.useRegex ? { pageSize: md.pageSize, operation: operation as 'sum' | 'avg' | 'max' } : undefined,
    timeoutMs: timeoutGiven ? (md.timeout as number) : TRIGGER_READ_TIMEOUT_MS,
    tls,
    externalAuth,
  };
}

/** KEDA's metric name: s<index>-rabbitmq-<queue, query-escaped>, with / . : % ( ) made dashes (NormalizeString). */
export function rabbitmqMetricName(index: number, queueName: string): string {
  return `s${index}-` + `rabbitmq-${goQueryEscape(queueName)}`.replace(/[/.:%()]/g, '-');
}

/** What one read tells: messages (as the protocol counts them) and, over http, the publish and deliver/get rates. */
export interface RabbitmqQueueStatus {
  messages: number;
  publishRate: number;
  deliverGetRate: number;
}

/** KEDA's metric and activity for each mode (rabbitmq_scaler.go, GetMetricsAndActivity). */
export function rabbitmqMetricAndActivity(mode: RabbitmqMode, q: RabbitmqQueueStatus, activation: number): MetricAndActivity {
  const { messages, publishRate: pub, deliverGetRate: dg } = q;
  switch (mode) {
    case 'QueueLength':
      return { value: messages, active: messages > activation };
    case 'MessageRate':
      // Active while messages are published or still queued.
      return { value: pub, active: pub > activation || messages > activation };
    case 'DeliverGetRate':
      return { value: dg, active: dg > activation };
    case 'PublishedToDeliveredRatio': {
      const stalled = pub > 0 && dg === 0;
      const ratio = stalled ? activation : pub > 0 && dg > 0 ? pub / dg : 0;
      return { value: ratio, active: ratio > activation || stalled };
    }
    case 'ExpectedQueueConsumptionTime': {
      const eta = dg === 0 ? activation : (pub - dg) / dg + messages / dg;
      return { value: eta, active: eta > activation || dg === 0 };
    }
  }
}

/** KEDA's sum / avg / max over the queues a regular expression matched (avg of counts truncates, as Go's int division). */
export function composeQueues(queues: readonly ManagedQueue[], operation: 'sum' | 'avg' | 'max', excludeUnacknowledged: boolean): RabbitmqQueueStatus {
  const count = (q: ManagedQueue): number => (excludeUnacknowledged ? q.ready : q.total);
  if (queues.length === 0) return { messages: 0, publishRate: 0, deliverGetRate: 0 };
  if (operation === 'max') {
    return {
      messages: Math.max(0, ...queues.map(count)),
      publishRate: Math.max(0, ...queues.map((q) => q.publishRate)),
      deliverGetRate: Math.max(0, ...queues.map((q) => q.deliverGetRate)),
    };
  }
  const sum = {
    messages: queues.reduce((a, q) => a + count(q), 0),
    publishRate: queues.reduce((a, q) => a + q.publishRate, 0),
    deliverGetRate: queues.reduce((a, q) => a + q.deliverGetRate, 0),
  };
  if (operation === 'sum') return sum;
  const n = queues.length;
  return { messages: Math.trunc(sum.messages / n), publishRate: sum.publishRate / n, deliverGetRate: sum.deliverGetRate / n };
}

const MODE_WORDS: Record<RabbitmqMode, string> = {
  QueueLength: 'messages',
  MessageRate: 'publish rate (messages/s)',
  DeliverGetRate: 'deliver/get rate (messages/s)',
  PublishedToDeliveredRatio: 'publish rate / deliver-get rate',
  ExpectedQueueConsumptionTime: 'expected seconds to drain',
};

/** A channel of the passive declares, and the error the broker closed it with. */
interface AmqpChannel {
  conn: ChannelModel;
  ch: Promise<Channel>;
  closedBy?: unknown;
}

/** The cause a read of a missing queue gives, the same at every read, with the way out. */
const MISSING_QUEUE =
  "it does not exist (404 NOT_FOUND); it is counted once declared: start the consumer that declares it (a pub/sub subscriber's sidecar declares '<consumerID>-<topic>'), or correct queueName";

/** The broker's 404 (NOT_FOUND) of a passive declare, as amqplib gives it (reply code, or the close text). */
function isNotFound(err: unknown): boolean {
  if (err === undefined || err === null) return false;
  return (err as { code?: unknown }).code === 404 || /\b404\b.*NOT.FOUND|NOT_FOUND - no queue/.test(errorMessage(err));
}

class RabbitmqScaler implements Scaler {
  readonly metricName: string;
  readonly metricType: MetricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly management: ManagementClient | undefined;
  private readonly link: TriggerConnection<ChannelModel>;
  /** The channel of the passive declares, on the connection it belongs to. */
  private channel: AmqpChannel | undefined;
  private readonly where: string;

  constructor(private readonly trigger: ResolvedTrigger, private readonly s: RabbitmqTriggerSettings) {
    this.metricName = rabbitmqMetricName(trigger.index, s.queueName);
    this.metricType = trigger.metricType;
    this.target = s.target;
    this.activationTarget = s.activationTarget;
    this.management = s.protocol === 'http' ? new ManagementClient(s.url, s.timeoutMs, s.tls) : undefined;
    this.where = this.management ? `the RabbitMQ management API ${this.management.where}` : redactUrl(withoutPath(s.url));
    const queues = s.regex ? `the queues matching '${s.queueName}' (${s.regex.operation})` : `queue ${s.queueName}`;
    const counted = s.protocol === 'amqp' ? 'ready messages' : s.excludeUnacknowledged ? 'ready messages' : 'ready + unacked messages';
    this.describes =
      s.protocol === 'amqp'
        ? `ready messages of queue ${s.queueName} (AMQP passive declare; unacked not counted)`
        : s.mode === 'QueueLength'
          ? `${counted} of ${queues} (management API)`
          : `${MODE_WORDS[s.mode]} of ${queues} (management API)`;
    this.link = new TriggerConnection(trigger.subject, () => this.connect(), (c) => disposeConnection(c));
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    return rabbitmqMetricAndActivity(this.s.mode, await this.read(), this.activationTarget);
  }

  /** The queue's count as the protocol tells it (and the rates over http), within the read bound. */
  private read(): Promise<RabbitmqQueueStatus> {
    return boundedRead(() => (this.management ? this.viaHttp(this.management) : this.viaAmqp()), {
      subject: this.trigger.subject,
      what: this.s.regex ? `the queues matching '${this.s.queueName}' (vhost '${this.s.vhost}')` : `queue '${this.s.queueName}' (vhost '${this.s.vhost}')`,
      where: this.where,
      ms: this.s.timeoutMs,
      describe: (err) =>
        this.management
          ? errorMessage(err).replace(`RabbitMQ management API at ${this.management.where} `, '').replace(/^unreachable: /, '')
          : describeAmqpError(err, [passwordOf(this.s.url)], this.s.vhost),
      onTimeout: () => {
        this.channel = undefined;
        this.link.reset();
      },
    });
  }

  private async viaHttp(m: ManagementClient): Promise<RabbitmqQueueStatus> {
    if (this.s.regex) {
      const { queues, pageCount } = await m.queuesMatching(this.s.vhostPath, this.s.queueName, this.s.regex.pageSize);
      if (pageCount > 1) {
        throw new Error(`more queues match than one page of ${this.s.regex.pageSize} holds: raise pageSize or narrow queueName (KEDA fails the same way)`);
      }
      return composeQueues(queues, this.s.regex.operation, this.s.excludeUnacknowledged);
    }
    const q = await m.queueAt(this.s.vhostPath, this.s.queueName);
    if (!q) throw new Error(`the management API knows no queue '${this.s.queueName}' (404)`);
    return { messages: this.s.excludeUnacknowledged ? q.ready : q.total, publishRate: q.publishRate, deliverGetRate: q.deliverGetRate };
  }

  private async connect(): Promise<ChannelModel> {
    // Named like KEDA's (keda-<namespace>-<ScaledObject>), so operators can tell whose connection it is.
    const name = `qscale-keda: ${this.trigger.subject}`;
    const options: Options.Connect & Record<string, unknown> = { timeout: this.s.timeoutMs, clientProperties: { connection_name: name } };
    if (this.s.tls) Object.assign(options, this.s.tls);
    if (this.s.externalAuth) options.credentials = amqp().credentials.external();
    const conn = await amqp().connect(this.s.url, options);
    conn.on('error', () => undefined);
    conn.on('close', () => this.link.reset(conn));
    return conn;
  }

  /**
   * A passive declare (what KEDA does): the ready count. A missing queue is one error, whichever read meets it: the
   * declare that gets the broker's 404, and a read that overlapped it on the channel the 404 closed ("Channel ended").
   */
  private async viaAmqp(): Promise<RabbitmqQueueStatus> {
    const conn = await this.link.get();
    if (this.channel?.conn !== conn) {
      const opened: AmqpChannel = {
        conn,
        ch: conn.createChannel().then((ch) => {
          // The broker's close of the channel comes as this error, before the channel's pending calls are rejected.
          ch.on('error', (err: unknown) => {
            opened.closedBy = err;
          });
          // A failed passive declare closes the channel (not the connection): the next read opens a new one.
          ch.on('close', () => {
            if (this.channel === opened) this.channel = undefined;
          });
          return ch;
        }),
      };
      opened.ch.catch(() => {
        if (this.channel === opened) this.channel = undefined;
      });
      this.channel = opened;
    }
    const used = this.channel;
    const ch = await used.ch;
    try {
      return { messages: (await ch.checkQueue(this.s.queueName)).messageCount, publishRate: 0, deliverGetRate: 0 };
    } catch (err) {
      if (this.channel === used) this.channel = undefined;
      if (isNotFound(err) || isNotFound(used.closedBy)) throw new Error(MISSING_QUEUE, { cause: err });
      throw err;
    }
  }

  /**
   * AMQP cannot announce an arrival without consuming it, so this peeks every second (a passive declare, or the
   * management API's counters with protocol http) and calls back when the queue goes from empty to not empty.
   */
  watchArrivals(onArrival: () => void): () => void {
    let last: number | undefined;
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.link.isClosed) return;
      busy = true;
      this.read()
        .then((q) => {
          if (last === 0 && q.messages > 0) onArrival();
          last = q.messages;
        })
        .catch(() => undefined) // the poll reports read failures; the watch only looks for arrivals
        .finally(() => {
          busy = false;
        });
    }, 1000);
    timer.unref();
    return () => clearInterval(timer);
  }

  async close(): Promise<void> {
    this.channel = undefined;
    await this.link.close();
    await this.management?.close();
  }
}

/** The broker's address without the vhost path (messages name the vhost on their own). */
function withoutPath(url: string): string {
  try {
    const u = new URL(url);
    u.pathname = '';
    return u.toString();
  } catch {
    return url;
  }
}

/** Closes a connection; one whose broker no longer answers the close handshake has its socket destroyed. */
async function disposeConnection(c: ChannelModel): Promise<void> {
  await withTimeout(c.close(), 1000, 'close').catch(() => {
    (c as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
  });
}

export const rabbitmqTrigger: TriggerDefinition = {
  type: 'rabbitmq',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parseRabbitmqQueueParams(trigger);
    return { queueName, target, activationTarget };
  },
  subscriptionRef(trigger) {
    return { pubsubType: 'pubsub.rabbitmq', queue: parseRabbitmqQueueParams(trigger).queueName };
  },
  create(trigger) {
    return new RabbitmqScaler(trigger, parseRabbitmqTrigger(trigger));
  },
};
