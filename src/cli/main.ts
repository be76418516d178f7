/**
 * qscale's command line. One folder per command; each folder's index.ts only declares the command (cheap), and
 * loads its implementation when it runs, so `qscale sidecar` starts fast.
 */
import { Command, CommanderError } from 'commander';
import { QscaleError, errorMessage } from '../errors.js';
import { exitCodeFor } from './codes.js';
import { upCommand } from './up/index.js';
import { sidecarCommand } from './sidecar/index.js';
import { produceCommand } from './produce/index.js';
import { statusCommand } from './status/index.js';
import { simulateCommand } from './simulate/index.js';
import { validateCommand } from './validate/index.js';
import { dlqCommand, queueCommand } from './dlq/index.js';

const program = new Command('qscale')
  .description('The producer/consumer pattern with a consumer that scales on queue depth: Dapr-compatible sidecars, brokers, and a KEDA-faithful autoscaler.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

for (const make of [upCommand, sidecarCommand, produceCommand, statusCommand, simulateCommand, validateCommand, dlqCommand, queueCommand]) {
  program.addCommand(make());
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode);
  }
  if (err instanceof QscaleError) {
    // An expected failure (bad config, unreachable broker): one clear line, no stack.
    process.stderr.write(`qscale: ${err.message}\n`);
    process.exit(exitCodeFor(err));
  }
  process.stderr.write(`qscale: internal error: ${errorMessage(err)}\n${err instanceof Error ? err.stack ?? '' : ''}\n`);
  process.exit(70);
}
