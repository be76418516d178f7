/**
 * One AMQP connection that comes back by itself. A broker may close connections at any time (restart, policy,
 * `rabbitmqctl close_all_connections`): the link reconnects every reconnectWait and tells its users, who re-open
 * their channels. Unacked deliveries of the dropped connection go back to the queue, so nothing is lost.
 */
import type Amqp from 'amqplib';
import { lazyModule } from '../lazy-require.js';
import type { ChannelModel } from 'amqplib';
import { BrokerError, errorMessage } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { redactUrl, vhostOf } from './url.js';
import { Redactor } from '../../components/redact.js';
import { unreachable } from '../unreachable.js';

/** The amqplib client library, loaded on first use (see lazy-require.ts). */
const amqp = lazyModule<typeof Amqp>('amqplib');

export interface LinkOptions {
  url: string;
  tls: { ca?: string; cert?: string; key?: string; external: boolean };
  reconnectWaitMs: number;
  logger: Logger;
  /** "component message-queue (bindings.rabbitmq)" or "trigger 0 (rabbitmq) of ScaledObject x" */
  subject: string;
  /** Shown by the broker (management UI, rabbitmqctl list_connections), e.g. "qscale:message-queue". */
  connectionName: string;
  /** Cuts the component's secrets out of every message (components/redact.ts). */
  redactor: Redactor;
  /** Heartbeat asked of the broker, in seconds; omitted: amqplib's default (the broker's proposal). */
  heartbeatSeconds?: number;
  /** The metadata field that sets reconnectWaitMs, as outage messages name it. Default: reconnectWaitInSeconds. */
  reconnectField?: string;
}

/** Maps amqplib / socket failures to words a user can act on; `secrets`: the component's redactor, or the secrets. */
export function describeAmqpError(err: unknown, secrets: Redactor | readonly (string | undefined)[] = [], vhost?: string): string {
  const e = err as { code?: string | number; message?: string };
  const msg = (secrets instanceof Redactor ? secrets : new Redactor(secrets)).text(errorMessage(err));
  if (e.code === 'ECONNREFUSED') return 'connection refused (is RabbitMQ running on that host and port?)';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'host name not found';
  if (e.code === 'ETIMEDOUT') return 'connection timed out';
  if (/ACCESS.REFUSED/i.test(msg) && /login/i.test(msg)) return 'login refused: check the user name and password';
  if (/NOT.ALLOWED/i.test(msg) && /vhost/i.test(msg)) return `virtual host refused: ${msg}`;
  // The broker closes the handshake without words when the vhost is missing or not granted to the user.
  if (/Expected ConnectionOpenOk/i.test(msg)) {
    return `virtual host '${vhost ?? '/'}' refused: it does not exist or this user has no access to it`;
  }
  return msg;
}

export class AmqpLink {
  private conn: ChannelModel | undefined;
  private closed = false;
  private reconnecting = false;
  /** Why the last (re)connect attempt failed; cleared by a connection. While set, the broker is known to be down. */
  private lastFailure: string | undefined;
  private readonly waiters = new Set<() => void>();
  /** Told the cause of every failed reconnect attempt (receive loops report the outage). */
  private readonly failureListeners = new Set<(cause: string) => void>();
  private readonly secrets: Redactor;
  readonly where: string;

  constructor(private readonly opts: LinkOptions) {
    this.secrets = opts.redactor;
    this.where = redactUrl(opts.url);
  }

