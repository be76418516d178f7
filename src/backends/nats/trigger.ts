/**
 * KEDA's `nats-jetstream` trigger: metric = num_pending + num_ack_pending of the durable consumer, read from the
 * server's monitoring endpoint (/jsz?acc=<account>&consumers=true&config=true), target lagThreshold (10), active
 * above activationLagThreshold (0). As KEDA does, a stream without that consumer reports its last sequence.
 *
 * Locally, a server often runs without monitoring (no -m). When the monitoring endpoint cannot be reached, the
 * trigger reads the very same numbers from the consumer info over the JetStream API on the client port — the
 * qscale extension `natsURL`, else port 4222 of the monitoring endpoint's host — and says so once: KEDA reads the
 * monitoring endpoint only, so a cluster needs the server started with -m. With `natsURL` and no monitoring
 * endpoint, the JetStream API is read from the start.
 */
import type { JetStreamManager, NatsConnection } from 'nats';
import { BrokerError, ConfigError, errorMessage } from '../../errors.js';
import type { MetricAndActivity, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { createLogger } from '../../util/log.js';
import { withTimeout } from '../../util/timeout.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerClosedError, TriggerConnection } from '../trigger-support.js';
import { natsTriggerMetadata, redactUrl } from './metadata.js';
import { connectNats, scrubNats } from './connect.js';

/** The NATS client port the JetStream API is read on when only a monitoring endpoint is named. */
const DEFAULT_CLIENT_PORT = 4222;

interface ParsedTrigger extends QueueTriggerParams {
  account: string;
  stream: string;
  consumer: string;
  /** host:port as written (natsServerMonitoringEndpoint). */
  endpoint: string | undefined;
  monitoringUrl: string | undefined;
  /** Where the JetStream API is read: natsURL, else the client port of the monitoring endpoint's host. */
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
    endpoint,
    monitoringUrl,
    natsURL: md.natsURL ?? (endpoint ? clientUrlOf(endpoint) : undefined),
  };
}

/** nats://<host of the monitoring endpoint>:4222 */
function clientUrlOf(endpoint: string): string | undefined {
  try {
    const u = new URL(`http://${endpoint}`);
    return `nats://${u.hostname}:${DEFAULT_CLIENT_PORT}`;
  } catch {
    return undefined;
  }
}

/** A failure to reach the endpoint at all (as opposed to an answer qscale did not like). */
function unreachable(err: unknown): boolean {
  const e = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (e as { code?: unknown } | null)?.code;
  if ((err as { code?: unknown } | null)?.code === 'ERR_TIMEOUT') return true;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT)$/.test(code);
}

function causeOf(err: unknown): string {
  const e = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'CONNECTION_REFUSED') return 'connection refused';
  return errorMessage(e);
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

export interface NatsScalerOptions {
  /** Where the one notice about reading over the JetStream API goes (default: the supervisor's log, as a warning). */
  notify?: (line: string) => void;
  /** The bound on one read (default TRIGGER_READ_TIMEOUT_MS). */
  timeoutMs?: number;
}

class NatsJetStreamScaler implements Scaler {
  readonly metricName: string;
  readonly metricType;
  readonly target: number;
  readonly activationTarget: number;
  readonly describes: string;
  private readonly link: TriggerConnection<NatsConnection> | undefined;
  private readonly timeoutMs: number;
  /** The monitoring endpoint could not be reached and the JetStream API answered: read there until it fails. */
  private overApi = false;
  private noticed = false;
  private jsm: { nc: NatsConnection; jsm: Promise<JetStreamManager> } | undefined;

  constructor(
    private readonly trigger: ResolvedTrigger,
    private readonly p: ParsedTrigger,
    private readonly opts: NatsScalerOptions = {},
  ) {
    this.metricName = `s${trigger.index}-nats-jetstream-${p.stream}`.toLowerCase();
    this.metricType = trigger.metricType;
    this.target = p.target;
    this.activationTarget = p.activationTarget;
    this.describes = `pending + ack-pending messages of consumer ${p.consumer} on stream ${p.stream}`;
    this.timeoutMs = opts.timeoutMs ?? TRIGGER_READ_TIMEOUT_MS;
    const url = p.natsURL;
    this.link = url
      ? new TriggerConnection(trigger.subject, () => connectNats({ urls: url }, 'qscale:keda-nats-jetstream', this.timeoutMs), (nc) => nc.close())
      : undefined;
  }

  async metricAndActivity(): Promise<MetricAndActivity> {
    const value = await this.read();
    return { value, active: value > this.activationTarget };
  }

