/**
 * One LISTEN connection per backend that wakes idle receivers the moment a message lands. It reconnects on its own
 * when the server drops it (restart, pg_terminate_backend), and wakes everyone after a reconnect because
 * notifications sent while it was away are gone.
 */
import type Pg from 'pg';
import { lazyModule } from '../lazy-require.js';
import type { Logger } from '../../util/log.js';
import { errorMessage } from '../../errors.js';
import { scrub } from './connection.js';

/** The pg client library, loaded on first use (see lazy-require.ts). */
const pg = lazyModule<typeof Pg>('pg');

export class PgListener {
  private client: Pg.Client | undefined;
  private closed = false;
  private retryMs = 100;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly config: Pg.ClientConfig,
    private readonly channel: string,
    private readonly queue: string,
    private readonly logger: Logger,
    private readonly password: string | undefined,
  ) {}

  start(): void {
    void this.connect();
  }

  /** Calls `wake` on every notification for this queue (and after a reconnect); returns how to stop. */
  subscribe(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.wakeAll();
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new (pg().Client)(this.config);
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, undefined));
    client.on('notification', (n) => {
      if (n.channel === this.channel && n.payload === this.queue) this.wakeAll();
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
      this.retryMs = 100;
      this.wakeAll();
    } catch (err) {
      this.lost(client, err);
    }
  }

  private lost(client: Pg.Client, err: unknown): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    // Debug only: receiving goes on by polling meanwhile, and a server that is away is reported once by the
    // receive loop (onBrokerState).
    this.logger.debug(
      `LISTEN connection lost (${err === undefined ? 'connection ended' : scrub(errorMessage(err), this.password)}), reconnecting in ${this.retryMs} ms`,
    );
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }
}
