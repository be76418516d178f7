import { Command } from 'commander';
import { flagErrorsAsCliErrors } from '../flag-errors.js';

export interface ProduceFlags {
  count: string;
  interval: string;
  url?: string;
  dataDir: string;
  chunk?: string;
  progress: boolean;
}

export function produceCommand(): Command {
  const cmd = new Command('produce')
    .description("send messages through the producer app, like the seed's curl to POST /MessageProducer, with a progress bar for large runs")
    .option('-n, --count <n>', 'how many messages to send', '1')
    .option('-i, --interval <ms>', 'pause between two messages, in milliseconds', '0')
    .option('--url <url>', 'the producer app (default: $QSCALE_PRODUCER_URL, else the one `qscale up` runs, else http://127.0.0.1:5000)')
    .option('--data-dir <dir>', 'the data folder of the running `qscale up`', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--chunk <n>', 'messages per request to the producer (default: about one second of work per request)')
    .option('--no-progress', 'no progress bar or progress lines')
    .addHelpText('after', '\nExamples:\n  qscale produce --count 50 --interval 0\n  qscale produce -n 100000 --url http://127.0.0.1:5000\n')
    .action(async (flags: ProduceFlags) => {
      const { runProduce } = await import('./run.js');
      await runProduce(flags);
    });
  return flagErrorsAsCliErrors(cmd);
}
