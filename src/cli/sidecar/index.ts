import { Command, Option } from 'commander';
import { flagErrorsAsCliErrors } from '../flag-errors.js';
import type { MetricsFlags } from './metrics-flags.js';

export interface SidecarCliOptions extends MetricsFlags {
  appId?: string;
  appPort?: string;
  appChannelAddress: string;
  daprHttpPort?: string;
  daprHttpAddress?: string;
  listen?: string;
  resourcesPath: string[];
  componentsPath: string[];
  appMaxConcurrency?: string;
  daprGracefulShutdownSeconds: string;
  embedded: boolean;
  dataDir: string;
  maxBodySize: string;
  logFormat: 'json' | 'text';
  appProtocol: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function sidecarCommand(): Command {
  const cmd = new Command('sidecar')
    .description("a Dapr-compatible sidecar (daprd's HTTP bindings API) for one app: output bindings to a broker, input bindings delivered to the app")
    .option('--app-id <id>', 'the app id (scopes of components are matched against it; env APP_ID)')
    .option('--app-port <port>', "the port the app listens on; without it input bindings are not read (env APP_PORT)")
    .option('--app-channel-address <host>', 'where the app listens', '127.0.0.1')
    .addOption(new Option('--app-protocol <protocol>', 'how to talk to the app (only http)').choices(['http']).default('http'))
    .option('--dapr-http-port <port>', "the sidecar's HTTP API port (env DAPR_HTTP_PORT; default 3500)")
    .option('--dapr-http-address <host>', 'the address the HTTP API listens on (default 127.0.0.1)')
    .option('--listen <host>', 'same as --dapr-http-address')
    .option('--resources-path <path>', 'a folder (or file) of Component / Secret YAML; repeatable', collect, [])
    .option('--components-path <path>', 'same as --resources-path (its older name); repeatable', collect, [])
    .option('--app-max-concurrency <n>', 'at most this many calls to the app at once over all input bindings (default unlimited)')
    .option(
      '--dapr-graceful-shutdown-seconds <seconds>',
      "how long a stop (SIGTERM, SIGINT, POST /v1.0/shutdown) may spend finishing in-flight deliveries before exiting anyway; 30 like a pod's terminationGracePeriodSeconds, so scale-in loses nothing a consumer can finish in that time",
      '30',
    )
    .option('--embedded', 'serve every queue binding from the embedded SQLite queue, keeping queue names (no broker needed)', false)
    .option('--data-dir <dir>', 'where the embedded queue lives (env QSCALE_DATA_DIR)', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--metrics-port <port>', "serve daprd's metrics (Prometheus text format, any GET path) on this port (default 9090; 0: any free port)")
    .option('--metrics-listen-address <address>', 'the address the metrics endpoint listens on (default 127.0.0.1)')
    .option('--enable-metrics [bool]', 'serve the metrics endpoint (default true; --enable-metrics=false: none)')
    .option('--max-body-size <size>', "largest request body the API takes, like daprd's (bytes, or with a unit: 4Mi, 512Ki, 1MB)", '4Mi')
    .addOption(new Option('--log-format <format>', 'log lines as daprd-style text or JSON').choices(['text', 'json']).default('text'))
    .action(async (opts: SidecarCliOptions) => {
      const { runSidecar } = await import('./run.js');
      await runSidecar(opts);
    });
  return flagErrorsAsCliErrors(cmd);
}
