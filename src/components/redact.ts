/**
 * The one redactor. What is secret comes from the component's declared metadata (fields marked `sensitive`), from
 * keys named like secrets that no declaration covers, and from inside values: the password of a URL
 * (amqp://user:password@host) and the secret pairs of a connection string (password=..., SharedAccessKey=...).
 * Every log line, error message and API answer about a component goes through here before it leaves the process.
 */
import type { FieldSpec } from './metadata.js';

/** Undeclared keys (and connection-string keys) whose name says secret: better safe in a log line. */
const SECRET_WORD = /password|passwd|secret|token|connectionstring|credential|sharedaccess|accountkey|sas$|key$/i;

function namedLikeSecret(key: string): boolean {
  // SharedAccessKeyName names the key; it is not the key.
  return SECRET_WORD.test(key) && !/name$/i.test(key);
}
/** scheme://userinfo@ — userinfo is "user:password" or a bare token. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*)@/gi;
/** Schemes whose userinfo without a colon is a user name (postgres://postgres@host), not a token (nats://token@host). */
const USER_ONLY = /^(postgres(ql)?|mysql|amqps?):\/\/$/i;
/** key=value pairs of connection strings: ';' separated (Service Bus, ADO), or space separated with optional quotes (libpq). */
const PAIR_SEMICOLON = /(?:^|;)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=([^;]*)/g;
const PAIR_SPACE = /(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g;
const MIN_SECRET = 3;

/** A URL, or a comma-separated list of them, with every password (or bare token) replaced by '***'; users kept. */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    if (colon < 0) return USER_ONLY.test(scheme) ? `${scheme}${userinfo}@` : `${scheme}***@`;
    return `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
}

/** The password of a URL (or its bare token), decoded; undefined when it has none. */
export function passwordOf(url: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^\s/?#@]*)@/i.exec(url.trim());
  if (!m?.[1]) return undefined;
  const colon = m[1].indexOf(':');
  const raw = colon < 0 ? m[1] : m[1].slice(colon + 1);
  return raw === '' ? undefined : decoded(raw);
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The secrets found inside one value: URL passwords and tokens, and secret pairs of a connection string. */
function secretsInside(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(URL_USERINFO)) {
    const userinfo = m[2] ?? '';
    const colon = userinfo.indexOf(':');
    const raw = colon >= 0 ? userinfo.slice(colon + 1) : USER_ONLY.test(m[1] ?? '') ? '' : userinfo;
    if (raw) out.push(raw, decoded(raw));
  }
  for (const pattern of [PAIR_SEMICOLON, PAIR_SPACE]) {
    for (const m of value.matchAll(pattern)) {
      if (!namedLikeSecret(m[1] ?? '')) continue;
      const v = (m[2] ?? '').trim();
      out.push(v, v.startsWith("'") ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v);
    }
  }
  return out;
}

/** Cuts given secrets, and any URL password, out of texts. */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string | undefined>) {
    const set = new Set<string>();
    for (const s of secrets) if (s !== undefined && s.length >= MIN_SECRET) set.add(s);
    // Longest first: a connection string goes before a password it contains.
    this.secrets = [...set].sort((a, b) => b.length - a.length);
  }

  text(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return redactUrl(out);
  }
}

function fieldOf(fields: readonly FieldSpec[] | undefined, key: string): FieldSpec | undefined {
  const k = key.toLowerCase();
  return fields?.find((f) => f.name.toLowerCase() === k || (f.aliases ?? []).some((a) => a.toLowerCase() === k));
}

/** Whether a metadata key holds a secret: declared sensitive, or undeclared and named like one. */
export function isSensitive(fields: readonly FieldSpec[] | undefined, key: string): boolean {
  const f = fieldOf(fields, key);
  return f ? f.sensitive === true : namedLikeSecret(key);
}

/** Every secret of a component's metadata, whole values of sensitive keys and what hides inside any value. */
export function secretsOf(fields: readonly FieldSpec[] | undefined, metadata: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (isSensitive(fields, key)) out.push(value, ...secretsInside(value));
    else out.push(...secretsInside(value));
  }
  return out;
}

/** The redactor for one component (or trigger): its declared fields and its metadata values. */
export function redactorFor(fields: readonly FieldSpec[] | undefined, metadata: Readonly<Record<string, string>>, extra: Iterable<string | undefined> = []): Redactor {
  return new Redactor([...secretsOf(fields, metadata), ...extra]);
}

/** A copy of metadata safe to log: sensitive values become '***', URL passwords inside the others too. */
export function redactMetadata(fields: readonly FieldSpec[] | undefined, metadata: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) out[k] = isSensitive(fields, k) ? '***' : redactorFor(fields, { [k]: v }).text(v);
  return out;
}
