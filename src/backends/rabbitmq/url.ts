/**
 * AMQP / management URLs carry credentials: everything here exists so that no message or log line shows them.
 */

/** The URL with its password replaced by '***' (user name kept: it helps to see who was refused). */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

/** Removes any secret that leaked into a broker's error text (some client errors echo the URL). */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}

/** The password of a URL, decoded, for scrub(). */
export function passwordOf(raw: string): string | undefined {
  try {
    const p = new URL(raw).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

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
