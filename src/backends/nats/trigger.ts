/**
 * KEDA's `nats-jetstream` trigger: metric = num_pending + num_ack_pending of the durable consumer, read from the
 * server's monitoring endpoint (/jsz?acc=<account>&consumers=true&config=true), target lagThreshold (10), active
 * above activationLagThreshold (0). As KEDA does, a stream without that consumer reports its last sequence.
 *
 * qscale extension: with `natsURL` and no natsServerMonitoringEndpoint, the same numbers come from the consumer info
 * over the NATS protocol, for servers that run without monitoring (a server started without -m).
 */
import type { NatsConnection } from 'nats';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import type { MetricAndActivity, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { natsTriggerMetadata, redactUrl } from './metadata.js';
import { connectNats, scrubNats } from './connect.js';

interface ParsedTrigger extends QueueTriggerParams {
  account: string;
  stream: string;
  consumer: string;
  monitoringUrl: string | undefined;
  natsURL: string | undefined;
}

function parse(trigger: ResolvedTrigger): ParsedTrigger {
  const md = natsTriggerMetadata.parse(trigger.metadata, trigger);
  const endpoint = md.natsServerMonitoringEndpoint;
  if (!endpoint && !md.natsURL) {
    throw new ConfigError(
      `${trigger.subject}: no natsServerMonitoringEndpoint given (or, as a qscale extension, natsURL to read the consumer over NATS)`,
      { ...trigger.where('natsServerMonitoringEndpoint'), field: 'natsServerMonitoringEndpoint' },
    );
  }
  const monitoringUrl = endpoint
    ? `${md.useHttps ? 'https' : 'http'}://${endpoint}/jsz?acc=${encodeURIComponent(md.account)}&consumers=true&config=true`
    : undefined;
  return {
    queueName: md.stream,
    target: md.lagThreshold,
    activationTarget: md.activationLagThreshold,
    account: md.account,
    stream: md.stream,
    consumer: md.consumer,
    monitoringUrl,
    natsURL: md.natsURL,
  };
}

interface JszConsumer {
  name?: string;
  num_pending?: number;
  num_ack_pending?: number;
}
interface JszStream {
  name?: string;
  state?: { last_seq?: number };
  consumer_detail?: JszConsumer[];
}
interface Jsz {
  account_details?: { name?: string; stream_detail?: JszStream[] }[];
}

class NatsJetStreamScaler implements Scaler {
  readonly metricName: string;
  readonly metricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private nc: NatsConnection | undefined;

  constructor(
    private readonly trigger: ResolvedTrigger,
    private readonly p: ParsedTrigger,
  ) {
    this.metricName = `s${trigger.index}-nats-jetstream-${p.stream}`.toLowerCase();
    this.metricType = trigger.metricType;
    this.target = p.target;
    this.activationTarget = p.activationTarget;
    this.describes = `pending + ack-pending messages of consumer ${p.consumer} on stream ${p.stream}`;
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    let value: number;
    try {
      value = this.p.monitoringUrl ? await this.fromMonitoring(this.p.monitoringUrl) : await this.fromProtocol();
    } catch (err) {
      const where = this.p.monitoringUrl ?? redactUrl(this.p.natsURL ?? '');
      throw new BrokerError(`${this.trigger.subject}: cannot read NATS JetStream lag from ${where}: ${scrubNats(errorMessage(err), { urls: this.p.natsURL ?? '' })}`, { cause: err });
    }
    return { value, active: value > this.activationTarget };
  }

  private async fromMonitoring(url: string): Promise<number> {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const jsz = (await res.json()) as Jsz;
    const account = jsz.account_details?.find((a) => a.name === this.p.account);
    const stream = account?.stream_detail?.find((s) => s.name === this.p.stream);
    if (!stream) throw new Error(`stream '${this.p.stream}' not found in account '${this.p.account}'`);
    const c = stream.consumer_detail?.find((x) => x.name === this.p.consumer);
    if (!c) return stream.state?.last_seq ?? 0;
    return (c.num_pending ?? 0) + (c.num_ack_pending ?? 0);
  }

  private async fromProtocol(): Promise<number> {
    this.nc ??= await connectNats({ urls: this.p.natsURL ?? '' }, 'qscale:keda-nats-jetstream', 5000);
    const jsm = await this.nc.jetstreamManager({ timeout: 5000 });
    try {
      const c = await jsm.consumers.info(this.p.stream, this.p.consumer);
      return c.num_pending + c.num_ack_pending;
    } catch (err) {
      if (!/consumer not found/i.test(errorMessage(err))) throw err;
      const s = await jsm.streams.info(this.p.stream);
      return s.state.last_seq;
    }
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    await nc?.close().catch(() => undefined);
  }
}

export const natsJetStreamTrigger: TriggerDefinition = {
  type: 'nats-jetstream',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parse(trigger);
    return { queueName, target, activationTarget };
  },
  create(trigger) {
    return new NatsJetStreamScaler(trigger, parse(trigger));
  },
};
