/**
 * KEDA's `rabbitmq` trigger. protocol amqp counts the queue's ready messages (a passive declare: what KEDA does, and
 * why KEDA users see unacked work ignored); protocol http reads the management API: ready + unacked for QueueLength
 * (ready only with excludeUnacknowledged), the publish rate for MessageRate. protocol auto picks by the host's scheme.
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { defineMetadata } from '../../components/metadata.js';
import { ConfigError, errorMessage } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerConnection, boundedRead } from '../trigger-support.js';
import type { MetricAndActivity, MetricType, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { describeAmqpError } from './link.js';
import { ManagementClient } from './management.js';
import { parseRabbitmqQueueParams } from './trigger-params.js';
import { passwordOf, redactUrl } from './url.js';

export const rabbitmqTriggerMetadata = defineMetadata([
  { name: 'host', type: 'string', required: true, sensitive: true,
    description: 'amqp://user:password@host:5672/vhost or http://user:password@host:15672/vhost (usually hostFromEnv).' },
  { name: 'protocol', type: 'string', default: 'auto', enum: ['auto', 'amqp', 'http'],
    description: 'amqp counts ready messages; http reads the management API. auto: by the scheme of host.' },
  { name: 'vhostName', type: 'string', description: 'Overrides the vhost named in host.' },
  { name: 'username', type: 'string', description: 'Overrides the user named in host (TriggerAuthentication).' },
  { name: 'password', type: 'string', sensitive: true, description: 'Overrides the password in host (TriggerAuthentication).' },
  { name: 'excludeUnacknowledged', type: 'boolean', default: false,
    description: 'http only: count ready messages only.' },
  { name: 'useRegex', type: 'boolean', default: false, description: 'Not supported locally: queueName is one queue.' },
  { name: 'timeout', type: 'integer', min: 1, description: 'http only: timeout of a read in milliseconds (default 2500).' },
] as const);

export interface RabbitmqTriggerSettings {
  queueName: string;
  mode: 'QueueLength' | 'MessageRate';
  target: number;
  activationTarget: number;
  protocol: 'amqp' | 'http';
  /** amqp URL or management base URL, credentials included. */
  url: string;
  vhost: string;
  excludeUnacknowledged: boolean;
  timeoutMs: number;
}

export function parseRabbitmqTrigger(trigger: ResolvedTrigger): RabbitmqTriggerSettings {
  const q = parseRabbitmqQueueParams(trigger);
  const md = rabbitmqTriggerMetadata.parse(trigger.metadata, trigger);
  const fail = (message: string, field: string): ConfigError =>
    new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), field });
  let u: URL;
  try {
    u = new URL(md.host);
  } catch {
    throw fail("host must be a URL such as amqp://user:password@host:5672/vhost (value redacted)", 'host');
  }
  const scheme = u.protocol.replace(/:$/, '');
  const byScheme = scheme.startsWith('amqp') ? 'amqp' : scheme.startsWith('http') ? 'http' : undefined;
  if (!byScheme) throw fail(`host must start with amqp://, amqps://, http:// or https://, got '${scheme}://...'`, 'host');
  const protocol = md.protocol === 'auto' ? byScheme : (md.protocol as 'amqp' | 'http');
  if (protocol !== byScheme) throw fail(`protocol ${protocol} does not match the host's scheme ${scheme}://`, 'protocol');
  if (q.mode === 'MessageRate' && protocol !== 'http') {
    throw fail('mode MessageRate needs protocol http (the management API): AMQP cannot tell a publish rate', 'mode');
  }
  if (md.excludeUnacknowledged && protocol !== 'http') throw fail('excludeUnacknowledged needs protocol http', 'excludeUnacknowledged');
  if (md.useRegex) throw fail('useRegex is not supported by qscale: name one queue', 'useRegex');
  if (md.timeout !== undefined && protocol !== 'http') {
    throw fail(`timeout applies to protocol http only (KEDA refuses it with amqp, whose reads qscale bounds at ${TRIGGER_READ_TIMEOUT_MS} ms)`, 'timeout');
  }
  if ((md.username === undefined) !== (md.password === undefined)) {
    throw fail('username and password must be given together', md.username === undefined ? 'password' : 'username');
  }
  if (md.username !== undefined) u.username = encodeURIComponent(md.username);
  if (md.password !== undefined) u.password = encodeURIComponent(md.password);
  const pathVhost = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const vhost = md.vhostName ?? (pathVhost === '' ? '/' : pathVhost);
  if (protocol === 'amqp') u.pathname = '/' + encodeURIComponent(vhost);
  else u.pathname = '';
  return {
    queueName: q.queueName,
    mode: q.mode,
    target: q.target,
    activationTarget: q.activationTarget,
    protocol,
    url: u.toString().replace(/\/$/, ''),
    vhost,
    excludeUnacknowledged: md.excludeUnacknowledged,
    timeoutMs: md.timeout ?? TRIGGER_READ_TIMEOUT_MS,
  };
}

