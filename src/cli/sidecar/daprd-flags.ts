/**
 * daprd's flags (dapr/dapr cmd/daprd/options, with dapr/kit's logger flags) that have nothing
 * to act on in a local sidecar serving the HTTP bindings API. They are accepted, their values read as daprd reads
 * them (a value daprd refuses is refused), and one line at start names those given with why they do nothing, so a
 * command line written for daprd (`dapr run`, a pod spec) runs unchanged.
 */
import { CliError } from '../codes.js';
import { parseGoBool, parseGoDuration } from '../../backends/trigger-metadata.js';

/** How pflag reads the flag's value. */
export type DaprdFlagValue = 'string' | 'strings' | 'bool' | 'int' | 'uint' | 'duration';

export interface DaprdFlag {
  name: string;
  value: DaprdFlagValue;
  /** Why it does nothing here. */
  reason: string;
}

const NO_CONTROL_PLANE = 'no control plane locally';
const NO_GRPC = 'qscale serves the HTTP API only';
const NO_ACTORS = 'no actors, workflows or jobs';
const NO_HEALTH = 'the app is not health-probed; input bindings are read while the sidecar runs';

export const NO_EFFECT_FLAGS: readonly DaprdFlag[] = [
  { name: 'mode', value: 'string', reason: 'always standalone' },
  { name: 'dapr-grpc-port', value: 'string', reason: NO_GRPC },
  { name: 'dapr-internal-grpc-port', value: 'string', reason: 'no service invocation between sidecars' },
  { name: 'dapr-internal-grpc-listen-address', value: 'string', reason: 'no service invocation between sidecars' },
  { name: 'dapr-public-port', value: 'string', reason: 'health and metadata are served on the API port' },
  { name: 'dapr-public-listen-address', value: 'string', reason: 'health and metadata are served on the API port' },
  { name: 'profile-port', value: 'string', reason: 'no profiling server' },
  { name: 'enable-profiling', value: 'bool', reason: 'no profiling server' },
  { name: 'config', value: 'strings', reason: 'Dapr Configuration is not read: no tracing, metrics, middleware or features' },
  { name: 'control-plane-address', value: 'string', reason: NO_CONTROL_PLANE },
  { name: 'sentry-address', value: 'string', reason: NO_CONTROL_PLANE },
  { name: 'control-plane-trust-domain', value: 'string', reason: NO_CONTROL_PLANE },
  { name: 'control-plane-namespace', value: 'string', reason: NO_CONTROL_PLANE },
  { name: 'sentry-request-jwt-audiences', value: 'strings', reason: NO_CONTROL_PLANE },
  { name: 'enable-mtls', value: 'bool', reason: 'no sidecar-to-sidecar traffic' },
  { name: 'allowed-origins', value: 'string', reason: 'no CORS headers are sent' },
  { name: 'app-ssl', value: 'bool', reason: 'the app is called over plain HTTP' },
  { name: 'dapr-http-read-buffer-size', value: 'int', reason: "node's 16 KiB header limit applies" },
  { name: 'read-buffer-size', value: 'string', reason: "node's 16 KiB header limit applies" },
  { name: 'unix-domain-socket', value: 'string', reason: 'the API listens on TCP only' },
  { name: 'dapr-block-shutdown-duration', value: 'duration', reason: NO_HEALTH },
  { name: 'enable-api-logging', value: 'bool', reason: 'API calls are not logged one by one' },
  { name: 'disable-builtin-k8s-secret-store', value: 'bool', reason: 'secrets come from the Secrets in the resources path' },
  { name: 'enable-app-health-check', value: 'bool', reason: NO_HEALTH },
  { name: 'app-health-check-path', value: 'string', reason: NO_HEALTH },
  { name: 'app-health-probe-interval', value: 'int', reason: NO_HEALTH },
  { name: 'app-health-probe-timeout', value: 'int', reason: NO_HEALTH },
  { name: 'app-health-threshold', value: 'int', reason: NO_HEALTH },
  { name: 'disable-init-endpoints', value: 'strings', reason: "not honoured: the app's GET /dapr/subscribe is always read, and no /dapr/config is called" },
  { name: 'placement-host-address', value: 'string', reason: NO_ACTORS },
  { name: 'scheduler-host-address', value: 'strings', reason: NO_ACTORS },
  { name: 'scheduler-job-streams', value: 'uint', reason: NO_ACTORS },
  { name: 'actors-disseminate-timeout', value: 'duration', reason: NO_ACTORS },
  { name: 'hot-reload-reconcile-interval', value: 'duration', reason: 'components are read once, at start' },
  { name: 'reminders-service', value: 'string', reason: NO_ACTORS },
  { name: 'actors-service', value: 'string', reason: NO_ACTORS },
  { name: 'log-file', value: 'string', reason: 'logs go to stderr' },
  { name: 'build-info', value: 'bool', reason: 'no build info to print' },
];

