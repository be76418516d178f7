import { Command } from 'commander';

export interface ValidateOptions {
  json: boolean;
  embedded: boolean;
  runFile?: string;
}

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a folder as `qscale up` reads it: every Component, Secret, ScaledObject and TriggerAuthentication, the dapr.yaml run file, its commands and its fixed ports; every error names file:line and field')
    .argument('[folder]', 'folder of Kubernetes YAML and its dapr.yaml run file', '.')
    .option('--json', 'print the result as JSON', false)
    .option('--embedded', 'check as `qscale up --embedded` runs it: queue triggers read only their queue fields', false)
    .option('--run-file <file>', 'the multi-app run file (default: <folder>/dapr.yaml)')
    .action(async (folder: string, opts: ValidateOptions) => {
      const { runValidate } = await import('./run.js');
      process.exitCode = await runValidate(folder, opts);
    });
}
