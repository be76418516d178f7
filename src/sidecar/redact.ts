/**
 * Broker errors sometimes echo what they were given (a connection string, a URL with a password). Before an error
 * about a component reaches a log line or the API, every sensitive value of that component is cut out of it.
 */
import type { ResolvedComponent } from '../backends/types.js';

const SENSITIVE_KEY = /password|secret|token|connectionstring|key$|credential|sas/i;
const URL_USERINFO = /(\w+:\/\/[^:/@\s]*:)([^@\s]+)(@)/g;

function secretsOf(metadata: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (value.length < 4) continue;
    if (SENSITIVE_KEY.test(key)) out.push(value);
    // A password inside a URL may reach a message on its own (decoded), so it is cut out wherever it appears.
    for (const m of value.matchAll(URL_USERINFO)) {
      const pw = m[2];
      if (pw && pw.length >= 4) out.push(pw, decodeURIComponentSafe(pw));
    }
  }
  // Longest first: a connection string goes before a password it contains.
  return out.sort((a, b) => b.length - a.length);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function redactSecrets(text: string, component: Pick<ResolvedComponent, 'metadata'>): string {
  let out = text;
  for (const secret of secretsOf(component.metadata)) out = out.split(secret).join('***');
  return out.replace(URL_USERINFO, '$1***$3');
}
