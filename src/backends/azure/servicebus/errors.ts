/**
 * Service Bus failures in one readable shape: the SDK's code (ServiceBusError.code, RestError.code / statusCode)
 * and message, with every secret scrubbed out.
 */
import { errorMessage } from '../../../errors.js';
import { scrub } from './connection.js';

/** Errors no retry can fix: receive stops and reports them. */
const FATAL_CODES = new Set(['MessagingEntityNotFound', 'MessagingEntityDisabled', 'UnauthorizedAccess', 'UnauthorizedRequestError']);

export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const status = (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') return `HTTP ${status}`;
  }
  return undefined;
}

export function isFatal(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && FATAL_CODES.has(code);
}

export function describeServiceBusError(err: unknown, secrets: readonly string[]): string {
  const code = codeOf(err);
  const msg = errorMessage(err).split('\n')[0] ?? '';
  const text = code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  return scrub(text, secrets);
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || /aborted/i.test(err.message));
}