  /** The first connection: fails with a clear error instead of retrying, so a bad config surfaces at start. */
  async open(timeoutMs: number): Promise<ChannelModel> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const conn = await Promise.race([this.dial(timeoutMs), timeout]);
      this.adopt(conn);
      return conn;
    } catch (err) {
      throw new BrokerError(`${this.opts.subject}: cannot connect to RabbitMQ at ${this.where}: ${describeAmqpError(err, this.secrets, vhostOf(this.opts.url))}`);
    } finally {
      clearTimeout(timer);
    }
  }

  get current(): ChannelModel | undefined {
    return this.conn;
  }

  /**
   * Calls `listener` with the cause of each failed reconnect attempt; returns how to stop. A connection that drops
   * and comes right back calls nothing: only a broker that stays away is an outage.
   */
  onReconnectFailure(listener: (cause: string) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /**
   * The live connection, waiting through a reconnect for at most timeoutMs (or until signal aborts). With `doing`
   * (send, depth: what the caller was about to do), a broker known to be down fails the call at once instead of
   * waiting: the last reconnect attempt failed.
   */
  async get(timeoutMs: number, opts: { signal?: AbortSignal; doing?: string } = {}): Promise<ChannelModel> {
    const { signal, doing } = opts;
    const deadline = Date.now() + timeoutMs;
    while (!this.conn) {
      if (this.closed) throw new BrokerError(`${this.opts.subject}: closed`);
      if (signal?.aborted) throw new BrokerError(`${this.opts.subject}: stopped`);
      const left = deadline - Date.now();
      if (doing !== undefined && this.lastFailure !== undefined) throw this.down(doing, this.lastFailure);
      if (left <= 0) throw this.down(doing ?? 'connect', `no connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          signal?.removeEventListener('abort', done);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        signal?.addEventListener('abort', done, { once: true });
        this.waiters.add(done);
      });
    }
    return this.conn;
  }

  private down(doing: string, cause: string): BrokerError {
    return unreachable({ subject: this.opts.subject, broker: 'RabbitMQ', where: this.where }, doing, cause,
      `qscale reconnects every ${this.opts.reconnectWaitMs / 1000} s (${this.opts.reconnectField ?? 'reconnectWaitInSeconds'})`);
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = undefined;
    for (const w of [...this.waiters]) w();
    if (c) await c.close().catch(() => undefined);
  }

  private async dial(timeoutMs: number): Promise<ChannelModel> {
    const { tls } = this.opts;
    const socketOptions: Record<string, unknown> = { timeout: timeoutMs, clientProperties: { connection_name: this.opts.connectionName } };
    if (tls.ca) socketOptions.ca = [tls.ca];
    if (tls.cert) socketOptions.cert = tls.cert;
    if (tls.key) socketOptions.key = tls.key;
    if (tls.external) socketOptions.credentials = amqp().credentials.external();
    return amqp().connect(withHeartbeat(this.opts.url, this.opts.heartbeatSeconds), socketOptions);
  }

  // The link logs at debug only: an outage reaches the user once, through whoever uses the link (the receive loop's
  // onBrokerState, the errors of send and depth), never once per attempt.
  private adopt(conn: ChannelModel): void {
    this.conn = conn;
    this.lastFailure = undefined;
    // Without an 'error' listener a broker-side close would crash the process.
    conn.on('error', (err: Error) => {
      this.opts.logger.debug(`RabbitMQ connection error: ${describeAmqpError(err, this.secrets)}`);
    });
    conn.on('close', () => {
      if (this.conn === conn) this.conn = undefined;
      if (!this.closed) {
        this.opts.logger.debug(`RabbitMQ connection to ${this.where} closed; reconnecting every ${this.opts.reconnectWaitMs} ms`);
        void this.reconnect();
      }
    });
    for (const w of [...this.waiters]) w();
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    // The first retry is quick: a forced close usually leaves the broker itself up.
    let wait = Math.min(200, this.opts.reconnectWaitMs);
    try {
      while (!this.closed && !this.conn) {
        await new Promise((r) => setTimeout(r, wait));
        wait = this.opts.reconnectWaitMs;
        if (this.closed) return;
        try {
          const conn = await this.dial(10_000);
          if (this.closed) {
            await conn.close().catch(() => undefined);
            return;
          }
          this.adopt(conn);
          this.opts.logger.debug(`reconnected to RabbitMQ at ${this.where}`);
        } catch (err) {
          const cause = describeAmqpError(err, this.secrets);
          this.opts.logger.debug(`reconnect to RabbitMQ at ${this.where} failed: ${cause}; retrying every ${this.opts.reconnectWaitMs} ms`);
          this.lastFailure = cause;
          // Calls waiting for the connection learn now that the broker is down.
          for (const w of [...this.waiters]) w();
          for (const l of [...this.failureListeners]) l(cause);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }
}

/** The URL as dialled: amqplib reads the heartbeat from the query; one the URL already names wins. */
function withHeartbeat(url: string, seconds: number | undefined): string {
  if (seconds === undefined) return url;
  const u = new URL(url);
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(Math.max(0, Math.round(seconds))));
  return u.toString();
}
