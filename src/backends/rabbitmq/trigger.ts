/**
 * KEDA's `rabbitmq` trigger. protocol amqp counts the queue's ready messages (a passive declare: what KEDA does, and
 * why KEDA users see unacked work ignored); protocol http reads the management API: ready + unacked for QueueLength
 * (ready only with excludeUnacknowledged), the publish rate for MessageRate. protocol auto picks by the host's scheme.
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { defineMetadata } from '../../components/metadata.js';
import { BrokerError, ConfigError } from '../../errors.js';
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
  { name: 'timeout', type: 'integer', min: 1, description: 'http timeout in milliseconds.' },
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
    timeoutMs: md.timeout ?? 5000,
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
  private conn: ChannelModel | undefined;
  private ch: Channel | undefined;

  constructor(private readonly trigger: ResolvedTrigger, private readonly s: RabbitmqTriggerSettings) {
    this.metricName = rabbitmqMetricName(trigger.index, s.queueName);
    this.metricType = trigger.metricType;
    this.target = s.target;
    this.activationTarget = s.activationTarget;
    this.management = s.protocol === 'http' ? new ManagementClient(s.url, s.timeoutMs) : undefined;
    this.describes =
      s.protocol === 'amqp'
        ? `ready messages of queue ${s.queueName} (AMQP passive declare; unacked not counted)`
        : s.mode === 'MessageRate'
          ? `publish rate (messages/s) of queue ${s.queueName} (management API)`
          : `${s.excludeUnacknowledged ? 'ready' : 'ready + unacked'} messages of queue ${s.queueName} (management API)`;
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    const value = this.management ? await this.viaHttp(this.management) : await this.viaAmqp();
    return { value, active: value > this.activationTarget };
  }

  private async viaHttp(m: ManagementClient): Promise<number> {
    let q;
    try {
      q = await m.queue(this.s.vhost, this.s.queueName);
    } catch (err) {
      throw new BrokerError(`${this.trigger.subject}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!q) throw new BrokerError(`${this.trigger.subject}: queue '${this.s.queueName}' not found in vhost '${this.s.vhost}' at ${m.where}`);
    if (this.s.mode === 'MessageRate') return q.publishRate;
    return this.s.excludeUnacknowledged ? q.ready : q.total;
  }

  private async viaAmqp(): Promise<number> {
    try {
      if (!this.conn) {
        const conn = await amqp.connect(this.s.url, { timeout: this.s.timeoutMs, clientProperties: { connection_name: 'qscale-keda' } });
        conn.on('error', () => undefined);
        conn.on('close', () => {
          if (this.conn === conn) {
            this.conn = undefined;
            this.ch = undefined;
          }
        });
        this.conn = conn;
      }
      if (!this.ch) {
        const ch = await this.conn.createChannel();
        ch.on('error', () => undefined);
        ch.on('close', () => { if (this.ch === ch) this.ch = undefined; });
        this.ch = ch;
      }
      return (await this.ch.checkQueue(this.s.queueName)).messageCount;
    } catch (err) {
      throw new BrokerError(
        `${this.trigger.subject}: cannot read queue '${this.s.queueName}' at ${redactUrl(this.s.url)}: ${describeAmqpError(err, [passwordOf(this.s.url)], this.s.vhost)}`,
      );
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
      if (busy) return;
      busy = true;
      this.peek()
        .then((n) => {
          if (last === 0 && n > 0) onArrival();
          last = n;
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, 1000);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async peek(): Promise<number> {
    if (!this.management) return this.viaAmqp();
    const q = await this.management.queue(this.s.vhost, this.s.queueName);
    return q ? q.total : 0;
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    this.ch = undefined;
    if (c) await c.close().catch(() => undefined);
  }
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
