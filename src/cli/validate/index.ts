import { Command } from 'commander';

export function validateCommand(): Command {
  return new Command('validate')
    .description('check every Component, Secret, ScaledObject and TriggerAuthentication of a folder (and its dapr.yaml), as `qscale up` would read them; errors name file:line and field')
    .argument('[folder]', 'folder of Kubernetes YAML', '.')
    .option('--json', 'print the result as JSON', false)
    .action(async (folder: string, opts: { json: boolean }) => {
      const { runValidate } = await import('./run.js');
      process.exitCode = await runValidate(folder, opts);
    });
}
