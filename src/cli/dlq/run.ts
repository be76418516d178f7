import { promises as fs } from 'node:fs';
import { QscaleError } from '../../errors.js';
import { CliError, exitCodeFor } from '../codes.js';
import { table } from '../status/run.js';
import { openDeadLetters } from '../../dlq/open.js';
import type { DeadLetterApi } from '../../dlq/service.js';
import { DlqError, checkSelection, type ActionResult, type BindingDeadLetters, type DeadLetterView } from '../../dlq/view.js';
import type { DlqFlags } from './index.js';

/**
 * The reason column's width: what is left of the terminal's width, at least REASON_MIN; REASON_PIPED when the output
 * is not a terminal. `qscale dlq show` prints a reason whole.
 */
const REASON_MIN = 60;
const REASON_PIPED = 120;
const MAX_LIMIT = 1000;

/** [PATH] [ID...]: the first word is PATH when it names a file or folder, else it is an ID and PATH is `.`. */
export async function splitArgs(args: readonly string[]): Promise<{ path: string; ids: string[] }> {
  const [first, ...rest] = args;
  if (first !== undefined && (await fs.stat(first).catch(() => undefined))) return { path: first, ids: rest };
  return { path: '.', ids: [...args] };
}

async function withApi<T>(p: string, flags: DlqFlags, f: (api: DeadLetterApi) => Promise<T>): Promise<T> {
  const { api } = await openDeadLetters({ path: p, runFile: flags.runFile, embedded: flags.embedded, dataDir: flags.dataDir, url: flags.url });
  try {
    return await f(api);
  } finally {
    await api.close();
  }
}

function print(text: string): void {
  process.stdout.write(text);
}

function say(line: string): void {
  process.stderr.write(`qscale: ${line}\n`);
}

/** "2024-05-01 12:34:56Z" */
function when(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function oneLine(text: string, width: number): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ');
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/**
 * The exit status of a result that covers several bindings: a binding's failure counts, except a backend that does
 * not offer dead letters yet when no binding was named (it is said, and the others' answer stands).
 */
function statusOf(errors: ReadonlyArray<{ code: string }>, named: boolean): number {
  const counted = errors.find((e) => named || e.code !== 'ERR_DLQ_UNSUPPORTED');
  return counted ? exitCodeFor(new QscaleError(counted.code, '')) : 0;
}

export async function runDlqList(p: string | undefined, flags: DlqFlags): Promise<number> {
  const limit = Number(flags.limit ?? '100');
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT) throw new CliError('ERR_FLAG', `--limit: '${flags.limit}' is not a count from 0 to ${MAX_LIMIT}`);
  const listing = await withApi(p ?? '.', flags, (api) => api.list({ binding: flags.binding, limit }));
  const errors = listing.bindings.flatMap((b) => (b.error ? [b.error] : []));
  if (flags.json) {
    print(JSON.stringify(listing, null, 2) + '\n');
    return statusOf(errors, flags.binding !== undefined);
  }
  print(renderList(listing.bindings));
  for (const e of errors) say(e.message);
  return statusOf(errors, flags.binding !== undefined);
}

export function renderList(bindings: readonly BindingDeadLetters[]): string {
  const letters = bindings.flatMap((b) => b.deadLetters);
  let out = '';
  if (letters.length > 0) {
    const rows = [['BINDING', 'ID', 'DELIVERIES', 'DEAD-LETTERED AT', 'REASON']];
    for (const d of letters) rows.push([d.binding, d.id, String(d.deliveryCount), when(d.deadLetteredAt), '']);
    // The reason takes what the other columns leave of the terminal's width.
    const used = table(rows).split('\n')[1]?.length ?? 0;
    const width = process.stdout.isTTY && process.stdout.columns ? Math.max(REASON_MIN, process.stdout.columns - used - 1) : REASON_PIPED;
    letters.forEach((d, i) => (rows[i + 1]![4] = oneLine(d.reason, width)));
    out += table(rows);
  }
  for (const b of bindings) {
    if (b.error) continue;
    const n = b.total ?? b.deadLetters.length;
    if (b.more) out += `binding ${b.binding} (queue ${b.queue}): showing ${b.deadLetters.length} of ${b.total ?? 'more'} dead letters, oldest first (--limit shows more)\n`;
    else if (n === 0) out += `binding ${b.binding} (queue ${b.queue}): no dead letters\n`;
  }
  if (bindings.length === 0) out += 'this system has no input binding, so no dead letters\n';
  return out;
}

