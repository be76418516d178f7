import { checkCluster } from '../../cluster/index.js';
import { CliError, exitCodeFor } from '../codes.js';
import type { ValidateOptions } from './index.js';

/**
 * `qscale validate --cluster`: prints what was checked, notes, warnings (accepted by the cluster, but not doing what
 * the file seems to say) and errors (refused), one line each. Exit 0 without errors, else ERR_CONFIG's status.
 */
export async function runClusterValidate(target: string, opts: ValidateOptions): Promise<number> {
  if (opts.embedded || opts.runFile) {
    throw new CliError('ERR_FLAG', `--cluster checks the manifests alone: ${opts.embedded ? '--embedded' : '--run-file'} does not apply to it`);
  }
  const report = await checkCluster(target);
  const errors = report.errors.map((e) => ({ code: e.code, message: e.message, file: e.file, line: e.line, field: e.field }));
  const first = errors[0];
  if (opts.json) {
    const out = {
      ok: !first,
      ...(first ? { error: first.message } : {}),
      errors,
      found: report.entries,
      notices: report.notes,
      warnings: report.warnings,
      versions: report.versions,
      read: report.how,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    for (const f of report.entries) process.stdout.write(`${f.kind.padEnd(22)} ${f.name.padEnd(36)} ${f.where}  ${f.note}\n`);
    for (const n of report.notes) process.stdout.write(`note: ${n}\n`);
    for (const w of report.warnings) process.stdout.write(`warning: ${w}\n`);
    for (const e of errors) process.stderr.write(`qscale: ${e.message}\n`);
    if (!first) process.stdout.write(`ok: ${report.entries.length} checked as a cluster takes them (${report.versions}), read as ${report.how}\n`);
  }
  return first ? exitCodeFor(new CliError('ERR_CONFIG', first.message)) : 0;
}
