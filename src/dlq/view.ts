/**
 * What `qscale dlq` and GET /dlq show of dead letters: plain JSON (body as text or base64, times as ISO strings),
 * the selection a requeue or purge takes, and the errors each answers with (one catalog code, one HTTP status).
 */
import { isUtf8 } from 'node:buffer';
import type { DeadLetter } from '../backends/types.js';
import { CliError, type CliErrorCode } from '../cli/codes.js';

export interface DeadLetterView {
  binding: string;
  queue: string;
  id: string;
  /** Deliveries made before it was set aside. */
  deliveryCount: number;
  /** Why: the app's status and the first bytes of its answer, the handler's error, or the broker's own cause. */
  reason: string;
  /** ISO 8601, where the broker records it. */
  enqueuedAt?: string;
  deadLetteredAt?: string;
  metadata: Record<string, string>;
  /** The body as UTF-8 text when it is valid UTF-8, else base64 (see encoding). */
  body: string;
  encoding: 'utf8' | 'base64';
  /** The body's length in bytes. */
  bytes: number;
}

/** One binding's dead letters, or why they cannot be read. */
export interface BindingDeadLetters {
  binding: string;
  /** The component's type, e.g. bindings.rabbitmq. */
  type: string;
  queue: string;
  /** Set when `--embedded` serves this binding from the embedded queue. */
  servedBy?: 'embedded';
  /** Whether its backend offers list, show, requeue and purge of dead letters. */
  supported: boolean;
  /** Oldest first, at most the limit asked for. */
  deadLetters: DeadLetterView[];
  /** The broker's count of dead letters, where it could be read. */
  total?: number;
  /** More dead letters than the limit. */
  more: boolean;
  error?: { code: CliErrorCode; message: string };
}

export interface DlqListing {
  bindings: BindingDeadLetters[];
}

/** Which dead letters a requeue or purge takes: some by id, or all; in one binding or in every one. */
export interface Selection {
  binding?: string;
  ids?: readonly string[];
  all?: boolean;
}

/** What one binding did of a requeue, a purge or a queue purge. */
export interface BindingOutcome {
  binding: string;
  type: string;
  queue: string;
  /** How many messages it requeued or deleted. */
  count: number;
  error?: { code: CliErrorCode; message: string };
}

export interface ActionResult {
  action: 'requeue' | 'purge' | 'queue-purge';
  /** The sum over the bindings. */
  count: number;
  bindings: BindingOutcome[];
  /** Ids asked for that no binding holds (requeued or purged meanwhile, or mistyped). */
  notFound: string[];
}

/** The HTTP status each code answers with on the supervisor's API. */
const HTTP_STATUS: Partial<Record<string, number>> = {
  ERR_DLQ_BINDING: 404,
  ERR_DLQ_NOT_FOUND: 404,
  ERR_DLQ_SELECTION: 400,
  ERR_DLQ_AMBIGUOUS: 409,
  ERR_DLQ_UNSUPPORTED: 501,
  ERR_DLQ_BROKER: 503,
  ERR_TIMEOUT: 504,
};

/** A dead-letter failure: a catalog code (hence exit status) and the HTTP status the API answers with. */
export class DlqError extends CliError {
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'DlqError';
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code] ?? 500;
  }
}

export function httpStatusOf(code: string): number {
  return HTTP_STATUS[code] ?? 500;
}

function iso(ms: number | undefined): string | undefined {
  return ms !== undefined && Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

export function viewOf(d: DeadLetter, at: { binding: string; queue: string }): DeadLetterView {
  const text = isUtf8(d.data);
  return {
    binding: at.binding,
    queue: at.queue,
    id: d.id,
    deliveryCount: d.deliveryCount,
    reason: d.reason,
    enqueuedAt: iso(d.enqueuedAt),
    deadLetteredAt: iso(d.deadLetteredAt),
    metadata: { ...d.metadata },
    body: text ? d.data.toString('utf8') : d.data.toString('base64'),
    encoding: text ? 'utf8' : 'base64',
    bytes: d.data.length,
  };
}

/**
 * Refuses a requeue or purge that does not say which dead letters: ids or all, not both, not neither. `how` words
 * the way out for the caller (flags for the CLI, fields for the API).
 */
export function checkSelection(sel: Selection, how: { ids: string; all: string; verb: string }): 'all' | readonly string[] {
  const ids = sel.ids ?? [];
  if (sel.all && ids.length > 0) throw new DlqError('ERR_DLQ_SELECTION', `${sel.all ? how.all : ''} and ${how.ids} both given: ${how.verb} either the dead letters named or all of them, not both`);
  if (sel.all) return 'all';
  if (ids.length === 0) throw new DlqError('ERR_DLQ_SELECTION', `no dead letters named: give ${how.ids} to ${how.verb} those, or ${how.all} to ${how.verb} every one`);
  const blank = ids.findIndex((id) => id.trim() === '');
  if (blank >= 0) throw new DlqError('ERR_DLQ_SELECTION', `${how.ids}: entry ${blank + 1} is empty`);
  return ids;
}
