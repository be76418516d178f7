/**
 * A tiny client for RabbitMQ's management HTTP API: the only place that knows unacked counts and publish rates across
 * every connection (AMQP's passive declare reports ready messages only). Its figures are refreshed by the broker every
 * collect_statistics_interval (5 s by default), so they trail the queue by up to that much.
 */
import { BrokerError } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';
import { redactUrl, scrub } from './url.js';

export interface ManagedQueue {
  /** messages_ready */
  ready: number;
  /** messages_unacknowledged */
  unacked: number;
  /** messages (ready + unacked) */
  total: number;
  /** message_stats.publish_details.rate, messages/s; 0 when the broker has no rate yet. */
  publishRate: number;
}

export class ManagementClient {
  private readonly base: string;
  private readonly authHeader: string | undefined;
  private readonly password: string | undefined;

  constructor(baseUrl: string, private readonly timeoutMs = 5000) {
    const u = new URL(baseUrl);
    this.password = u.password ? decodeURIComponent(u.password) : undefined;
    this.authHeader = u.username
      ? 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${this.password ?? ''}`).toString('base64')
      : undefined;
    u.username = '';
    u.password = '';
    this.base = u.toString().replace(/\/$/, '');
  }

  /** Where it reads from, credentials removed: safe for messages. */
  get where(): string {
    return redactUrl(this.base);
  }

  /** The queue's counters; undefined when the queue does not exist. Answers or fails within the client's timeout. */
  async queue(vhost: string, name: string): Promise<ManagedQueue | undefined> {
    const url = `${this.base}/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`;
    const abort = new AbortController();
    const ask = async (): Promise<ManagedQueue | undefined> => {
      let res: Response;
      try {
        res = await fetch(url, { headers: this.authHeader ? { authorization: this.authHeader } : {}, signal: abort.signal });
      } catch (err) {
        const e = err instanceof Error && err.cause instanceof Error ? err.cause : err;
        const cause = e instanceof Error ? e.message : String(e);
        const refused = (e as { code?: unknown } | null)?.code === 'ECONNREFUSED';
        throw new BrokerError(
          `RabbitMQ management API at ${this.where} unreachable: ${scrub(cause, [this.password])}` +
            (refused ? ' (is the management plugin on? rabbitmq-plugins enable rabbitmq_management)' : ''),
        );
      }
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      if (res.status === 401) {
        await res.body?.cancel();
        throw new BrokerError(`RabbitMQ management API at ${this.where} refused the credentials (401)`);
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new BrokerError(`RabbitMQ management API at ${this.where} answered ${res.status} for queue '${name}'`);
      }
      const body = (await res.json()) as {
        messages_ready?: number;
        messages_unacknowledged?: number;
        messages?: number;
        message_stats?: { publish_details?: { rate?: number } };
      };
      const ready = body.messages_ready ?? 0;
      const unacked = body.messages_unacknowledged ?? 0;
      return {
        ready,
        unacked,
        total: body.messages ?? ready + unacked,
        publishRate: body.message_stats?.publish_details?.rate ?? 0,
      };
    };
    return withTimeout(ask(), this.timeoutMs, `RabbitMQ management API at ${this.where}: no answer within ${this.timeoutMs} ms`, () => abort.abort());
  }
}
