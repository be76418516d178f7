/**
 * Turns `qscale sidecar` flags (and daprd's environment fallbacks) into SidecarOptions, reading each value as daprd
 * reads it and refusing what daprd refuses, early. What the flags ask that qscale does not do comes back as
 * notices, one line for the caller to log.
 */
import { CliError } from '../codes.js';
import { parseGoDuration } from '../../backends/trigger-metadata.js';
import { DEFAULT_GRACE_MS, DEFAULT_MAX_BODY_BYTES, type SidecarOptions } from '../../sidecar/options.js';
import { flagBool, noEffectNotice, parseGoInt } from './daprd-flags.js';
import type { SidecarCliOptions } from './index.js';
import { metricsOption } from './metrics-flags.js';

/** A Kubernetes resource quantity (k8s.io/apimachinery), as daprd reads --max-body-size. */
const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const SUFFIX: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** Bytes in a quantity; undefined when it is not one or is not a whole number of bytes (daprd refuses both). */
export function parseQuantity(text: string): number | undefined {
  const m = QUANTITY.exec(text.trim());
  if (!m) return undefined;
  const suffix = m[2] ?? '';
  const scale = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix];
  const n = Number(m[1]) * (scale ?? NaN);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** daprd: -1 is the default limit, 0 or any other negative size no limit. */
function bodyLimit(n: number): number {
  return n === -1 ? DEFAULT_MAX_BODY_BYTES : Math.max(0, n);
}

export function parseSize(flag: string, text: string): number {
  const n = parseQuantity(text);
  if (n === undefined) throw new CliError('ERR_FLAG', `${flag} must be a size such as 4Mi, 512Ki or 1048576 (a Kubernetes quantity in whole bytes), got '${text}'`);
  return bodyLimit(n);
}

function goInt(flag: string, text: string): number {
  const n = parseGoInt(text.trim());
  if (n === undefined) throw new CliError('ERR_FLAG', `${flag} must be an integer, got '${text}'`);
  return n;
}

