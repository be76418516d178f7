/**
 * daprd's metrics flags: --enable-metrics (default true), --metrics-port (default 9090) and
 * --metrics-listen-address, read as daprd reads them, into SidecarOptions.metrics.
 */
import { CliError } from '../codes.js';
import { parseGoBool } from '../../backends/trigger-metadata.js';
import type { SidecarOptions } from '../../sidecar/options.js';
import { DEFAULT_METRICS_PORT } from '../../sidecar/metrics.js';

export interface MetricsFlags {
  metricsPort?: string | undefined;
  metricsListenAddress?: string | undefined;
  /** Given alone it is true; `--enable-metrics=false` turns the endpoint off. */
  enableMetrics?: string | boolean | undefined;
}

/** Unlike daprd (every interface), the endpoint listens on loopback unless told otherwise, as the API does. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1';

export function metricsOption(o: MetricsFlags): SidecarOptions['metrics'] {
  let enabled = true;
  if (typeof o.enableMetrics === 'boolean') enabled = o.enableMetrics;
  else if (o.enableMetrics !== undefined) {
    const b = parseGoBool(o.enableMetrics);
    if (b === undefined) throw new CliError('ERR_FLAG', `--enable-metrics takes true or false (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got '${o.enableMetrics}'`);
    enabled = b;
  }
  let port = DEFAULT_METRICS_PORT;
  if (o.metricsPort !== undefined) {
    // daprd reads it with strconv.Atoi: a decimal integer, a sign allowed.
    const text = o.metricsPort.trim();
    const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError('ERR_FLAG', `--metrics-port must be an integer from 0 to 65535, got '${o.metricsPort}'`);
    port = n;
  }
  const listenAddress = o.metricsListenAddress?.trim() || DEFAULT_METRICS_LISTEN;
  return enabled ? { port, listenAddress } : undefined;
}
