/**
 * How fast `qscale simulate` runs: simulated seconds per wall-clock second, for the seed's burst and for a day of
 * steady load with bursts. Prints the figures and records them in docs/benchmarks.md (section "Simulator").
 * Run: npm run build && node dist/bench/simulator.js
 */
import { performance } from 'node:perf_hooks';
import { parseManifests } from '../src/components/manifests.js';
import { parseScaledObjects } from '../src/autoscaler/scaledobject.js';
import { simulate, triggerTargets, parseLoad, type SimulationOptions, type SimulationResult } from '../src/simulate/index.js';
import { machineLine, writeSection } from './report.js';

const SEED = `apiVersion: keda.k8s.io/v1alpha1
kind: ScaledObject
metadata:
  name: bindingconsumer-scaler
spec:
  scaleTargetRef:
    deploymentName: consumer
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      queueLength: '5'
`;

const WIDE = SEED.replace('maxReplicaCount: 10', 'maxReplicaCount: 100');

interface Scenario {
  name: string;
  yaml: string;
  loads: string[];
  durationMs: number;
  concurrency?: number;
}

const HOUR = 3_600_000;
const SCENARIOS: Scenario[] = [
  { name: 'seed: 50 messages at 0s, 15 min', yaml: SEED, loads: ['0s:50'], durationMs: 15 * 60_000 },
  {
    name: '24 h: 2/s steady + bursts of 500, 1000, 2000',
    yaml: WIDE,
    loads: ['0s-24h:2/s', '1h:500', '6h:1000', '12h:2000'],
    durationMs: 24 * HOUR,
  },
  { name: '24 h: 20/s steady, concurrency 4', yaml: WIDE, loads: ['0s-24h:20/s'], durationMs: 24 * HOUR, concurrency: 4 },
];

async function runOnce(s: Scenario): Promise<{ ms: number; result: SimulationResult }> {
  const spec = parseScaledObjects(parseManifests(s.yaml, 'bench.yaml')).scaledObjects[0]!;
  const triggers = await triggerTargets(spec);
  const options: SimulationOptions = {
    loads: s.loads.map(parseLoad),
    workMs: 5000,
    concurrency: s.concurrency ?? 1,
    startupMs: 1000,
    syncPeriodMs: 15_000,
    stabilizationMs: 300_000,
    durationMs: s.durationMs,
    instantActivation: true,
  };
  const t0 = performance.now();
  const result = simulate(spec, triggers, options);
  return { ms: performance.now() - t0, result };
}

const RUNS = 5;
const rows: string[] = [];
for (const s of SCENARIOS) {
  const times: number[] = [];
  let last: SimulationResult | undefined;
  for (let i = 0; i < RUNS; i++) {
    const { ms, result } = await runOnce(s);
    times.push(ms);
    last = result;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const simSeconds = s.durationMs / 1000;
  const speed = simSeconds / (median / 1000);
  const sum = last!.summary;
  const line = `| ${s.name} | ${sum.messages} | ${sum.decisions} | ${sum.peakReplicas} | ${median.toFixed(1)} ms | ${Math.round(speed).toLocaleString('en-US')} |`;
  rows.push(line);
  console.log(`${s.name}: ${sum.messages} messages, ${sum.decisions} decisions, peak ${sum.peakReplicas} replicas; median of ${RUNS} runs ${median.toFixed(1)} ms → ${Math.round(speed).toLocaleString('en-US')} simulated s per wall s`);
}

await writeSection(
  'Simulator',
  `\`node dist/bench/simulator.js\`: each scenario runs ${RUNS} times in one process through \`simulate()\` (the code behind
\`qscale simulate\`, YAML parsing excluded); the median wall time is shown. Work 5 s per message, startup 1 s,
HPA sync 15 s, stabilization 300 s, instant activation on; ScaledObject: the seed's (max 10) or the same with max 100.

| scenario | messages | decisions | peak replicas | wall time (median) | simulated s per wall s |
|---|---|---|---|---|---|
${rows.join('\n')}

${machineLine()}`,
);