function port(flag: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = parseGoInt(text.trim());
  if (n === undefined || n < 0 || n > 65535) throw new CliError('ERR_FLAG', `${flag} must be an integer from 0 to 65535, got '${text}'`);
  return n;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'];
const APP_PROTOCOLS = ['http', 'https', 'grpc', 'grpcs', 'h2c'];

export interface SidecarRun {
  options: SidecarOptions;
  /** The log level (QSCALE_LOG_LEVEL), when a flag set it. */
  logLevel: string | undefined;
  json: boolean;
  /** --wait: only wait for the sidecar on this port to be outbound-ready. */
  waitForPort: number | undefined;
  /** Lines to log once at start: what is accepted but not done. */
  notices: string[];
}

export function parseSidecarFlags(opts: SidecarCliOptions, env: NodeJS.ProcessEnv): SidecarRun {
  const notices: string[] = [];
  const appId = opts.appId ?? env.APP_ID;
  const appPort = port(opts.appPort !== undefined ? '--app-port' : 'APP_PORT', opts.appPort ?? env.APP_PORT);
  const httpPort = port(opts.daprHttpPort !== undefined ? '--dapr-http-port' : 'DAPR_HTTP_PORT', opts.daprHttpPort ?? env.DAPR_HTTP_PORT) ?? 3500;
  if (appPort !== undefined && appPort === httpPort && httpPort !== 0) {
    throw new CliError('ERR_FLAG', `the 'dapr-http-port' argument value ${httpPort} conflicts with 'app-port'`);
  }

  // daprd: a negative grace period is the default one.
  let gracePeriodMs = DEFAULT_GRACE_MS;
  if (opts.daprGracefulShutdownSeconds !== undefined) {
    const s = goInt('--dapr-graceful-shutdown-seconds', opts.daprGracefulShutdownSeconds);
    if (s >= 0) gracePeriodMs = s * 1000;
  }
  // daprd: -1, 0 (and below) mean no limit.
  let appMaxConcurrency: number | undefined;
  if (opts.appMaxConcurrency !== undefined) {
    const n = goInt('--app-max-concurrency', opts.appMaxConcurrency);
    appMaxConcurrency = n > 0 ? n : undefined;
  }
  // --max-body-size wins over the older --dapr-http-max-request-size (MB); -1 is the default and 0 no limit.
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  if (opts.maxBodySize !== undefined) maxBodyBytes = parseSize('--max-body-size', opts.maxBodySize);
  else if (opts.daprHttpMaxRequestSize !== undefined) {
    const mb = goInt('--dapr-http-max-request-size', opts.daprHttpMaxRequestSize);
    maxBodyBytes = bodyLimit(mb > 0 ? mb * 2 ** 20 : mb);
  }
  let appBindingOptionsTimeoutMs: number | undefined;
  if (opts.appBindingOptionsTimeout !== undefined) {
    const ms = parseGoDuration(opts.appBindingOptionsTimeout.trim());
    if (ms === undefined) throw new CliError('ERR_FLAG', `--app-binding-options-timeout must be a duration such as 3s or 500ms, got '${opts.appBindingOptionsTimeout}'`);
    // daprd: a value that is not positive is the default.
    appBindingOptionsTimeoutMs = ms > 0 ? ms : undefined;
  }

  const protocol = opts.appProtocol.trim().toLowerCase();
  if (protocol !== '' && !APP_PROTOCOLS.includes(protocol)) throw new CliError('ERR_FLAG', `invalid value for 'app-protocol': ${opts.appProtocol} (http, https, grpc, grpcs or h2c)`);
  if (protocol !== '' && protocol !== 'http') notices.push(`--app-protocol ${protocol} has no effect in qscale: the app is called over plain HTTP (an app that serves only ${protocol} gets no input binding messages)`);

  let logLevel: string | undefined;
  if (opts.logLevel !== undefined) {
    logLevel = opts.logLevel.toLowerCase();
    if (!LOG_LEVELS.includes(logLevel)) throw new CliError('ERR_FLAG', `invalid value for --log-level: ${opts.logLevel} (debug, info, warn, error or fatal)`);
  }
  const json = flagBool('log-as-json', opts.logAsJson) === true || opts.logFormat === 'json';
  const brokerHeadersEnv = env.QSCALE_BROKER_HEADERS;
  const brokerHeaders = opts.brokerHeaders !== undefined
    ? flagBool('broker-headers', opts.brokerHeaders) === true
    : brokerHeadersEnv !== undefined && brokerHeadersEnv !== '' && flagBool('broker-headers (env QSCALE_BROKER_HEADERS)', brokerHeadersEnv) === true;

  let listenAddress = opts.daprHttpAddress ?? opts.listen ?? '127.0.0.1';
  if (opts.daprListenAddresses !== undefined) {
    const [first, ...others] = opts.daprListenAddresses.split(',').map((a) => a.trim());
    listenAddress = first === '' || first === undefined ? '0.0.0.0' : first;
    if (others.length > 0) notices.push(`--dapr-listen-addresses: the HTTP API listens on ${listenAddress} only, not on ${others.join(', ')}`);
  }

  const noEffect = noEffectNotice(opts as Record<string, unknown>);
  if (noEffect) notices.push(noEffect);
  const waitForPort = flagBool('wait', opts.wait) === true ? httpPort : undefined;

  return {
    options: {
      appId: appId && appId !== '' ? appId : `sidecar-${process.pid}`,
      appPort,
      appChannelAddress: opts.appChannelAddress,
      httpPort,
      listenAddress,
      resourcesPaths: [...opts.resourcesPath, ...opts.componentsPath],
      appMaxConcurrency,
      gracePeriodMs,
      embedded: opts.embedded,
      dataDir: opts.dataDir,
      metrics: metricsOption(opts),
      maxBodyBytes,
      appBindingOptionsTimeoutMs,
      brokerHeaders,
      daprApiToken: env.DAPR_API_TOKEN || undefined,
      appApiToken: env.APP_API_TOKEN || undefined,
    },
    logLevel,
    json,
    waitForPort,
    notices,
  };
}
