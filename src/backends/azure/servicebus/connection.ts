/**
 * Service Bus connection strings: checked before the SDK sees them, so a bad one gets a message naming the component
 * and the missing part, and never the SharedAccessKey. Every error text that leaves this module is scrubbed of it.
 */
import { Redactor, secretsOf as secretsIn } from '../../../components/redact.js';

export interface ConnectionParts {
  /** sb://host[:port]/ */
  endpoint: string;
  /** Fully qualified namespace, e.g. mynamespace.servicebus.windows.net, or 127.0.0.1:5672. */
  host: string;
  keyName: string | undefined;
  key: string | undefined;
  signature: string | undefined;
  entityPath: string | undefined;
  /** UseDevelopmentEmulator=true: plain AMQP (no TLS), port 5672 unless the endpoint names one. */
  emulator: boolean;
  /** The connection string without EntityPath: the queue is always named explicitly. */
  withoutEntityPath: string;
}

/** Why the connection string is unusable (never quoting it), or the parts. */
export function parseConnectionString(text: string): ConnectionParts | string {
  const pairs = new Map<string, string>();
  const kept: string[] = [];
  for (const raw of text.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z]+$/.test(part.slice(0, eq).trim())) return "it must be a list of Key=Value pairs separated by ';' (e.g. Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...)";
    const key = part.slice(0, eq).trim();
    pairs.set(key.toLowerCase(), part.slice(eq + 1).trim());
    if (key.toLowerCase() !== 'entitypath') kept.push(part);
  }
  const endpoint = pairs.get('endpoint');
  if (!endpoint) return "it has no Endpoint=sb://<namespace>.servicebus.windows.net/";
  const m = /^sb:\/\/([^/]+)\/?$/i.exec(endpoint);
  if (!m || !m[1]) return `its Endpoint must look like sb://<namespace>.servicebus.windows.net/, got '${endpoint}'`;
  const signature = pairs.get('sharedaccesssignature');
  const keyName = pairs.get('sharedaccesskeyname');
  const key = pairs.get('sharedaccesskey');
  if (!signature) {
    if (!keyName) return 'it has no SharedAccessKeyName (or SharedAccessSignature)';
    if (!key) return 'it has no SharedAccessKey (or SharedAccessSignature)';
  }
  return {
    endpoint,
    host: m[1],
    keyName,
    key,
    signature,
    entityPath: pairs.get('entitypath') || undefined,
    emulator: (pairs.get('usedevelopmentemulator') ?? '').toLowerCase() === 'true',
    withoutEntityPath: kept.join(';'),
  };
}

/** The secret parts of a connection string (the whole, its SharedAccessKey / SharedAccessSignature), for scrubbing. */
export function secretsOf(text: string | undefined): string[] {
  return text ? secretsIn(undefined, { connectionString: text }) : [];
}

export function scrub(text: string, secrets: readonly string[]): string {
  return new Redactor(secrets).text(text);
}
