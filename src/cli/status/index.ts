import { Command } from 'commander';

export function statusCommand(): Command {
  return new Command('status')
    .description("what `kubectl get pod` and `kubectl get hpa` show, for the running system: replicas, the HPA line, queue depth, the last scaling decisions")
    .option('--watch', 'refresh every second until Ctrl-C', false)
    .option('--json', 'print the state as JSON', false)
    .option('--data-dir <dir>', 'the data folder of the running `qscale up`', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--url <url>', "the supervisor's control URL (default: read from <data-dir>/supervisor.json)")
    .action(async (opts: { watch: boolean; json: boolean; dataDir: string; url?: string }) => {
      const { runStatus } = await import('./run.js');
      await runStatus(opts);
    });
}
