/**
 * PostgreSQL connection strings in both forms users bring from Dapr and KEDA: a URL, or libpq keyword/value pairs
 * (KEDA builds the latter from host/port/userName/dbName/sslmode). node-pg only reads URLs, so the keyword form is
 * parsed here. `describe` gives the server without the password, for error messages.
 */
import type { ClientConfig } from 'pg';
import { Redactor } from '../../components/redact.js';

export interface PgConnection {
  config: ClientConfig;
  /** "postgres@127.0.0.1:5432/postgres": safe to print. */
  describe: string;
  /** The password, to scrub from any text a driver error might echo. */
  password: string | undefined;
}

export function parseConnection(text: string): PgConnection {
  const t = text.trim();
  if (/^postgres(ql)?:\/\//i.test(t)) return fromUrl(t);
  return fromKeywords(parseKeywords(t));
}

function fromUrl(t: string): PgConnection {
  let u: URL | undefined;
  try {
    u = new URL(t);
  } catch {
    // pg reports what it cannot read when it connects; the description just stays vague.
  }
  const password = u?.password ? decodeURIComponent(u.password) : undefined;
  const user = u?.username ? decodeURIComponent(u.username) : '';
  const host = u?.hostname || 'localhost';
  const db = u ? decodeURIComponent(u.pathname.replace(/^\//, '')) : '';
  return {
    config: { connectionString: t },
    describe: `${user ? user + '@' : ''}${host}:${u?.port || 5432}/${db || user}`,
    password,
  };
}

/** libpq keyword/value syntax: key = value, values optionally single-quoted with \' and \\ escapes. */
export function parseKeywords(t: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const skipSpace = (): void => {
    while (i < t.length && /\s/.test(t[i] ?? '')) i++;
  };
  while (true) {
    skipSpace();
    if (i >= t.length) break;
    let key = '';
    while (i < t.length && /[^\s=]/.test(t[i] ?? '')) key += t[i++];
    skipSpace();
    if (t[i] !== '=') throw new Error(`connection string: expected '=' after '${key}'`);
    i++;
    skipSpace();
    let value = '';
    if (t[i] === "'") {
      i++;
      while (i < t.length && t[i] !== "'") {
        if (t[i] === '\\' && i + 1 < t.length) i++;
        value += t[i++];
      }
      if (t[i] !== "'") throw new Error(`connection string: unterminated quote in value of '${key}'`);
      i++;
    } else {
      while (i < t.length && !/\s/.test(t[i] ?? '')) {
        if (t[i] === '\\' && i + 1 < t.length) i++;
        value += t[i++];
      }
    }
    out.set(key.toLowerCase(), value);
  }
  return out;
}

function fromKeywords(kv: Map<string, string>): PgConnection {
  const host = kv.get('host') ?? kv.get('hostaddr') ?? 'localhost';
  const port = Number(kv.get('port') ?? 5432);
  const user = kv.get('user');
  const database = kv.get('dbname') ?? user;
  const password = kv.get('password');
  const config: ClientConfig = { host, port, user, database, password };
  const ssl = sslFor(kv.get('sslmode'));
  if (ssl !== undefined) config.ssl = ssl;
  const appName = kv.get('application_name');
  if (appName) config.application_name = appName;
  return { config, describe: `${user ? user + '@' : ''}${host}:${port}/${database ?? ''}`, password };
}

function sslFor(mode: string | undefined): ClientConfig['ssl'] {
  switch (mode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return undefined;
    case 'require':
      return { rejectUnauthorized: false };
    default:
      return true;
  }
}

/** Removes the password from a text (a driver error) before it reaches a log or an error message. */
export function scrub(text: string, password: string | undefined): string {
  return new Redactor([password]).text(text);
}
