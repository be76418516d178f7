/**
 * Entry point of the producer app: `node dist/apps/producer/main.js`. Reads its settings from the environment
 * (see config.ts), listens, and closes cleanly on SIGTERM/SIGINT.
 */
import { createLogger } from '../../src/util/log.js';
import { EnvError, describeTarget, readProducerConfig } from './config.js';
import { buildProducer } from './app.js';

const logger = createLogger('producer', { app_id: process.env.APP_ID ?? 'producer' });

let config;
try {
  config = readProducerConfig();
} catch (err) {
  if (!(err instanceof EnvError)) throw err;
  process.stderr.write(`producer: ${err.message}\n`);
  process.exit(2);
}

const app = await buildProducer({ config, logger });
let base: string;
try {
  base = await app.listen({ host: config.host, port: config.port });
} catch (err) {
  process.stderr.write(`producer: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
  process.exit(1);
}
logger.info(`producer listening on ${base}: POST ${base}/MessageProducer, Swagger UI ${base}/swagger; ${describeTarget(config.target)} via ${config.sidecarUrl}`);

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    logger.info(`${sig}: finishing requests in progress, then exiting`);
    const closed = app.close();
    // Keep-alive connections with no request in progress would hold close() for the keep-alive timeout.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 20);
    void closed.then(() => {
      clearInterval(sweep);
      process.exit(0);
    });
  });
}
