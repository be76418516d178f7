import { parseDuration } from '../../components/metadata.js';
import { CliError } from '../codes.js';
import { startSystem, type RunningSystem } from '../../supervisor/system.js';
import { createLogSink, type LogSink } from '../../supervisor/logs.js';
import { withTimeout } from '../../util/timeout.js';
import type { UpOptions } from './index.js';

/** After the grace period, how long stopping may still take before what is left is killed (a replica's own bound is grace + 7 s at most). */
const STOP_SLACK_MS = 10_000;
/** How long a kill may take before `up` exits anyway. */
const KILL_BOUND_MS = 3000;

function duration(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0) throw new CliError('ERR_FLAG', `${flag}: '${value}' is not a duration (e.g. 15s, 500ms, 5m)`);
  return ms;
}

export async function runUp(folder: string, opts: UpOptions): Promise<void> {
  const syncPeriodMs = duration('--hpa-sync-period', opts.hpaSyncPeriod);
  if (syncPeriodMs < 100) throw new CliError('ERR_FLAG', `--hpa-sync-period: '${opts.hpaSyncPeriod}' is too short (at least 100ms)`);
  const controlPort = Number(opts.controlPort);
  if (!Number.isInteger(controlPort) || controlPort < 0 || controlPort > 65535) throw new CliError('ERR_FLAG', `--control-port: '${opts.controlPort}' is not a port number`);
  const downscaleStabilizationMs = duration('--downscale-stabilization', opts.downscaleStabilization);
  const graceMs = duration('--grace-period', opts.gracePeriod);
  const logs = createLogSink();

  // Signals are ours from the start: one arriving while the system starts stops it as soon as it has started.
  const signals = new SignalHandler(logs, graceMs);
  let sys: RunningSystem;
  try {
    sys = await startSystem({
      folder,
      runFile: opts.runFile,
      embedded: opts.embedded,
      dataDir: opts.dataDir,
      syncPeriodMs,
      downscaleStabilizationMs,
      graceMs,
      controlPort,
      instantActivation: opts.instantActivation,
      warmSidecar: opts.warmSidecar,
      warmApp: opts.warmApp,
      logs,
    });
  } catch (err) {
    signals.dispose();
    throw err;
  }
  for (const n of sys.notices) logs.system(`note: ${n}`);
  for (const w of sys.plan.warnings) logs.system(`warning: ${w}`);
  if (opts.embedded) logs.system(`--embedded: every queue binding and its trigger is served by the embedded queue in ${opts.dataDir}/queue.db (queue names kept)`);
  for (const l of sys.loops) {
    const s = l.config.spec;
    logs.system(`ScaledObject ${s.name} scales ${l.appId}: min ${s.minReplicaCount}, max ${s.maxReplicaCount}, polling every ${s.pollingInterval}s, cooldown ${s.cooldownPeriod}s; ${l.scalers.map((x) => `${x.describes}, target ${x.target} per replica`).join('; ')}`);
  }
  logs.system(`status:     qscale status --watch   (${sys.controlUrl}/status)`);
  logs.system(`metrics:    ${sys.controlUrl}/metrics   (KEDA's metric names; each sidecar serves daprd's on its metrics port, see qscale status --json)`);
  logs.system('Ctrl-C stops everything gracefully (in-flight work finishes first); press it twice to kill.');
  if (sys.plan.producer) {
    logs.system(`producer (app ${sys.plan.producer.app.appId}): starting; its address and a request to try come once it answers`);
    void sys.producerReady.then((url) => {
      if (!url) return;
      logs.system(`producer:   ${url}  (Swagger UI: ${url}/swagger)`);
      logs.system(`try:        curl -X POST "${url}/MessageProducer" -H "accept: */*" -H "Content-Type: application/json" -d "{\\"count\\":1,\\"intervalMilliseconds\\":0}"`);
    });
  }
  const code = await signals.run(sys);
  logs.system('stopped');
  process.exit(code);
}

/**
 * SIGINT / SIGTERM: the first stops everything gracefully, bounded by the grace period plus a few seconds (then what
 * is left is killed); a second kills at once. `up` then exits on its own: nothing it started can keep it waiting.
 */
class SignalHandler {
  private count = 0;
  private sys: RunningSystem | undefined;
  private first: NodeJS.Signals | undefined;
  private finish: ((code: number) => void) | undefined;
  private readonly done = new Promise<number>((resolve) => {
    this.finish = resolve;
  });
  private readonly onSignal = (sig: NodeJS.Signals): void => this.signal(sig);

  constructor(private readonly logs: LogSink, private readonly graceMs: number) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  /** Resolves with the exit code once the system has stopped (or was killed). */
  run(sys: RunningSystem): Promise<number> {
    this.sys = sys;
    if (this.count > 1) void this.kill(130);
    else if (this.first) this.stop(this.first);
    return this.done.finally(() => this.dispose());
  }

  private signal(sig: NodeJS.Signals): void {
    this.count += 1;
    if (this.count === 1) {
      this.first = sig;
      if (this.sys) this.stop(sig);
      else this.logs.system(`${sig}: stopping as soon as the system has started`);
      return;
    }
    this.logs.system(`${sig} again: killing every replica now`);
    if (this.sys) void this.kill(130);
  }

  private stop(sig: NodeJS.Signals): void {
    const sys = this.sys!;
    const bound = this.graceMs + STOP_SLACK_MS;
    this.logs.system(`${sig}: stopping: scaling stops, every replica drains its in-flight work (at most ${Math.ceil(this.graceMs / 1000)}s), then exits; ${sig} again kills at once`);
    const deadline = setTimeout(() => {
      this.logs.system(`not stopped ${Math.ceil(bound / 1000)}s after ${sig}: killing what is left`);
      void this.kill(1);
    }, bound);
    sys.stop().then(
      () => {
        clearTimeout(deadline);
        this.finish?.(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        this.logs.system(`stopping failed: ${err instanceof Error ? err.message : String(err)}; killing what is left`);
        void this.kill(1);
      },
    );
  }

  private async kill(code: number): Promise<void> {
    if (this.sys) await withTimeout(this.sys.kill(), KILL_BOUND_MS, 'kill').catch(() => undefined);
    this.finish?.(code);
  }
}