  private async read(): Promise<number> {
    if (this.link?.isClosed) throw new TriggerClosedError(this.trigger.subject);
    const mon = this.p.monitoringUrl;
    let monitoringDown: string | undefined;
    if (mon && !this.overApi) {
      try {
        return await this.bounded((signal) => this.fromMonitoring(mon, signal));
      } catch (err) {
        if (!this.p.natsURL || !unreachable(err)) throw this.fail(`the monitoring endpoint ${this.p.endpoint ?? ''}`, causeOf(err), err);
        monitoringDown = causeOf(err);
      }
    }
    const api = redactUrl(this.p.natsURL ?? '');
    try {
      const value = await this.bounded(() => this.fromApi());
      if (monitoringDown !== undefined) {
        this.overApi = true;
        this.notice(monitoringDown, api);
      }
      return value;
    } catch (err) {
      this.overApi = false;
      const cause = scrubNats(causeOf(err), { urls: this.p.natsURL ?? '' });
      if (monitoringDown !== undefined) {
        throw this.fail(`the monitoring endpoint ${this.p.endpoint ?? ''} (${monitoringDown}) nor from the JetStream API at ${api}`, cause, err);
      }
      throw this.fail(`the JetStream API at ${api}`, cause, err);
    }
  }

  private bounded<T>(read: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    return withTimeout(read(abort.signal), this.timeoutMs, `no answer within ${this.timeoutMs} ms`, () => abort.abort());
  }

  private fail(where: string, cause: string, err: unknown): Error {
    if (err instanceof TriggerClosedError) return err;
    return new BrokerError(`${this.trigger.subject}: cannot read NATS JetStream lag from ${where}: ${cause}`, { cause: err });
  }

  private notice(monitoringDown: string, api: string): void {
    if (this.noticed) return;
    this.noticed = true;
    const line =
      `${this.trigger.subject}: the NATS monitoring endpoint ${this.p.endpoint ?? ''} cannot be reached (${monitoringDown}); ` +
      `reading the same lag (num_pending + num_ack_pending of consumer ${this.p.consumer}) over the JetStream API at ${api}. ` +
      'Local only: KEDA reads the monitoring endpoint alone, so on a cluster start the server with monitoring (nats-server -m 8222)';
    if (this.opts.notify) this.opts.notify(line);
    else createLogger('supervisor').warn(line);
  }

  private async fromMonitoring(url: string, signal: AbortSignal): Promise<number> {
    const res = await fetch(url, { signal });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const jsz = (await res.json()) as Jsz;
    const account = jsz.account_details?.find((a) => a.name === this.p.account);
    const stream = account?.stream_detail?.find((s) => s.name === this.p.stream);
    if (!stream) throw new Error(`stream '${this.p.stream}' not found in account '${this.p.account}'`);
    const c = stream.consumer_detail?.find((x) => x.name === this.p.consumer);
    if (!c) return stream.state?.last_seq ?? 0;
    return (c.num_pending ?? 0) + (c.num_ack_pending ?? 0);
  }

  private async fromApi(): Promise<number> {
    if (!this.link) throw new Error('no NATS URL');
    let nc = await this.link.get();
    if (nc.isClosed()) {
      this.link.reset(nc);
      nc = await this.link.get();
    }
    // One manager per connection: making one asks the server whether JetStream is on.
    if (this.jsm?.nc !== nc) {
      const made = { nc, jsm: nc.jetstreamManager({ timeout: this.timeoutMs }) };
      made.jsm.catch(() => {
        if (this.jsm === made) this.jsm = undefined;
      });
      this.jsm = made;
    }
    const jsm = await this.jsm.jsm;
    try {
      const c = await jsm.consumers.info(this.p.stream, this.p.consumer);
      return c.num_pending + c.num_ack_pending;
    } catch (err) {
      if (!/consumer not found/i.test(errorMessage(err))) {
        if (/stream not found/i.test(errorMessage(err))) throw new Error(`stream '${this.p.stream}' not found in account '${this.p.account}'`);
        throw err;
      }
      const s = await jsm.streams.info(this.p.stream);
      return s.state.last_seq;
    }
  }

  async close(): Promise<void> {
    await this.link?.close();
  }
}

export function createNatsJetStreamScaler(trigger: ResolvedTrigger, opts: NatsScalerOptions = {}): Scaler {
  return new NatsJetStreamScaler(trigger, parse(trigger), opts);
}

export const natsJetStreamTrigger: TriggerDefinition = {
  type: 'nats-jetstream',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parse(trigger);
    return { queueName, target, activationTarget };
  },
  create(trigger) {
    return createNatsJetStreamScaler(trigger);
  },
};