/** commander's property name for a flag. */
export function optionKey(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The commander flag text: pflag's booleans take no value or `=true|false`. */
export function optionFlags(f: Pick<DaprdFlag, 'name' | 'value'>): string {
  return f.value === 'bool' ? `--${f.name} [bool]` : `--${f.name} <value>`;
}

const GO_INT = /^[+-]?(?:0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|0[bB][01](?:_?[01])*|0[oO]?[0-7](?:_?[0-7])*|[1-9](?:_?\d)*|0)$/;

/** Go's strconv.ParseInt(text, 0, 64) as pflag reads an int; undefined when it refuses the text. */
export function parseGoInt(text: string): number | undefined {
  if (!GO_INT.test(text)) return undefined;
  const sign = text.startsWith('-') ? -1 : 1;
  const digits = text.replace(/^[+-]/, '').replace(/_/g, '');
  const n = /^0[0-7]+$/.test(digits) ? parseInt(digits, 8) : Number(digits.replace(/^0[oO]/, '0o'));
  return Number.isSafeInteger(n) ? sign * n : undefined;
}

/** A bool flag's value: given alone it is true, else Go's ParseBool. */
export function flagBool(name: string, value: string | boolean | undefined): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  const b = parseGoBool(value);
  if (b === undefined) throw new CliError('ERR_FLAG', `--${name} takes true or false (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got '${value}'`);
  return b;
}

/** Refuses a value daprd's flag parser would refuse; the value itself is not used. */
function checkValue(f: DaprdFlag, value: unknown): void {
  const text = typeof value === 'string' ? value : undefined;
  switch (f.value) {
    case 'bool':
      flagBool(f.name, value as string | boolean | undefined);
      return;
    case 'int':
    case 'uint': {
      const n = text === undefined ? undefined : parseGoInt(text);
      if (n === undefined || (f.value === 'uint' && n < 0)) throw new CliError('ERR_FLAG', `--${f.name} must be ${f.value === 'uint' ? 'a whole number >= 0' : 'an integer'}, got '${String(value)}'`);
      return;
    }
    case 'duration': {
      const ms = text === undefined ? undefined : parseGoDuration(text);
      if (ms === undefined) throw new CliError('ERR_FLAG', `--${f.name} must be a duration such as 30s or 1m, got '${String(value)}'`);
      if (f.name === 'actors-disseminate-timeout' && ms <= 0) throw new CliError('ERR_FLAG', `--${f.name} must be positive, got '${String(value)}'`);
      return;
    }
    case 'strings':
      if (f.name === 'disable-init-endpoints' && text !== undefined) {
        const bad = text.split(',').map((e) => e.trim().toLowerCase()).find((e) => e !== '' && e !== 'config' && e !== 'subscribe');
        if (bad !== undefined) throw new CliError('ERR_FLAG', `--disable-init-endpoints takes config and subscribe, got '${bad}'`);
      }
      return;
    default:
      return;
  }
}

/** The flags given among those without effect, checked; the notice line naming them, or undefined. */
export function noEffectNotice(opts: Record<string, unknown>): string | undefined {
  const given: string[] = [];
  for (const f of NO_EFFECT_FLAGS) {
    const value = opts[optionKey(f.name)];
    if (value === undefined) continue;
    checkValue(f, value);
    given.push(`--${f.name} (${f.reason})`);
  }
  return given.length === 0 ? undefined : `daprd flags accepted with no effect in qscale: ${given.join(', ')}`;
}
