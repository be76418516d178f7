/**
 * KEDA's `nats-jetstream` trigger: metric = num_pending + num_ack_pending of the durable consumer, read from the
 * server's monitoring endpoint (/jsz?acc=<account>&consumers=true&config=true), target lagThreshold (10), active
 * above activationLagThreshold (0). The account is `accountID` (what /jsz is asked for) or `account`, matched by id
 * or by name as KEDA does. A stream without that consumer is an error naming both, as in KEDA since 2.20 (before, it
 * read as the stream's last sequence and scaled straight to the maximum); so is a stream that is not there.
 *
 * Locally, a server often runs without monitoring (no -m). When the monitoring endpoint cannot be reached, the
 * trigger reads the very same numbers from the consumer info over the JetStream API on the client port — the
 * qscale extension `natsURL`, else port 4222 of the monitoring endpoint's host — and says so once: KEDA reads the
 * monitoring endpoint only, so a cluster needs the server started with -m. With `natsURL` and no monitoring
 * endpoint, the JetStream API is read from the start.
 */
import type { JetStreamManager, NatsConnection } from 'nats';
import { BrokerError, errorMessage } from '../../errors.js';
import type { MetricAndActivity, QueueTriggerParams, ResolvedTrigger, Scaler, TriggerDefinition } from '../../autoscaler/scaler.js';
import { createLogger } from '../../util/log.js';
import { withTimeout } from '../../util/timeout.js';
import { TRIGGER_READ_TIMEOUT_MS, TriggerClosedError, TriggerConnection } from '../trigger-support.js';
import { defineTriggerMetadata, positiveTarget, triggerError } from '../trigger-metadata.js';
import { redactUrl } from './metadata.js';
import { connectNats, scrubNats } from './connect.js';

/** The NATS client port the JetStream API is read on when only a monitoring endpoint is named. */
const DEFAULT_CLIENT_PORT = 4222;

const AUTH_FIRST = ['authParams', 'triggerMetadata'] as const;

export const natsTriggerMetadata = defineTriggerMetadata([
  { name: 'natsServerMonitoringEndpoint', type: 'string', from: AUTH_FIRST, description: 'host:port of the server monitoring endpoint (/jsz).' },
  { name: 'account', type: 'string', from: AUTH_FIRST, description: 'Account name ($G on a server without accounts); or accountID.' },
  { name: 'accountID', type: 'string', from: AUTH_FIRST, description: 'Account id, asked of /jsz; defaults to account.' },
  { name: 'stream', type: 'string', required: true, description: 'Stream name.' },
  { name: 'consumer', type: 'string', required: true, description: 'Durable consumer name.' },
  { name: 'lagThreshold', type: 'int', default: '10', description: 'Target: pending + ack-pending messages per replica.' },
  { name: 'activationLagThreshold', type: 'int', default: '0', description: 'Active when the lag is above this.' },
  { name: 'useHttps', type: 'bool', default: 'false', description: 'Reach the monitoring endpoint over https.' },
  { name: 'natsURL', type: 'string', from: ['triggerMetadata', 'authParams', 'resolvedEnv'], extension: true,
    description: "qscale extension: where the consumer is read over the JetStream API when no monitoring endpoint is given or it cannot be reached (default: port 4222 of the endpoint's host)." },
] as const);

export interface NatsJetStreamSettings extends QueueTriggerParams {
  /** The account's name and id: /jsz is asked for the id; an account matches by either. */
  account: string | undefined;
  accountID: string;
  stream: string;
  consumer: string;
  /** host:port as written (natsServerMonitoringEndpoint). */
  endpoint: string | undefined;
  monitoringUrl: string | undefined;
  /** Where the JetStream API is read: natsURL, else the client port of the monitoring endpoint's host. */
  natsURL: string | undefined;
}

export function parseNatsJetStreamTrigger(trigger: ResolvedTrigger): NatsJetStreamSettings {
  const md = natsTriggerMetadata.parse(trigger);
  const endpoint = md.natsServerMonitoringEndpoint;
  if (!endpoint && !md.natsURL) {
    throw triggerError(trigger, "missing required metadata 'natsServerMonitoringEndpoint' (or, as a qscale extension, natsURL to read the consumer over NATS)", 'natsServerMonitoringEndpoint');
  }
  if (md.account === undefined && md.accountID === undefined) throw triggerError(trigger, 'no account name or id given: give account or accountID', 'account');
  const accountID = md.accountID ?? (md.account as string);
  positiveTarget(trigger, md.lagThreshold, 'lagThreshold');
  const monitoringUrl = endpoint
    ? `${md.useHttps ? 'https' : 'http'}://${endpoint}/jsz?acc=${encodeURIComponent(accountID)}&config=true&consumers=true`
    : undefined;
  return {
    queueName: md.stream,
    target: md.lagThreshold,
    activationTarget: md.activationLagThreshold,
    account: md.account,
    accountID,
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
export interface Jsz {
  account_details?: { id?: string; name?: string; stream_detail?: JszStream[] }[];
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
    private readonly p: NatsJetStreamSettings,
    private readonly opts: NatsScalerOptions = {},
  ) {
    this.metricName = `s${trigger.index}-` + `nats-jetstream-${p.stream}`.replace(/[/.:%()]/g, '-');
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
    return natsLagFromJsz((await res.json()) as Jsz, this.p);
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
      if (/stream not found/i.test(errorMessage(err))) throw new Error(`stream '${this.p.stream}' not found in account '${this.accountName}'`);
      if (/consumer not found/i.test(errorMessage(err))) throw new Error(consumerMissing(this.p));
      throw err;
    }
  }

  private get accountName(): string {
    return this.p.account ?? this.p.accountID;
  }

  async close(): Promise<void> {
    await this.link?.close();
  }
}

function consumerMissing(p: NatsJetStreamSettings): string {
  return `consumer '${p.consumer}' not found in stream '${p.stream}' (the binding creates it when it starts: check the consumer name)`;
}

/**
 * KEDA's reading of /jsz: the account whose id is accountID or whose name is account, its stream, the consumer's
 * num_pending + num_ack_pending; a missing stream or consumer is an error, never the stream's length.
 */
export function natsLagFromJsz(jsz: Jsz, p: Pick<NatsJetStreamSettings, 'account' | 'accountID' | 'stream' | 'consumer'>): number {
  const accounts = (jsz.account_details ?? []).filter((a) => a.id === p.accountID || (p.account !== undefined && a.name === p.account));
  const stream = accounts.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === p.stream);
  if (!stream) throw new Error(`stream '${p.stream}' not found in account '${p.account ?? p.accountID}'`);
  const c = stream.consumer_detail?.find((x) => x.name === p.consumer);
  if (!c) throw new Error(consumerMissing(p as NatsJetStreamSettings));
  return (c.num_pending ?? 0) + (c.num_ack_pending ?? 0);
}

export function createNatsJetStreamScaler(trigger: ResolvedTrigger, opts: NatsScalerOptions = {}): Scaler {
  return new NatsJetStreamScaler(trigger, parseNatsJetStreamTrigger(trigger), opts);
}

export const natsJetStreamTrigger: TriggerDefinition = {
  type: 'nats-jetstream',
  parseQueueParams(trigger) {
    const { queueName, target, activationTarget } = parseNatsJetStreamTrigger(trigger);
    return { queueName, target, activationTarget };
  },
  subscriptionRef(trigger) {
    const { stream, consumer } = parseNatsJetStreamTrigger(trigger);
    return { pubsubType: 'pubsub.jetstream', stream, durable: consumer };
  },
  create(trigger) {
    return createNatsJetStreamScaler(trigger);
  },
};
