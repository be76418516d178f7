import { Command, Option } from 'commander';
import { flagErrorsAsCliErrors } from '../flag-errors.js';
import type { MetricsFlags } from './metrics-flags.js';
import { NO_EFFECT_FLAGS, optionFlags } from './daprd-flags.js';

export interface SidecarCliOptions extends MetricsFlags {
  appId?: string;
  appPort?: string;
  appChannelAddress: string;
  appProtocol: string;
  daprHttpPort?: string;
  daprHttpAddress?: string;
  daprListenAddresses?: string;
  listen?: string;
  resourcesPath: string[];
  componentsPath: string[];
  appMaxConcurrency?: string;
  daprGracefulShutdownSeconds?: string;
  embedded: boolean;
  dataDir: string;
  maxBodySize?: string;
  daprHttpMaxRequestSize?: string;
  appBindingOptionsTimeout?: string;
  logFormat: 'json' | 'text';
  logLevel?: string;
  logAsJson?: string | boolean;
  brokerHeaders?: string | boolean;
  wait?: string | boolean;
  standby?: boolean;
  /** daprd's flags that do nothing here (daprd-flags.ts), by commander's key. */
  [flag: string]: unknown;
}

/** pflag's string slices: repeatable, and each value split on commas. */
const collectList = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter((v) => v !== '')];
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * daprd turns `-flag` into `--flag` (it once used Go's flag package): so does this, with daprd's rule (more than two
 * characters, one leading dash), so `daprd -app-id x` command lines run too.
 */
class SidecarCommand extends Command {
  override parseOptions(argv: string[]): ReturnType<Command['parseOptions']> {
    return super.parseOptions(argv.map((a) => (a.length > 2 && a[0] === '-' && a[1] !== '-' ? `-${a}` : a)));
  }
}

export function sidecarCommand(): Command {
  const cmd = new SidecarCommand('sidecar')
    .description(
      "a Dapr-compatible sidecar (daprd's HTTP bindings API) for one app: output bindings to a broker, input bindings delivered to the app. " +
        "daprd's other flags are accepted and do nothing (one line at start names them; docs/sidecar.md)",
    )
    .option('--app-id <id>', 'the app id (scopes of components are matched against it; env APP_ID)')
    .option('--app-port <port>', "the port the app listens on; without it input bindings are not read (env APP_PORT)")
    .option('--app-channel-address <host>', 'where the app listens', '127.0.0.1')
    .option('--app-protocol <protocol>', "how daprd talks to the app: http (grpc, grpcs, https and h2c are accepted; qscale calls the app over plain HTTP)", 'http')
    .option('--dapr-http-port <port>', "the sidecar's HTTP API port (env DAPR_HTTP_PORT; default 3500)")
    .option('--dapr-listen-addresses <addresses>', "the address the HTTP API listens on (daprd's flag; comma-separated, the first is used; default 127.0.0.1)")
    .option('--dapr-http-address <host>', 'same as --dapr-listen-addresses with one address')
    .option('--listen <host>', 'same as --dapr-http-address')
    .option('--resources-path <path>', 'a folder (or file) of Component / Secret YAML; repeatable, or comma-separated', collectList, [])
    .option('--components-path <path>', 'same as --resources-path (its older name); repeatable', collect, [])
    .option('--app-max-concurrency <n>', 'at most this many calls to the app at once over all input bindings (-1 or 0: unlimited, the default)')
    .option(
      '--dapr-graceful-shutdown-seconds <seconds>',
      "how long a stop (SIGTERM, SIGINT, POST /v1.0/shutdown) may spend finishing in-flight deliveries before exiting anyway; 30 like a pod's terminationGracePeriodSeconds, so scale-in loses nothing a consumer can finish in that time (a negative value: the default)",
    )
    .option('--embedded', 'serve every queue binding and pub/sub component from the embedded SQLite queue, keeping queue, topic and consumer names (no broker needed)', false)
    .option('--data-dir <dir>', 'where the embedded queue lives (env QSCALE_DATA_DIR)', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--metrics-port <port>', "serve daprd's metrics (Prometheus text format, any GET path) on this port (default 9090; 0: any free port)")
    .option('--metrics-listen-address <address>', 'the address the metrics endpoint listens on (default 127.0.0.1)')
    .option('--enable-metrics [bool]', 'serve the metrics endpoint (default true; --enable-metrics=false: none)')
    .option('--max-body-size <size>', "largest request body the API reads, a Kubernetes quantity like daprd's (4Mi, 512Ki, 1M, 1048576; 0: no limit)")
    .option('--dapr-http-max-request-size <MB>', 'the same in MB (daprd\'s older flag; --max-body-size wins)')
    .option('--app-binding-options-timeout <duration>', 'how long the OPTIONS probe of an input binding waits for the app (default 3s)')
    .option('--broker-headers [bool]', 'also deliver what the backends read from the broker that Dapr components never pass to the app, e.g. Service Bus MessageId and DeliveryCount (env QSCALE_BROKER_HEADERS; off: an app that reads them breaks on a cluster)')
    .addOption(new Option('--log-format <format>', 'log lines as daprd-style text or JSON').choices(['text', 'json']).default('text'))
    .option('--log-as-json [bool]', 'same as --log-format json (daprd\'s flag)')
    .option('--log-level <level>', 'debug, info, warn, error or fatal (env QSCALE_LOG_LEVEL; default info)')
    .option('--wait [bool]', 'wait until the sidecar on --dapr-http-port is outbound-ready (at most 60 s), then exit 0, as daprd --wait')
    .addOption(new Option('--standby', "start without dialling the app or reading anything until a line `adopt <app pid>` arrives on stdin; stdin closing first (its supervisor is gone) exits the sidecar. Used by qscale up's warm sidecar").hideHelp())
    .action(async (opts: SidecarCliOptions) => {
      const { runSidecar } = await import('./run.js');
      await runSidecar(opts);
    });
  for (const f of NO_EFFECT_FLAGS) cmd.addOption(new Option(optionFlags(f), `daprd's; no effect here (${f.reason})`).hideHelp());
  return flagErrorsAsCliErrors(cmd);
}
