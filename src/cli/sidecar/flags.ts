/** Turns `qscale sidecar` flags (and daprd's environment fallbacks) into SidecarOptions, refusing bad values early. */
import { CliError } from '../codes.js';
import type { SidecarOptions } from '../../sidecar/options.js';
import type { SidecarCliOptions } from './index.js';
import { metricsOption } from './metrics-flags.js';

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|ki|kib|m|mb|mi|mib|g|gb|gi|gib)?$/i;
const UNITS: Record<string, number> = {
  b: 1, k: 1e3, kb: 1e3, ki: 1024, kib: 1024, m: 1e6, mb: 1e6, mi: 1024 ** 2, mib: 1024 ** 2, g: 1e9, gb: 1e9, gi: 1024 ** 3, gib: 1024 ** 3,
};

export function parseSize(flag: string, text: string): number {
  const m = SIZE_RE.exec(text.trim());
  const n = m ? Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1) : NaN;
  if (!Number.isFinite(n) || n < 1) throw new CliError('ERR_FLAG', `${flag} must be a size such as 4Mi, 512Ki or 1048576, got '${text}'`);
  return Math.floor(n);
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new CliError('ERR_FLAG', `${flag} must be an integer from ${min} to ${max}, got '${text}'`);
  }
  return n;
}

function port(flag: string, text: string | undefined): number | undefined {
  return text === undefined || text === '' ? undefined : integer(flag, text, 0, 65535);
}

export function parseSidecarFlags(opts: SidecarCliOptions, env: NodeJS.ProcessEnv): SidecarOptions {
  const appId = opts.appId ?? env.APP_ID;
  const appPort = port(opts.appPort !== undefined ? '--app-port' : 'APP_PORT', opts.appPort ?? env.APP_PORT);
  const httpPort = port(opts.daprHttpPort !== undefined ? '--dapr-http-port' : 'DAPR_HTTP_PORT', opts.daprHttpPort ?? env.DAPR_HTTP_PORT);
  const grace = Number(opts.daprGracefulShutdownSeconds);
  if (!Number.isFinite(grace) || grace < 0) {
    throw new CliError('ERR_FLAG', `--dapr-graceful-shutdown-seconds must be a number of seconds >= 0, got '${opts.daprGracefulShutdownSeconds}'`);
  }
  return {
    appId: appId && appId !== '' ? appId : `sidecar-${process.pid}`,
    appPort,
    appChannelAddress: opts.appChannelAddress,
    httpPort: httpPort ?? 3500,
    listenAddress: opts.daprHttpAddress ?? opts.listen ?? '127.0.0.1',
    resourcesPaths: [...opts.resourcesPath, ...opts.componentsPath],
    appMaxConcurrency: opts.appMaxConcurrency === undefined ? undefined : integer('--app-max-concurrency', opts.appMaxConcurrency, 1, 1_000_000),
    gracePeriodMs: grace * 1000,
    embedded: opts.embedded,
    dataDir: opts.dataDir,
    metrics: metricsOption(opts),
    maxBodyBytes: parseSize('--max-body-size', opts.maxBodySize),
    daprApiToken: env.DAPR_API_TOKEN || undefined,
    appApiToken: env.APP_API_TOKEN || undefined,
  };
}
