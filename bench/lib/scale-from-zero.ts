/**
 * Scale from zero through the real supervisor (`startSystem`, what `qscale up` runs) on the embedded queue: one message
 * through the seed's producer while the consumer is at 0 replicas → the consumer's "Finished at" line (WORK_MS=0).
 * Shared by bench/scaling.ts and bench/vs-bullmq.ts.
 */
import path from 'node:path';
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

export async function start(folder: string, logs: CountingLogs, syncPeriodMs: number, instantActivation: boolean): Promise<RunningSystem> {
  return startSystem({
    folder,
    embedded: true,
    dataDir: path.join(folder, '.qscale'),
    syncPeriodMs,
    downscaleStabilizationMs: 300_000,
    graceMs: 30_000,
    controlPort: 0,
    instantActivation,
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

export async function fromZero(instant: boolean, runs: number, pollingInterval: number): Promise<number[]> {
  const folder = benchFolder({
    'binding.yaml': seedComponent(),
    'scaling.yaml': scaledObject(pollingInterval, 1),
    'dapr.yaml': runFileFor({ WORK_MS: '0' }),
  });
  const logs = new CountingLogs();
  const sys = await start(folder, logs, 1000, instant);
  const consumer = sys.deployments.get('consumer')!;
  const producer = sys.deployments.get('producer')!;
  const out: number[] = [];
  try {
    await until(() => producer.readyCount === 1, 'the producer');
    for (let i = 0; i < runs; i++) {
      await until(() => consumer.current === 0 && consumer.list().length === 0, 'the consumer back at 0');
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      const t0 = performance.now();
      await send(sys, 1);
      const done = await logs.until(i + 1);
      out.push(done - t0);
    }
  } finally {
    await sys.stop();
  }
  return out;
}
