import { parseDuration } from '../../components/metadata.js';
import { QscaleError } from '../../errors.js';
import { startSystem } from '../../supervisor/system.js';
import { createLogSink } from '../../supervisor/logs.js';
import type { UpOptions } from './index.js';

function duration(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0) throw new QscaleError('ERR_FLAG', `${flag}: '${value}' is not a duration (e.g. 15s, 500ms, 5m)`);
  return ms;
}

export async function runUp(folder: string, opts: UpOptions): Promise<void> {
  const syncPeriodMs = duration('--hpa-sync-period', opts.hpaSyncPeriod);
  if (syncPeriodMs < 100) throw new QscaleError('ERR_FLAG', `--hpa-sync-period: '${opts.hpaSyncPeriod}' is too short (at least 100ms)`);
  const controlPort = Number(opts.controlPort);
  if (!Number.isInteger(controlPort) || controlPort < 0 || controlPort > 65535) throw new QscaleError('ERR_FLAG', `--control-port: '${opts.controlPort}' is not a port number`);
  const logs = createLogSink();
  const sys = await startSystem({
    folder,
    runFile: opts.runFile,
    embedded: opts.embedded,
    dataDir: opts.dataDir,
    syncPeriodMs,
    downscaleStabilizationMs: duration('--downscale-stabilization', opts.downscaleStabilization),
    graceMs: duration('--grace-period', opts.gracePeriod),
    controlPort,
    instantActivation: opts.instantActivation,
    logs,
  });
  for (const n of sys.notices) logs.system(`note: ${n}`);
  if (opts.embedded) logs.system(`--embedded: every queue binding and its trigger is served by the embedded queue in ${opts.dataDir}/queue.db (queue names kept)`);
  for (const l of sys.loops) {
    const s = l.config.spec;
    logs.system(`ScaledObject ${s.name} scales ${l.appId}: min ${s.minReplicaCount}, max ${s.maxReplicaCount}, polling every ${s.pollingInterval}s, cooldown ${s.cooldownPeriod}s; ${l.scalers.map((x) => `${x.describes}, target ${x.target} per replica`).join('; ')}`);
  }
  if (sys.producerUrl) {
    logs.system(`producer:   ${sys.producerUrl}  (Swagger UI: ${sys.producerUrl}/swagger)`);
    logs.system(`try:        curl -X POST "${sys.producerUrl}/MessageProducer" -H "accept: */*" -H "Content-Type: application/json" -d "{\\"count\\":1,\\"intervalMilliseconds\\":0}"`);
  }
  logs.system(`status:     qscale status --watch   (${sys.controlUrl}/status)`);
  logs.system('Ctrl-C stops everything gracefully (in-flight work finishes first); press it twice to kill.');

  let signals = 0;
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      signals += 1;
      if (signals === 1) {
        logs.system(`${sig}: stopping: scaling stops, every replica drains its in-flight work, then exits`);
        void sys.stop().then(resolve);
      } else {
        logs.system('killing every replica now');
        void Promise.all([...sys.deployments.values()].map((d) => d.killAll())).then(() => process.exit(130));
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  logs.system('stopped');
}
