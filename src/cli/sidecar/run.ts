/**
 * `qscale sidecar`: flags (with daprd's environment fallbacks) → startSidecar, then waits for SIGTERM / SIGINT /
 * POST /v1.0/shutdown and exits 0 after a graceful stop.
 */
import { parseSidecarFlags } from './flags.js';
import type { SidecarCliOptions } from './index.js';

export async function runSidecar(opts: SidecarCliOptions): Promise<void> {
  const options = parseSidecarFlags(opts, process.env);
  // The logger reads the format once, at creation.
  if (opts.logFormat === 'json') process.env.QSCALE_LOG_FORMAT = 'json';
  else delete process.env.QSCALE_LOG_FORMAT;
  const { createLogger } = await import('../../util/log.js');
  const { startSidecar } = await import('../../sidecar/index.js');
  const logger = createLogger('sidecar', { app_id: options.appId });

  let exiting = false;
  const exit = (drained: boolean): void => {
    if (exiting) return;
    exiting = true;
    logger.info(drained ? 'exiting: drained' : 'exiting: grace period was over before the drain finished');
    process.exit(0);
  };
  const handle = await startSidecar({ ...options, logger, onShutdown: (r) => exit(r.drained) });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      logger.info(`received ${sig}: graceful stop`);
      void handle.close().then((r) => exit(r.drained));
    });
  }
}
