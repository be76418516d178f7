import { Command } from 'commander';

export interface ValidateOptions {
  json: boolean;
  embedded: boolean;
  runFile?: string;
  cluster: boolean;
}

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a folder as `qscale up` reads it: every Component, Secret, ScaledObject and TriggerAuthentication, the dapr.yaml run file, its commands and its fixed ports; every error names file:line and field')
    .argument('[folder]', 'folder of Kubernetes YAML and its dapr.yaml run file (with --cluster also a file, or - for standard input)', '.')
    .option('--json', 'print the result as JSON', false)
    .option('--embedded', 'check as `qscale up --embedded` runs it: queue triggers read only their queue fields', false)
    .option('--run-file <file>', 'the multi-app run file (default: <folder>/dapr.yaml)')
    .option('--cluster', 'check every manifest as a cluster with Kubernetes, KEDA and Dapr would take it (kubectl apply -k when the folder has a kustomization, else -f), the qscale-only types refused with what to use instead; see docs/validate.md', false)
    .action(async (folder: string, opts: ValidateOptions) => {
      const { runValidate } = await import('./run.js');
      process.exitCode = await runValidate(folder, opts);
    });
}
