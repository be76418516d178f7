import { Command } from 'commander';

export interface SimulateFlags {
  load: string[];
  work: string;
  concurrency: string;
  startup: string;
  syncPeriod: string;
  pollingInterval?: string;
  stabilization: string;
  duration: string;
  instantActivation: boolean;
  json: boolean;
  scaledObject?: string;
  chart?: string;
  compare?: string;
}

export function simulateCommand(): Command {
  return new Command('simulate')
    .description('run a ScaledObject through the same KEDA + HPA functions as `qscale up`, on a virtual clock over a model of the queue and its replicas; prints each scaling decision with its reason')
    .argument('<path>', 'a ScaledObject file, or a folder of Kubernetes YAML')
    .option('--load <spec>', "messages to send: '0s:50' (50 at once), '10s-70s:5/s' (a rate over a span), '0s-1m:120' (spread); repeatable", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--work <duration>', 'time one message takes', '5s')
    .option('--concurrency <n>', 'messages one replica works on at once', '1')
    .option('--startup <duration>', 'time from starting a replica to it taking work', '1s')
    .option('--sync-period <duration>', "the HPA's sync period", '15s')
    .option('--polling-interval <duration>', "override the ScaledObject's pollingInterval")
    .option('--stabilization <duration>', "the HPA's downscale stabilization window", '5m')
    .option('--duration <duration>', 'simulated time to run', '15m')
    .option('--no-instant-activation', 'pure KEDA: wait for the next poll to activate from 0 (default: poll as soon as a message lands on an empty queue at 0 replicas, as `qscale up` does)')
    .option('--scaled-object <name>', 'which ScaledObject, when the path holds several')
    .option('--chart <file>', 'also draw queue depth and replicas over time, each decision marked: out.svg (an image) or out.html (a page with hover and zoom)')
    .option('--compare <path>', 'run a second ScaledObject (file or folder) under the same load; the chart and the text show both')
    .option('--json', 'print {timeline, summary} as JSON (with --compare: {runs: [...]})', false)
    .action(async (path: string, flags: SimulateFlags) => {
      const { runSimulate } = await import('./run.js');
      await runSimulate(path, flags);
    });
}
