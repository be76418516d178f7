/**
 * Scale from zero through the real supervisor (`startSystem`, what `qscale up` runs) on the embedded queue: one message
 * through the seed's producer while the consumer is at 0 replicas → the consumer's "Finished at" line (WORK_MS=0).
 * Shared by bench/scaling.ts and bench/vs-bullmq.ts.
 */
import path from 'node:path';
import readline from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { startSystem, type RunningSystem } from '../../src/supervisor/system.js';
import { CountingLogs, benchFolder, runFileFor, seedComponent } from '../system.js';

/** scaleDown stabilization 0 lets the single-message runs return to 0 quickly; the seed run keeps the default 300 s. */
export function scaledObject(pollingInterval: number, cooldown: number, downWindow = 0): string {
  return `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  pollingInterval: ${pollingInterval}
  cooldownPeriod: ${cooldown}
  minReplicaCount: 0
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          policies:
          - {type: Pods, value: 10, periodSeconds: 15}
        scaleDown:
          stabilizationWindowSeconds: ${downWindow}
          policies:
          - {type: Percent, value: 100, periodSeconds: 1}
  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      messageCount: "5"
`;
}

export async function start(folder: string, logs: CountingLogs, syncPeriodMs: number, instantActivation: boolean, warmSidecar = true, warmApp = true): Promise<RunningSystem> {
  return startSystem({
    folder,
    embedded: true,
    dataDir: path.join(folder, '.qscale'),
    syncPeriodMs,
    downscaleStabilizationMs: 300_000,
    graceMs: 30_000,
    controlPort: 0,
    instantActivation,
    warmSidecar,
    warmApp,
    logs,
  });
}

export async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function send(sys: RunningSystem, count: number): Promise<void> {
  const res = await request(`${sys.producerUrl}/MessageProducer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count, intervalMilliseconds: 0 }),
  });
  if (res.statusCode !== 200) throw new Error(`producer answered ${res.statusCode}: ${await res.body.text()}`);
  await res.body.dump();
}

/**
 * Where a scale from zero spends its time: each step's first sign after the message was sent (ms since the send), read
 * from the supervisor's decision line and the replica's own log lines as they arrive.
 */
export const SPANS: ReadonlyArray<readonly [string, RegExp | 'spawn']> = [
  ['scale decision (0 → 1)', /: 0 → 1 /],
  ['app and sidecar spawned', 'spawn'],
  ['warm sidecar adopted', /adopted by the supervisor/],
  ['app listening', /consumer listening on/],
  // With a warm sidecar these happened before the message was sent.
  ['sidecar code running', /starting qscale sidecar/],
  ['sidecar components loaded', /loaded component/],
  ['sidecar API listening', /HTTP API listening/],
  ['sidecar reading into the app', /reading input binding \S+ into/],
];

export class SpanLogs extends CountingLogs {
  t0 = 0;
  readonly runs: Array<Map<string, number>> = [];
  private current = new Map<string, number>();
  private open = false;
  mark(t0: number): void {
    this.t0 = t0;
    this.current = new Map();
    this.runs.push(this.current);
    this.open = true;
  }
  /** The run's message was processed: lines after this (a warm sidecar starting for the next run) are not its steps. */
  end(): void {
    this.open = false;
  }
  private note(line: string): void {
    if (!this.open) return;
    const now = performance.now() - this.t0;
    for (const [name, re] of SPANS) if (re !== 'spawn' && re.test(line) && !this.current.has(name)) this.current.set(name, now);
  }
  override attach(child: ChildProcess, prefix: string): void {
    if (this.open && prefix.startsWith('consumer') && !prefix.endsWith('daprd') && !this.current.has('app and sidecar spawned')) {
      this.current.set('app and sidecar spawned', performance.now() - this.t0);
    }
    super.attach(child, prefix);
    for (const s of [child.stdout, child.stderr]) if (s) readline.createInterface({ input: s }).on('line', (l) => this.note(l));
  }
  override system(line: string): void {
    this.note(line);
    super.system(line);
  }
  /** Per span, the median over the runs (ms after the send). */
  medians(): Array<[string, number]> {
    return SPANS.map(([name]) => {
      const xs = this.runs.map((r) => r.get(name)).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
      return [name, xs.length ? xs[Math.floor(xs.length / 2)]! : NaN];
    });
  }
}

export async function fromZero(
  instant: boolean,
  runs: number,
  pollingInterval: number,
  logs: CountingLogs = new CountingLogs(),
  warmSidecar = true,
  /** Called at 0 replicas after the last run, before the system stops (e.g. to read the warm sidecar's memory). */
  atZero?: (sys: RunningSystem) => void | Promise<void>,
  /** The apps on the seed's fixed appPorts (producer 5000, consumer 6000), as `npm start` runs them. */
  seedPorts = false,
  /** With the warm sidecar, a warm app runtime too (`qscale up`'s default; --no-warm-app turns it off). */
  warmApp = true,
): Promise<number[]> {
  const folder = benchFolder({
    'binding.yaml': seedComponent(),
    'scaling.yaml': scaledObject(pollingInterval, 1),
    'dapr.yaml': runFileFor({ WORK_MS: '0' }, seedPorts),
  });
  const sys = await start(folder, logs, 1000, instant, warmSidecar, warmApp);
  const consumer = sys.deployments.get('consumer')!;
  const producer = sys.deployments.get('producer')!;
  const out: number[] = [];
  // The same logs may serve several systems one after the other: count this system's messages only.
  const before = logs.processed;
  try {
    await until(() => producer.readyCount === 1, 'the producer');
    for (let i = 0; i < runs; i++) {
      await until(() => consumer.current === 0 && consumer.list().length === 0, 'the consumer back at 0');
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      const t0 = performance.now();
      if (logs instanceof SpanLogs) logs.mark(t0);
      await send(sys, 1);
      const done = await logs.until(before + i + 1);
      if (logs instanceof SpanLogs) logs.end();
      out.push(done - t0);
    }
    if (atZero) {
      await until(() => consumer.current === 0 && consumer.list().length === 0, 'the consumer back at 0');
      await atZero(sys);
    }
  } finally {
    await sys.stop();
  }
  return out;
}
