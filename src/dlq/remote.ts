/**
 * The dead-letter API of a running `qscale up`, as `qscale dlq` uses it: that supervisor knows --embedded and the
 * components as it resolved them, so its answer is the system's own.
 */
import { request } from 'undici';
import { CLI_ERRORS, CliError, type CliErrorCode } from '../cli/codes.js';
import { QscaleError } from '../errors.js';
import { API_TIMEOUT_MS } from './http.js';
import type { DeadLetterApi } from './service.js';
import { DlqError, type ActionResult, type DeadLetterView, type DlqListing, type Selection } from './view.js';

export class RemoteDeadLetters implements DeadLetterApi {
  constructor(readonly url: string) {}

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(`${this.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        // The supervisor bounds its own calls; this only covers a supervisor that stopped answering.
        headersTimeout: API_TIMEOUT_MS + 5000,
        bodyTimeout: API_TIMEOUT_MS + 5000,
      });
    } catch (err) {
      throw new CliError('ERR_NOT_RUNNING', `cannot reach the supervisor at ${this.url} (${(err as { code?: string }).code ?? (err as Error).message}): is \`qscale up\` still running?`);
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CliError('ERR_STATUS', `supervisor at ${this.url} answered ${method} ${path} with ${res.statusCode} and no JSON: ${text.slice(0, 200)}`);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return json as T;
    const { errorCode, message } = (json ?? {}) as { errorCode?: string; message?: string };
    if (res.statusCode === 404 && errorCode === 'ERR_NOT_FOUND') {
      throw new CliError('ERR_STATUS', `the supervisor at ${this.url} serves no dead-letter API (${method} ${path} answered 404): it is an older qscale; restart \`qscale up\``);
    }
    const code: CliErrorCode = errorCode !== undefined && errorCode in CLI_ERRORS ? (errorCode as CliErrorCode) : 'ERR_STATUS';
    throw new DlqError(code, message ?? `supervisor at ${this.url} answered ${res.statusCode}`);
  }

  list(opts: { binding?: string; limit: number }): Promise<DlqListing> {
    const q = new URLSearchParams({ limit: String(opts.limit) });
    if (opts.binding !== undefined) q.set('binding', opts.binding);
    return this.call('GET', `/dlq?${q.toString()}`);
  }

  async show(id: string, binding?: string): Promise<DeadLetterView> {
    if (binding !== undefined) return this.call('GET', `/dlq/${encodeURIComponent(binding)}/${encodeURIComponent(id)}`);
    // Each binding in turn, as the supervisor would search them.
    const { bindings } = await this.list({ limit: 0 });
    const found: DeadLetterView[] = [];
    const unsearched: string[] = [];
    for (const b of bindings) {
      if (b.error) {
        unsearched.push(b.error.message);
        continue;
      }
      try {
        found.push(await this.show(id, b.binding));
      } catch (err) {
        if (err instanceof QscaleError && err.code === 'ERR_DLQ_NOT_FOUND') continue;
        throw err;
      }
    }
    if (found.length > 1) throw new DlqError('ERR_DLQ_AMBIGUOUS', `dead letter id ${id} is held by bindings ${found.map((f) => f.binding).join(' and ')}: name one with --binding`);
    const one = found[0];
    if (!one) throw new DlqError('ERR_DLQ_NOT_FOUND', `no dead letter with id ${id}${unsearched.length > 0 ? `; not searched: ${unsearched.join('; ')}` : ' (requeued or purged meanwhile? `qscale dlq list` shows those left)'}`);
    return one;
  }

  requeue(sel: Selection): Promise<ActionResult> {
    return this.call('POST', '/dlq/requeue', body(sel));
  }

  purge(sel: Selection): Promise<ActionResult> {
    return this.call('POST', '/dlq/purge', body(sel));
  }

  purgeQueue(binding: string): Promise<ActionResult> {
    return this.call('POST', '/queue/purge', { binding });
  }

  async close(): Promise<void> {
    // Nothing held: each call is its own request.
  }
}

function body(sel: Selection): Record<string, unknown> {
  return { ...(sel.binding !== undefined ? { binding: sel.binding } : {}), ...(sel.all ? { all: true } : { ids: sel.ids ?? [] }) };
}
