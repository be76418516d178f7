/**
 * `qscale sidecar`: flags (with daprd's environment fallbacks) → startSidecar, then waits for SIGTERM / SIGINT /
 * POST /v1.0/shutdown and exits 0 after a graceful stop.
 */
import { parseSidecarFlags } from './flags.js';
import type { SidecarCliOptions } from './index.js';

export async function runSidecar(opts: SidecarCliOptions): Promise<void> {
  const run = parseSidecarFlags(opts, process.env);
  // A standby waits for `adopt <app pid>` on stdin; stdin ending first means whoever started it is gone. Read from
  // the start, so that is noticed even while the modules and components load.
  const standby = opts.standby === true ? new Standby() : undefined;
  if (run.waitForPort !== undefined) await waitUntilOutboundReady(run.waitForPort);
  const { options } = run;
  // The logger reads the format and the level once, at creation.
  if (run.json) process.env.QSCALE_LOG_FORMAT = 'json';
  else delete process.env.QSCALE_LOG_FORMAT;
  if (run.logLevel !== undefined) process.env.QSCALE_LOG_LEVEL = run.logLevel;
  const { createLogger } = await import('../../util/log.js');
  const { startSidecar } = await import('../../sidecar/index.js');
  const logger = createLogger('sidecar', { app_id: options.appId });
  for (const n of run.notices) logger.info(n);

  let appPid = Number(process.env.QSCALE_APP_PID);
  let exiting = false;
  const exit = (drained: boolean): void => {
    if (exiting) return;
    exiting = true;
    logger.info(drained ? 'exiting: drained' : 'exiting: grace period was over before the drain finished');
    process.exit(0);
  };
  let started = false;
  const orphaned = (): void => logger.warn('stdin closed before this standby sidecar was adopted (its supervisor is gone): exiting without reading anything');
  // Gone before the sidecar is up: nothing was read and nothing needs a drain.
  void standby?.outcome.then((adopted) => {
    if (adopted !== undefined || started) return;
    orphaned();
    process.exit(0);
  });
  const handle = await startSidecar({ ...options, standby: standby !== undefined, logger, onShutdown: (r) => exit(r.drained) });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      logger.info(`received ${sig}: graceful stop`);
      void handle.close().then((r) => exit(r.drained));
    });
  }
  started = true;
  if (standby) {
    void standby.outcome.then((adopted) => {
      if (adopted === undefined) {
        orphaned();
        void handle.close().then(() => exit(true));
        return;
      }
      appPid = adopted;
      handle.adopt();
    });
  }
  watchSupervisor(logger, () => appPid, async (stopApp) => {
    const r = await handle.close();
    stopApp();
    exit(r.drained);
  });
}

/**
 * Reads stdin for the one line `adopt <app pid>` (read as soon as it comes, even while components still load).
 * `outcome` is the app's pid once adopted, undefined when stdin ends first.
 */
class Standby {
  readonly outcome: Promise<number | undefined>;

  constructor() {
    this.outcome = new Promise((resolve) => {
      let buffered = '';
      const done = (pid: number | undefined): void => {
        process.stdin.removeAllListeners('data');
        process.stdin.pause();
        resolve(pid);
      };
      process.stdin.setEncoding('utf8');
      process.stdin.on('data', (chunk: string) => {
        buffered += chunk;
        const m = /^adopt (\d+)\n/m.exec(buffered);
        if (m) done(Number(m[1]));
      });
      process.stdin.once('end', () => done(undefined));
      process.stdin.once('error', () => done(undefined));
    });
  }
}

/**
 * daprd --wait: polls GET /v1.0/healthz/outbound of the sidecar on `port` every 100 ms (500 ms per call) until it
 * answers 204 or 60 s passed, printing as daprd does, then exits 0 either way.
 */
async function waitUntilOutboundReady(port: number): Promise<never> {
  const url = `http://localhost:${port}/v1.0/healthz/outbound`;
  process.stdout.write(`Waiting for Dapr to be outbound ready (timeout: 60 seconds): url=${url}\n`);
  const until = Date.now() + 60_000;
  let lastError = '';
  let nextPrint = Date.now();
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(500) });
      await res.arrayBuffer();
      if (res.status === 204) {
        process.stdout.write('Dapr is outbound ready!\n');
        process.exit(0);
      }
      lastError = `HTTP status code ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() >= nextPrint) {
      nextPrint = Date.now() + 1000;
      process.stdout.write(`Dapr outbound NOT ready yet: ${lastError}\n`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(`timeout waiting for Dapr to become outbound ready. Last error: ${lastError}\n`);
  process.exit(0);
}

/**
 * Started by `qscale up`, a replica must not outlive its supervisor (killed with -9, say): like a pod whose node
 * went away, the sidecar then drains, stops its app and exits, so no orphan keeps leasing messages.
 */
function watchSupervisor(logger: { warn(msg: string): void }, appPid: () => number, stop: (stopApp: () => void) => Promise<void>): void {
  const supervisor = Number(process.env.QSCALE_SUPERVISOR_PID);
  if (!Number.isInteger(supervisor) || supervisor <= 0) return;
  // Its log pipes close with the supervisor: a failed log write must not kill the sidecar before it has drained.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const timer = setInterval(() => {
    if (alive(supervisor)) return;
    clearInterval(timer);
    logger.warn(`supervisor ${supervisor} is gone: draining, stopping the app and exiting`);
    void stop(() => {
      const app = appPid();
      if (!Number.isInteger(app) || app <= 0 || !alive(app)) return;
      // qscale up starts the app as the leader of its own process group: the group goes, so the app's own children
      // do not outlive it.
      try {
        process.kill(-app, 'SIGTERM');
      } catch {
        process.kill(app, 'SIGTERM');
      }
    });
  }, 500);
  timer.unref();
}