export async function runDlqShow(args: readonly string[], flags: DlqFlags): Promise<number> {
  const { path: p, ids } = await splitArgs(args);
  if (ids.length !== 1) throw new DlqError('ERR_DLQ_SELECTION', ids.length === 0 ? 'no dead-letter ID given: `qscale dlq show [PATH] ID` (`qscale dlq list` shows the IDs)' : `one ID at a time, not ${ids.length} (${ids.join(' ')}): \`qscale dlq show [PATH] ID\``);
  const d = await withApi(p, flags, (api) => api.show(ids[0]!, flags.binding));
  print(flags.json ? JSON.stringify(d, null, 2) + '\n' : renderShow(d));
  return 0;
}

export function renderShow(d: DeadLetterView): string {
  const meta = Object.entries(d.metadata);
  return [
    `id:               ${d.id}`,
    `binding:          ${d.binding} (queue ${d.queue})`,
    `deliveries:       ${d.deliveryCount}`,
    `enqueued at:      ${when(d.enqueuedAt)}`,
    `dead-lettered at: ${when(d.deadLetteredAt)}`,
    `reason:           ${d.reason}`,
    `metadata:${meta.length === 0 ? '         (none)' : ''}`,
    ...meta.map(([k, v]) => `  ${k}: ${v}`),
    `body (${d.bytes} bytes${d.encoding === 'base64' ? ', not UTF-8: base64' : ''}):`,
    d.body,
    '',
  ].join('\n');
}

export async function runDlqAction(action: 'requeue' | 'purge', args: readonly string[], flags: DlqFlags): Promise<number> {
  const { path: p, ids } = await splitArgs(args);
  // Said before anything is opened: the way out is a flag away.
  checkSelection({ ids, all: flags.all }, { ids: 'dead-letter IDs', all: '--all', verb: action });
  const result = await withApi(p, flags, (api) => (action === 'requeue' ? api.requeue({ binding: flags.binding, ids, all: flags.all }) : api.purge({ binding: flags.binding, ids, all: flags.all })));
  return report(result, flags);
}

function report(result: ActionResult, flags: DlqFlags): number {
  const errors = result.bindings.flatMap((b) => (b.error ? [b.error] : []));
  const missing = result.notFound.length > 0 ? [{ code: 'ERR_DLQ_NOT_FOUND' }] : [];
  const status = statusOf([...errors, ...missing], flags.binding !== undefined);
  if (flags.json) {
    print(JSON.stringify(result, null, 2) + '\n');
    return status;
  }
  const done = result.bindings.filter((b) => !b.error);
  const verb = { requeue: 'requeued', purge: 'purged', 'queue-purge': 'purged' }[result.action];
  const what = result.action === 'queue-purge' ? 'ready message' : 'dead letter';
  const plural = (n: number): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (done.length === 1 && done[0]) print(`${verb} ${plural(done[0].count)} of binding ${done[0].binding} (queue ${done[0].queue})\n`);
  else if (done.length > 1) print(`${verb} ${plural(result.count)}: ${done.map((b) => `${b.binding} ${b.count}`).join(', ')}\n`);
  for (const e of errors) say(e.message);
  if (result.notFound.length > 0) say(`not found, so not ${verb}: ${result.notFound.join(', ')} (requeued or purged meanwhile? \`qscale dlq list\` shows those left)`);
  return status;
}

export async function runQueuePurge(p: string | undefined, flags: DlqFlags): Promise<number> {
  const result = await withApi(p ?? '.', flags, async (api) => {
    let binding = flags.binding;
    if (binding === undefined) {
      const names = [...new Set((await api.list({ limit: 0 })).bindings.map((b) => b.binding))];
      if (names.length !== 1) {
        throw new DlqError('ERR_DLQ_BINDING', names.length === 0 ? 'this system has no input binding, so no queue to purge' : `this system has ${names.length} queue bindings (${names.join(', ')}): name the one to purge with --binding`);
      }
      binding = names[0]!;
    }
    return api.purgeQueue(binding);
  });
  return report(result, { ...flags, binding: flags.binding ?? '' });
}
