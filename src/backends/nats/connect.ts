/**
 * Connecting to NATS the same way for the binding and the trigger's protocol fallback: reconnect forever (a
 * server restart must not end a receiver), bounded first connect, credentials kept out of every message.
 */
import type * as NatsLib from 'nats';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { lazyModule } from '../lazy-require.js';

/** The nats client library, loaded on first use (see lazy-require.ts). */
export const natsLib = lazyModule<typeof NatsLib>('nats');
import { Redactor, redactUrl, secretsOf } from '../../components/redact.js';

export interface NatsTarget {
  urls: string;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
}

export function connectNats(target: NatsTarget, name: string, timeoutMs: number): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: target.urls.split(',').map((s) => s.trim()).filter(Boolean),
    name,
    timeout: timeoutMs,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  };
  if (target.user) opts.user = target.user;
  if (target.password) opts.pass = target.password;
  if (target.token) opts.token = target.token;
  return natsLib().connect(opts);
}

/** The servers as they may be printed. */
export function describe(target: NatsTarget): string {
  return redactUrl(target.urls);
}

/** Removes every secret of the target from a text before it is logged or thrown. */
export function scrubNats(text: string, target: NatsTarget): string {
  return new Redactor([target.password, target.token, ...secretsOf(undefined, { natsURL: target.urls })]).text(text);
}
