/**
 * AMQP / management URLs: the vhost they name, the management API they imply. Their credentials are cut out of
 * every message by the one redactor (components/redact.ts).
 */
import { Redactor, passwordOf, redactUrl as redactText } from '../../components/redact.js';

/** The URL with its password replaced by '***' (user name kept: it helps to see who was refused). */
export function redactUrl(raw: string): string {
  return redactText(raw).replace(/\/$/, '');
}

/** Removes any secret that leaked into a broker's error text (some client errors echo the URL). */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  return new Redactor(secrets).text(text);
}

export { passwordOf };

/** The vhost an AMQP URL names: its path without the leading slash, '/' when empty (RabbitMQ's default). */
export function vhostOf(amqpUrl: string): string {
  const u = new URL(amqpUrl);
  const path = u.pathname.replace(/^\//, '');
  return path === '' ? '/' : decodeURIComponent(path);
}

/**
 * The management API base the broker most likely serves, from its AMQP URL: same host and credentials,
 * port 15672 (15671 with amqps), guest/guest when the URL names no user (RabbitMQ's default).
 */
export function managementUrlFromAmqp(amqpUrl: string): string {
  const u = new URL(amqpUrl);
  const tls = u.protocol === 'amqps:';
  const m = new URL(`${tls ? 'https' : 'http'}://${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${tls ? 15671 : 15672}`);
  m.username = u.username || 'guest';
  m.password = u.username ? u.password : 'guest';
  return m.toString().replace(/\/$/, '');
}
