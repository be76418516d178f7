/**
 * ioredis connections for the Redis queue and its trigger: fail fast with a clear reason at start, reconnect forever
 * afterwards. ioredis replays commands that were in flight when the connection dropped, so a dropped connection
 * delays work but loses none.
 */
import type * as IoRedis from 'ioredis';
import type { Redis } from 'ioredis';
import { lazyModule } from '../lazy-require.js';

const ioredis = lazyModule<typeof IoRedis>('ioredis');
import { BrokerError, errorMessage } from '../../errors.js';
import { Redactor } from '../../components/redact.js';

export interface RedisTarget {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
  reconnectWaitMs: number;
}

export function describeTarget(t: RedisTarget): string {
  return `redis://${t.username ? `${t.username}:***@` : t.password ? ':***@' : ''}${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${t.db}`;
}

/** Maps ioredis / socket failures to words a user can act on; `secrets`: the component's redactor, or the password. */
export function describeRedisError(err: unknown, secrets: Redactor | string | undefined): string {
  const e = err as { code?: string };
  const msg = (secrets instanceof Redactor ? secrets : new Redactor([secrets])).text(errorMessage(err));
  if (e.code === 'ECONNREFUSED') return 'connection refused (is Redis running on that host and port?)';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'host name not found';
  if (e.code === 'ETIMEDOUT') return 'connection timed out';
  if (/WRONGPASS|invalid username-password|invalid password/i.test(msg)) return 'login refused: check the user name and password';
  if (/NOAUTH/i.test(msg)) return 'authentication required: give a password';
  return msg;
}

/**
 * A connected client, named (CLIENT SETNAME) so operators see who holds connections: "qscale:<component>".
 * Fails with the reason the start failed; after start, errors are the caller's to log.
 */
export async function connectRedis(t: RedisTarget, timeoutMs: number, name: string): Promise<Redis> {
  let starting = true;
  let lastError: unknown;
  const client = new (ioredis().Redis)({
    host: t.host,
    port: t.port,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    db: t.db,
    ...(t.tls ? { tls: {} } : {}),
    lazyConnect: true,
    // RESP2: the stream replies keep the documented nested-array shapes the parsers in stream.ts read.
    protocol: 2,
    connectTimeout: timeoutMs,
    connectionName: name,
    // No retries while starting: a wrong host or password must surface now, not loop in the background.
    retryStrategy: () => (starting ? null : Math.max(50, t.reconnectWaitMs)),
    maxRetriesPerRequest: null,
  });
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    // The server accepts AUTH silently when it has no password; PING proves the session is usable.
    await client.ping();
  } catch (err) {
    client.disconnect();
    const reason = lastError ?? err;
    throw new BrokerError(describeRedisError(reason, t.password));
  } finally {
    clearTimeout(timer);
  }
  starting = false;
  return client;
}
