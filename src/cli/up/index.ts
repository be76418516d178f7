import { Command, Option } from 'commander';

export interface UpOptions {
  embedded: boolean;
  dataDir: string;
  runFile?: string;
  hpaSyncPeriod: string;
  downscaleStabilization: string;
  gracePeriod: string;
  controlPort: string;
  instantActivation: boolean;
  warmSidecar: boolean;
  warmApp: boolean;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start what a folder describes: each app of the run file (dapr.yaml) with its sidecar, consumer replicas scaled by the ScaledObject in the folder')
    .argument('[folder]', 'folder of Kubernetes YAML (Component, Secret, ScaledObject, TriggerAuthentication) and a dapr.yaml run file', '.')
    .option('--embedded', 'serve every queue binding, pub/sub component and trigger from the embedded SQLite queue, keeping queue, topic and consumer names (no broker needed)', false)
    .option('--data-dir <dir>', 'where the embedded queue and the supervisor state live', process.env.QSCALE_DATA_DIR ?? '.qscale')
    .option('--run-file <file>', 'the multi-app run file (default: <folder>/dapr.yaml)')
    .option('--hpa-sync-period <duration>', "the HPA's sync period, like kube-controller-manager's --horizontal-pod-autoscaler-sync-period", '15s')
    .option('--downscale-stabilization <duration>', "the HPA's downscale stabilization window when the ScaledObject sets no behavior (kube-controller-manager's --horizontal-pod-autoscaler-downscale-stabilization)", '300s')
    .option('--grace-period <duration>', "how long a stopping replica may drain in-flight work before it is killed, like terminationGracePeriodSeconds", '30s')
    .option('--control-port <port>', 'loopback port for the status endpoint (0 = any free port)', '0')
    .addOption(new Option('--no-warm-sidecar', "start no standby sidecar ahead for a scaled app's next replica (by default one per scaled app waits, components loaded, so a scale-up starts only the app; it costs one idle sidecar process, about 35 MiB PSS, per scaled app)"))
    .addOption(new Option('--no-warm-app', "with the standby sidecar, start no warm app runtime ahead (by default, when a scaled app's command is `node <script> …`, a node process waits beside the standby with the replica's environment and none of the app's code loaded, and a scale-up makes it run the script instead of starting node; about 12 MiB PSS per scaled app)"))
    .addOption(new Option('--no-instant-activation', 'wait for the next pollingInterval to activate from zero, exactly like KEDA (default: activate the moment a message lands)'))
    .action(async (folder: string, opts: UpOptions) => {
      const { runUp } = await import('./run.js');
      await runUp(folder, opts);
    });
}
