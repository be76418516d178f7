/**
 * Dead letters over the queue bindings of a system: list, show, requeue, purge, and purging a queue's ready messages,
 * in one binding or in every one. Each binding's backend is opened on first use (as `qscale up` opens it: with
 * `--embedded` the embedded queue serves it) and again after a failure; every call to a broker is bounded. One binding
 * that fails or cannot do it is reported with its own error, never at the cost of the others.
 */
import { createBackend } from '../backends/registry.js';
import { hasDeadLetters, isPurgeable, type Backend, type BackendContext, type DeadLetterReader, type Purgeable } from '../backends/types.js';
import { describeCause } from '../sidecar/outage.js';
import { createLogger, type Logger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';
import { QscaleError, errorMessage } from '../errors.js';
import type { CliErrorCode } from '../cli/codes.js';
import type { DlqBinding } from './bindings.js';
import {
  DlqError, checkSelection, viewOf,
  type ActionResult, type BindingDeadLetters, type BindingOutcome, type DeadLetterView, type DlqListing, type Selection,
} from './view.js';

/** What the CLI and the supervisor's API both offer: served here over the backends, or by a running `qscale up`. */
export interface DeadLetterApi {
  /** Every binding, or the one named; at most `limit` dead letters each, oldest first. */
  list(opts: { binding?: string; limit: number }): Promise<DlqListing>;
  show(id: string, binding?: string): Promise<DeadLetterView>;
  requeue(sel: Selection): Promise<ActionResult>;
  purge(sel: Selection): Promise<ActionResult>;
  /** Deletes the ready messages of one binding's queue (not those in flight, not dead letters). */
  purgeQueue(binding: string): Promise<ActionResult>;
  close(): Promise<void>;
}

export interface DeadLetterServiceOptions {
  embedded: boolean;
  dataDir: string;
  logger?: Logger;
  /** Bound on each call to a broker (after connecting, which the component's initTimeout bounds). */
  opTimeoutMs?: number;
  /** How a binding's backend is made (default: the registry's, as `qscale up` makes it). */
  createBackend?: (b: DlqBinding, ctx: BackendContext) => Backend;
}

export const DEFAULT_OP_TIMEOUT_MS = 15_000;
/** The API's own words for a selection (the CLI checks first, in flags). */
const API_WORDS = { ids: 'ids', all: 'all: true', verb: 'act on' };

/** One binding's backend: opened once, shared by concurrent calls, dropped (and closed) after a failure. */
class Connection {
  private backend: Backend | undefined;
  private opening: Promise<Backend> | undefined;
  private closed = false;

  constructor(readonly b: DlqBinding, private readonly opts: DeadLetterServiceOptions, private readonly logger: Logger) {}

  /** Created without connecting: whether the backend offers a feature is known before any broker is asked. */
  private created: Backend | undefined;

  shape(): Backend {
    if (this.backend) return this.backend;
    const ctx = { logger: this.logger, dataDir: this.opts.dataDir };
    this.created ??= this.opts.createBackend ? this.opts.createBackend(this.b, ctx) : createBackend(this.b.component, ctx, { embedded: this.opts.embedded });
    return this.created;
  }

  get(): Promise<Backend> {
    if (this.backend) return Promise.resolve(this.backend);
    this.opening ??= (async () => {
      const b = this.shape();
      this.created = undefined;
      const c = this.b.component;
      try {
        await withTimeout(b.init(), c.initTimeoutMs, `it did not connect within ${c.initTimeoutMs} ms (the component's initTimeout)`);
      } catch (err) {
        void b.close().catch(() => undefined);
        throw err;
      }
      if (this.closed) {
        await b.close().catch(() => undefined);
        throw new Error('closing');
      }
      this.backend = b;
      return b;
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** After a failure: the next call connects anew. */
  drop(): void {
    const b = this.backend;
    this.backend = undefined;
    if (b) void withTimeout(b.close(), 2000, 'close').catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.opening;
    if (pending) await withTimeout(pending, 2000, 'close').catch(() => undefined);
    const held = [this.backend, this.created].filter((b): b is Backend => b !== undefined);
    this.backend = undefined;
    this.created = undefined;
    await Promise.all(held.map((b) => withTimeout(b.close(), 2000, 'close').catch(() => undefined)));
  }
}

export class DeadLetterService implements DeadLetterApi {
  private readonly conns = new Map<DlqBinding, Connection>();
  private readonly opTimeoutMs: number;

  constructor(readonly bindings: readonly DlqBinding[], private readonly opts: DeadLetterServiceOptions) {
    const logger = opts.logger ?? createLogger('dlq');
    for (const b of bindings) this.conns.set(b, new Connection(b, opts, logger));
    this.opTimeoutMs = opts.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
  }

  /** "binding orders (bindings.rabbitmq)", with how --embedded serves it. */
  subject(b: DlqBinding): string {
    return `binding ${b.name} (${b.type}${this.opts.embedded && b.type !== 'bindings.qscale.embedded' ? ', served by the embedded queue' : ''})`;
  }

  /** The bindings a call is about: the one named, or every one. */
  select(name: string | undefined): DlqBinding[] {
    if (name === undefined) return [...this.bindings];
    const found = this.bindings.filter((b) => b.name === name);
    if (found.length > 0) return found;
    const names = [...new Set(this.bindings.map((b) => b.name))];
    throw new DlqError('ERR_DLQ_BINDING', `no queue binding named '${name}' in this system (${names.length > 0 ? `its input bindings: ${names.join(', ')}` : 'it has no input binding'})`);
  }

  private conn(b: DlqBinding): Connection {
    return this.conns.get(b)!;
  }

  /** Refuses, naming the binding, when its backend offers no dead letters (known without connecting). */
  private requireDeadLetters(b: DlqBinding): void {
    if (!hasDeadLetters(this.conn(b).shape())) {
      throw new DlqError('ERR_DLQ_UNSUPPORTED', `dead letters of ${this.subject(b)} cannot be browsed: its backend does not offer list, show, requeue and purge of dead letters yet (they still count in \`qscale status\`)`);
    }
  }

  /** Runs `f` on the binding's backend, bounded; a broker failure becomes one line naming the binding and queue. */
  private async run<T>(b: DlqBinding, doing: string, f: (backend: Backend) => Promise<T>): Promise<T> {
    const conn = this.conn(b);
    try {
      const bound = this.opTimeoutMs + b.component.initTimeoutMs;
      return await withTimeout((async () => f(await conn.get()))(), bound, `no answer within ${bound} ms`);
    } catch (err) {
      if (err instanceof DlqError) throw err;
      conn.drop();
      throw new DlqError('ERR_DLQ_BROKER', `${this.subject(b)}, queue ${b.queue}: cannot ${doing}: ${describeCause(err, b.component)}`, { cause: err });
    }
  }

  private dl(backend: Backend): Backend & DeadLetterReader {
    return backend as Backend & DeadLetterReader;
  }

  async list(opts: { binding?: string; limit: number }): Promise<DlqListing> {
    const limit = Math.max(0, Math.floor(opts.limit));
    const bindings = await Promise.all(this.select(opts.binding).map(async (b): Promise<BindingDeadLetters> => {
      const entry: BindingDeadLetters = {
        binding: b.name, type: b.type, queue: b.queue, ...(this.opts.embedded ? { servedBy: 'embedded' as const } : {}), supported: true, deadLetters: [], more: false,
      };
      try {
        this.requireDeadLetters(b);
        const { letters, total } = await this.run(b, 'read its dead letters', async (be) => {
          const [letters, depth] = await Promise.all([
            limit > 0 ? this.dl(be).deadLetters(limit + 1) : Promise.resolve([]),
            be.depth().catch(() => undefined),
          ]);
          return { letters, total: depth?.deadLettered };
        });
        entry.deadLetters = letters.slice(0, limit).map((d) => viewOf(d, { binding: b.name, queue: b.queue }));
        entry.more = letters.length > limit || (total !== undefined && total > entry.deadLetters.length);
        if (total !== undefined) entry.total = total;
      } catch (err) {
        entry.error = errorOf(err);
        if (entry.error.code === 'ERR_DLQ_UNSUPPORTED') entry.supported = false;
      }
      return entry;
    }));
    return { bindings };
  }

  async show(id: string, binding?: string): Promise<DeadLetterView> {
    const { found, failures } = await this.locate([id], this.select(binding));
    const at = found.get(id) ?? [];
    if (at.length > 1) throw ambiguous(id, at);
    const b = at[0];
    if (!b) throw notFound([id], failures, binding);
    const d = await this.run(b, `read dead letter ${id}`, (be) => this.dl(be).deadLetter(id));
    if (!d) throw notFound([id], [], binding);
    return viewOf(d, { binding: b.name, queue: b.queue });
  }

  requeue(sel: Selection): Promise<ActionResult> {
    return this.act('requeue', sel, (r, ids) => r.requeueDeadLetters(ids));
  }

  purge(sel: Selection): Promise<ActionResult> {
    return this.act('purge', sel, (r, ids) => r.purgeDeadLetters(ids));
  }

  async purgeQueue(binding: string): Promise<ActionResult> {
    const bindings = this.select(binding);
    const outcomes: BindingOutcome[] = [];
    for (const b of bindings) {
      if (!isPurgeable(this.conn(b).shape())) {
        throw new DlqError('ERR_DLQ_UNSUPPORTED', `the queue of ${this.subject(b)} cannot be purged: its backend does not offer it yet`);
      }
      const count = await this.run(b, 'purge its ready messages', (be) => (be as Backend & Purgeable).purge());
      outcomes.push({ binding: b.name, type: b.type, queue: b.queue, count });
    }
    return { action: 'queue-purge', count: sum(outcomes), bindings: outcomes, notFound: [] };
  }

  /**
   * A requeue or purge: by id (each id goes to the binding that holds it; one held by several bindings is refused),
   * or all of them in each binding selected. A binding named outright fails the call; among every binding, each
   * one's failure is reported in its own outcome.
   */
  private async act(action: 'requeue' | 'purge', sel: Selection, f: (r: DeadLetterReader, ids: readonly string[] | 'all') => Promise<number>): Promise<ActionResult> {
    const which = checkSelection(sel, { ...API_WORDS, verb: action });
    const bindings = this.select(sel.binding);
    const named = sel.binding !== undefined;
    const verb = action === 'requeue' ? 'requeue its dead letters' : 'purge its dead letters';
    const outcome = (b: DlqBinding, count: number, err?: unknown): BindingOutcome => ({
      binding: b.name, type: b.type, queue: b.queue, count, ...(err === undefined ? {} : { error: errorOf(err) }),
    });
    if (which === 'all') {
      const outcomes = await Promise.all(bindings.map(async (b) => {
        try {
          this.requireDeadLetters(b);
          return outcome(b, await this.run(b, verb, (be) => f(this.dl(be), 'all')));
        } catch (err) {
          if (named) throw err;
          return outcome(b, 0, err);
        }
      }));
      return { action, count: sum(outcomes), bindings: outcomes, notFound: [] };
    }
    const ids = [...new Set(which)];
    const { found, failures } = await this.locate(ids, bindings);
    for (const [id, at] of found) if (at.length > 1) throw ambiguous(id, at);
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length === ids.length) throw notFound(missing, failures, sel.binding);
    const perBinding = new Map<DlqBinding, string[]>();
    for (const [id, [b]] of found) perBinding.set(b!, [...(perBinding.get(b!) ?? []), id]);
    const outcomes = await Promise.all([...perBinding].map(async ([b, some]) => {
      try {
        return outcome(b, await this.run(b, verb, (be) => f(this.dl(be), some)));
      } catch (err) {
        if (named) throw err;
        return outcome(b, 0, err);
      }
    }));
    for (const fl of failures) outcomes.push(outcome(fl.binding, 0, fl.error));
    return { action, count: sum(outcomes), bindings: outcomes, notFound: missing };
  }

  /** Which selected binding holds each id; the bindings that could not be searched, with why. */
  private async locate(ids: readonly string[], bindings: readonly DlqBinding[]): Promise<{ found: Map<string, DlqBinding[]>; failures: Array<{ binding: DlqBinding; error: unknown }> }> {
    const found = new Map<string, DlqBinding[]>();
    const failures: Array<{ binding: DlqBinding; error: unknown }> = [];
    const only = bindings.length === 1;
    await Promise.all(bindings.map(async (b) => {
      try {
        this.requireDeadLetters(b);
        const held = await this.run(b, 'look up dead letters', async (be) => {
          const out: string[] = [];
          for (const id of ids) if (await this.dl(be).deadLetter(id)) out.push(id);
          return out;
        });
        for (const id of held) found.set(id, [...(found.get(id) ?? []), b]);
      } catch (err) {
        // The one binding asked for: its own error says it best.
        if (only) throw err;
        failures.push({ binding: b, error: err });
      }
    }));
    // Keep the system's order of bindings, whatever answered first.
    for (const [id, at] of found) found.set(id, bindings.filter((b) => at.includes(b)));
    return { found, failures };
  }

  async close(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => c.close()));
  }
}

function sum(outcomes: readonly BindingOutcome[]): number {
  return outcomes.reduce((n, o) => n + o.count, 0);
}

function errorOf(err: unknown): { code: CliErrorCode; message: string } {
  if (err instanceof DlqError) return { code: err.code as CliErrorCode, message: err.message };
  if (err instanceof QscaleError) return { code: 'ERR_DLQ_BROKER', message: err.message };
  return { code: 'ERR_DLQ_BROKER', message: errorMessage(err) };
}

function ambiguous(id: string, at: readonly DlqBinding[]): DlqError {
  return new DlqError('ERR_DLQ_AMBIGUOUS', `dead letter id ${id} is held by bindings ${at.map((b) => b.name).join(' and ')}: name one with --binding (API: "binding")`);
}

function notFound(ids: readonly string[], failures: ReadonlyArray<{ binding: DlqBinding; error: unknown }>, binding: string | undefined): DlqError {
  const what = ids.length === 1 ? `no dead letter with id ${ids[0]}` : `no dead letter with any of the ids ${ids.join(', ')}`;
  const where = binding !== undefined ? ` in binding ${binding}` : '';
  const unsearched = failures.length > 0 ? `; not searched: ${failures.map((f) => errorOf(f.error).message).join('; ')}` : ' (requeued or purged meanwhile? `qscale dlq list` shows those left)';
  return new DlqError('ERR_DLQ_NOT_FOUND', `${what}${where}${unsearched}`);
}
