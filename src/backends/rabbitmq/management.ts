/**
 * A tiny client for RabbitMQ's management HTTP API: the only place that knows unacked counts and message rates across
 * every connection (AMQP's passive declare reports ready messages only). Its figures are refreshed by the broker every
 * collect_statistics_interval (5 s by default), so they trail the queue by up to that much.
 */
import type * as Undici from 'undici';
import { lazyModule } from '../lazy-require.js';
import { BrokerError } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';
import { redactUrl, scrub } from './url.js';

/** undici, loaded on first use (see lazy-require.ts). */
const undici = lazyModule<typeof Undici>('undici');

export interface ManagedQueue {
  name: string;
  /** messages_ready */
  ready: number;
  /** messages_unacknowledged */
  unacked: number;
  /** messages (ready + unacked) */
  total: number;
  /** message_stats.publish_details.rate, messages/s; 0 when the broker has no rate yet. */
  publishRate: number;
  /** message_stats.deliver_get_details.rate, messages/s; 0 when the broker has no rate yet. */
  deliverGetRate: number;
}

/** TLS towards an https management API: PEM texts, as a TriggerAuthentication gives them. */
export interface ManagementTls {
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  /** false with unsafeSsl: the server's certificate is not verified. */
  rejectUnauthorized: boolean;
}

interface QueueBody {
  name?: string;
  messages_ready?: number;
  messages_unacknowledged?: number;
  messages?: number;
  message_stats?: { publish_details?: { rate?: number }; deliver_get_details?: { rate?: number } };
}

function toQueue(body: QueueBody): ManagedQueue {
  const ready = body.messages_ready ?? 0;
  const unacked = body.messages_unacknowledged ?? 0;
  return {
    name: body.name ?? '',
    ready,
    unacked,
    total: body.messages ?? ready + unacked,
    publishRate: body.message_stats?.publish_details?.rate ?? 0,
    deliverGetRate: body.message_stats?.deliver_get_details?.rate ?? 0,
  };
}

export class ManagementClient {
  private readonly base: string;
  private readonly authHeader: string | undefined;
  private readonly password: string | undefined;
  private readonly dispatcher: Undici.Agent;

  /** `baseUrl` may carry credentials and a path prefix (a management API behind a proxy path). */
  constructor(baseUrl: string, private readonly timeoutMs = 5000, tls?: ManagementTls) {
    const u = new URL(baseUrl);
    this.password = u.password ? decodeURIComponent(u.password) : undefined;
    this.authHeader = u.username
      ? 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${this.password ?? ''}`).toString('base64')
      : undefined;
    u.username = '';
    u.password = '';
    this.base = u.toString().replace(/\/$/, '');
    this.dispatcher = new (undici().Agent)({ connect: { ...(tls ?? {}), timeout: timeoutMs }, keepAliveTimeout: 10_000 });
  }

  /** Where it reads from, credentials removed: safe for messages. */
  get where(): string {
    return redactUrl(this.base);
  }

  /** The queue's counters; undefined when the queue does not exist. Answers or fails within the client's timeout. */
  queue(vhost: string, name: string): Promise<ManagedQueue | undefined> {
    return this.queueAt(`/${encodeURIComponent(vhost)}`, name);
  }

  /** As queue(), with the vhost as a path segment already escaped (`/%2F`, `/prod`), the way KEDA builds it. */
  async queueAt(vhostPath: string, name: string): Promise<ManagedQueue | undefined> {
    const body = await this.get<QueueBody>(`/api/queues${vhostPath}/${encodeURIComponent(name)}`, `queue '${name}'`);
    return body === undefined ? undefined : toQueue(body);
  }

  /** The queues of a vhost whose names match `regex` (one page of `pageSize`), and how many pages there are. */
  async queuesMatching(vhostPath: string, regex: string, pageSize: number): Promise<{ queues: ManagedQueue[]; pageCount: number }> {
    const query = `page=1&use_regex=true&pagination=false&name=${encodeURIComponent(regex)}&page_size=${pageSize}`;
    const body = await this.get<{ items?: QueueBody[]; page_count?: number }>(`/api/queues${vhostPath}?${query}`, `queues matching '${regex}'`);
    return { queues: (body?.items ?? []).map(toQueue), pageCount: body?.page_count ?? 1 };
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  /** GET of a JSON document; undefined on 404. */
  private get<T>(path: string, what: string): Promise<T | undefined> {
    const abort = new AbortController();
    const ask = async (): Promise<T | undefined> => {
      let res: Awaited<ReturnType<typeof Undici.request>>;
      try {
        res = await undici().request(`${this.base}${path}`, {
          headers: this.authHeader ? { authorization: this.authHeader } : {},
          signal: abort.signal,
          dispatcher: this.dispatcher,
        });
      } catch (err) {
        const e = err instanceof Error && err.cause instanceof Error ? err.cause : err;
        const cause = e instanceof Error ? e.message : String(e);
        const code = (e as { code?: unknown } | null)?.code ?? (err as { code?: unknown } | null)?.code;
        throw new BrokerError(
          `RabbitMQ management API at ${this.where} unreachable: ${scrub(cause, [this.password])}` +
            (code === 'ECONNREFUSED' ? ' (is the management plugin on? rabbitmq-plugins enable rabbitmq_management)' : ''),
        );
      }
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode === 401) {
        await res.body.dump();
        throw new BrokerError(`RabbitMQ management API at ${this.where} refused the credentials (401)`);
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump();
        throw new BrokerError(`RabbitMQ management API at ${this.where} answered ${res.statusCode} for ${what}`);
      }
      return (await res.body.json()) as T;
    };
    return withTimeout(ask(), this.timeoutMs, `RabbitMQ management API at ${this.where}: no answer within ${this.timeoutMs} ms`, () => abort.abort());
  }
}
