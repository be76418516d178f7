import { Command } from 'commander';
import { flagErrorsAsCliErrors } from '../flag-errors.js';

export interface DlqFlags {
  binding?: string;
  embedded: boolean;
  dataDir: string;
  runFile?: string;
  url?: string;
  json: boolean;
  all?: boolean;
  limit?: string;
}

/** What every dlq and queue subcommand takes: which system, which binding, how to reach it. */
function common(cmd: Command): Command {
  return cmd
    .option('--binding <name>', 'only this queue binding (its Component\'s metadata.name); default: every input binding of the system')
    .option('--embedded', 'the system runs with `qscale up --embedded`: its queues live in the embedded queue (not needed while that `qscale up` runs: it is asked)', false)
    .option('--data-dir <dir>', 'the data folder of `qscale up` (the embedded queue, supervisor.json)', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--run-file <file>', 'the multi-app run file (default: <folder>/dapr.yaml)')
    .option('--url <url>', "a running supervisor's control URL: go through it (default: the `qscale up` of this folder when it runs, else the backends directly)")
    .option('--json', 'print the result as JSON', false);
}

const PATH_HELP = 'a folder of Kubernetes YAML with its dapr.yaml run file, or the run file itself (default: .); taken as PATH when it exists on disk, else as the first ID';

export function dlqCommand(): Command {
  const dlq = new Command('dlq')
    .description("dead letters of the system's queue bindings: list, show, requeue (back to the queue, a fresh delivery count) and purge; see docs/dead-letters.md");

  const list = common(new Command('list'))
    .description('a table of dead letters, oldest first: binding, id, deliveries, when dead-lettered, and why (the app\'s status and answer)')
    .argument('[path]', PATH_HELP)
    .option('--limit <n>', 'at most this many per binding', '100')
    .action(async (p: string | undefined, flags: DlqFlags) => {
      const { runDlqList } = await import('./run.js');
      process.exitCode = await runDlqList(p, flags);
    });

  const show = common(new Command('show'))
    .description('one dead letter in full: reason, deliveries, times, metadata and body')
    .argument('[args...]', '[PATH] ID')
    .action(async (args: string[], flags: DlqFlags) => {
      const { runDlqShow } = await import('./run.js');
      process.exitCode = await runDlqShow(args, flags);
    });

  const requeue = common(new Command('requeue'))
    .description('send dead letters back to their queue (same body and metadata, delivery count from 1) and remove them from the dead letters: the IDs named, or --all')
    .argument('[args...]', '[PATH] [ID...]')
    .option('--all', 'every dead letter (of --binding, or of every binding)', false)
    .action(async (args: string[], flags: DlqFlags) => {
      const { runDlqAction } = await import('./run.js');
      process.exitCode = await runDlqAction('requeue', args, flags);
    });

  const purge = common(new Command('purge'))
    .description('delete dead letters for good: the IDs named, or --all')
    .argument('[args...]', '[PATH] [ID...]')
    .option('--all', 'every dead letter (of --binding, or of every binding)', false)
    .action(async (args: string[], flags: DlqFlags) => {
      const { runDlqAction } = await import('./run.js');
      process.exitCode = await runDlqAction('purge', args, flags);
    });

  for (const sub of [list, show, requeue, purge]) dlq.addCommand(flagErrorsAsCliErrors(sub));
  dlq.addHelpText('after', '\nExamples:\n  qscale dlq list examples/seed --embedded\n  qscale dlq show 42\n  qscale dlq requeue --all --binding message-queue\n  qscale dlq purge 42 43\n');
  return flagErrorsAsCliErrors(dlq);
}

export function queueCommand(): Command {
  const queue = new Command('queue').description("a queue binding's ready messages");
  const purge = common(new Command('purge'))
    .description('delete the ready messages of a queue (not those being processed, not dead letters); --binding names the queue binding when the system has several')
    .argument('[path]', 'a folder of Kubernetes YAML with its dapr.yaml run file, or the run file itself (default: .)')
    .action(async (p: string | undefined, flags: DlqFlags) => {
      const { runQueuePurge } = await import('./run.js');
      process.exitCode = await runQueuePurge(p, flags);
    });
  queue.addCommand(flagErrorsAsCliErrors(purge));
  return flagErrorsAsCliErrors(queue);
}