/** KEDA's metric name: s<index>-rabbitmq-<queue>, with characters an external metric name cannot hold replaced. */
export function rabbitmqMetricName(index: number, queueName: string): string {
  return `s${index}-` + `rabbitmq-${encodeURIComponent(queueName)}`.replace(/[/.:%]/g, '-');
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
  private channel: { conn: ChannelModel; ch: Promise<Channel> } | undefined;
  private readonly where: string;

  constructor(private readonly trigger: ResolvedTrigger, private readonly s: RabbitmqTriggerSettings) {
    this.metricName = rabbitmqMetricName(trigger.index, s.queueName);
    this.metricType = trigger.metricType;
    this.target = s.target;
    this.activationTarget = s.activationTarget;
    this.management = s.protocol === 'http' ? new ManagementClient(s.url, s.timeoutMs) : undefined;
    this.where = this.management ? `the RabbitMQ management API ${this.management.where}` : redactUrl(withoutPath(s.url));
    this.describes =
      s.protocol === 'amqp'
        ? `ready messages of queue ${s.queueName} (AMQP passive declare; unacked not counted)`
        : s.mode === 'MessageRate'
          ? `publish rate (messages/s) of queue ${s.queueName} (management API)`
          : `${s.excludeUnacknowledged ? 'ready' : 'ready + unacked'} messages of queue ${s.queueName} (management API)`;
    this.link = new TriggerConnection(trigger.subject, () => this.connect(), (c) => disposeConnection(c));
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    const q = await this.read();
    if (this.s.mode === 'MessageRate') {
      // As KEDA: active while messages are published or still queued.
      return { value: q.publishRate, active: q.publishRate > this.activationTarget || q.messages > this.activationTarget };
    }
    return { value: q.messages, active: q.messages > this.activationTarget };
  }

  /** The queue's count as the protocol tells it (and the publish rate over http), within the read bound. */
  private read(): Promise<{ messages: number; publishRate: number }> {
    return boundedRead(() => (this.management ? this.viaHttp(this.management) : this.viaAmqp()), {
      subject: this.trigger.subject,
      what: `queue '${this.s.queueName}' (vhost '${this.s.vhost}')`,
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

  private async viaHttp(m: ManagementClient): Promise<{ messages: number; publishRate: number }> {
    const q = await m.queue(this.s.vhost, this.s.queueName);
    if (!q) throw new Error(`the management API knows no queue '${this.s.queueName}' (404)`);
    return { messages: this.s.excludeUnacknowledged ? q.ready : q.total, publishRate: q.publishRate };
  }

  private async connect(): Promise<ChannelModel> {
    // Named like KEDA's (keda-<namespace>-<ScaledObject>), so operators can tell whose connection it is.
    const name = `qscale-keda: ${this.trigger.subject}`;
    const conn = await amqp.connect(this.s.url, { timeout: this.s.timeoutMs, clientProperties: { connection_name: name } });
    conn.on('error', () => undefined);
    conn.on('close', () => this.link.reset(conn));
    return conn;
  }

  /** A passive declare (what KEDA does): the ready count; fails with NOT_FOUND when the queue does not exist. */
  private async viaAmqp(): Promise<{ messages: number; publishRate: number }> {
    const conn = await this.link.get();
    if (this.channel?.conn !== conn) {
      const opened: { conn: ChannelModel; ch: Promise<Channel> } = {
        conn,
        ch: conn.createChannel().then((ch) => {
          ch.on('error', () => undefined);
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
    const ch = await this.channel.ch;
    return { messages: (await ch.checkQueue(this.s.queueName)).messageCount, publishRate: 0 };
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
  create(trigger) {
    return new RabbitmqScaler(trigger, parseRabbitmqTrigger(trigger));
  },
};
