/**
 * Entry point of the consumer app: `node dist/apps/consumer/main.js`. On SIGTERM it stops accepting, finishes the
 * messages it is working on (their 200s still go out), then exits — so a scale-in loses nothing.
 */
import { createLineLogger } from '../../src/util/log.js';
import { EnvError, readConsumerConfig } from './config.js';
import { buildConsumer } from './app.js';

const logger = createLineLogger('consumer', { app_id: process.env.APP_ID ?? 'consumer' });

let config;
try {
  config = readConsumerConfig();
} catch (err) {
  if (!(err instanceof EnvError)) throw err;
  process.stderr.write(`consumer: ${err.message}\n`);
  process.exit(2);
}

const app = buildConsumer({ config, logger });
let base: string;
try {
  base = await app.listen(config.host, config.port);
} catch (err) {
  process.stderr.write(`consumer: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
  process.exit(1);
}
logger.info(`consumer listening on ${base}: POST ${base}/${config.route}, ${config.workMs} ms of work per message`);

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    logger.info(`${sig}: finishing ${app.inFlight()} message(s) in progress, then exiting`);
    const closed = app.close();
    // close() waits for every connection; a caller's keep-alive connection would hold it for the keep-alive
    // timeout (72 s) after the last answer. Once nothing is in progress, idle connections are closed at once.
    const sweep = setInterval(() => {
      if (app.inFlight() === 0) app.server.closeIdleConnections();
    }, 20);
    void closed.then(() => {
      clearInterval(sweep);
      logger.info('all work finished; exiting');
      process.exit(0);
    });
  });
}
