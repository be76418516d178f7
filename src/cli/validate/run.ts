import { loadSystem } from '../../supervisor/plan.js';
import { exitCodeFor, CliError } from '../codes.js';
import type { ValidateOptions } from './index.js';

/**
 * Reads the folder exactly as `qscale up` would (the same plan, the same checks) and prints every problem, one line
 * each. Returns the exit code: 0 when `up` can start, else the catalog's code of the first problem.
 */
export async function runValidate(folder: string, opts: ValidateOptions): Promise<number> {
  if (opts.cluster) {
    const { runClusterValidate } = await import('./cluster.js');
    return runClusterValidate(folder, opts);
  }
  const plan = await loadSystem(folder, {
    runFile: opts.runFile,
    embedded: opts.embedded,
    dataDir: '.qscale',
    requireRunFile: false,
  });
  const { entries: found, notices, warnings, problems } = plan;
  const first = problems[0];
  if (opts.json) {
    const errors = problems.map((p) => ({ code: p.code, message: p.message, file: p.file, line: p.line, field: p.field }));
    process.stdout.write(JSON.stringify({ ok: !first, ...(first ? { error: first.message } : {}), errors, found, notices, warnings }, null, 2) + '\n');
  } else {
    for (const f of found) process.stdout.write(`${f.kind.padEnd(22)} ${f.name.padEnd(36)} ${f.where}  ${f.note}\n`);
    for (const n of notices) process.stdout.write(`note: ${n}\n`);
    for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
    for (const p of problems) process.stderr.write(`qscale: ${p.message}\n`);
    if (!first) process.stdout.write(`ok: ${found.length} entries read\n`);
  }
  return first ? exitCodeFor(new CliError(first.code, first.message)) : 0;
}
