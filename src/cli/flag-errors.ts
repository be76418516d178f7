/**
 * Commander's own flag errors (an unknown option, a missing value, a value outside its choices) as CliError
 * ERR_FLAG: one line naming the flag and the catalog's exit status, like every other flag error qscale reports.
 * `--help` and `--version` keep their exit 0.
 */
import type { Command } from 'commander';
import { CliError } from './codes.js';

export function flagErrorsAsCliErrors(cmd: Command): Command {
  return cmd.configureOutput({ outputError: () => undefined }).exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    throw new CliError('ERR_FLAG', message, { cause: err });
  });
}
