/**
 * The simulator predicts what `qscale up` does: for the same ScaledObject and load, the real supervisor takes the
 * simulator's scaling decisions in the same order. Times are not compared here (the machine is shared and noisy):
 * bench/simulate-vs-real.ts prints both timelines and how far apart they are.
 *
 * The scenario is chosen so the order of decisions does not depend on timing, only on the autoscaler's rules:
 * - all 40 messages are in the queue before `qscale up` starts (the model's "0s:40"), so every reading sees the
 *   whole load at first;
 * - the scaleUp policy (2 pods per 2 s) makes two HPA steps, 1 → 3 and 3 → 5, whichever sync period the second
 *   falls in — each holds the whole load, far above 5 × 5;
 * - scaleDown is Disabled, so the HPA never takes a step whose value would depend on when replicas finish; KEDA
 *   takes the consumer to 0 once the queue has been empty for the cooldown.
 * With scale-down left to the HPA, the steps taken on the way down depend on when each replica finishes its
 * messages relative to the sync period, which the model (one start-up time for all) cannot know: that comparison
 * is the benchmark's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { LOGGING_CONSUMER, queueBackend, scaledObjectYaml, serviceBusTrigger, startUp, tempFolder, writeFiles } from './harness.js';
import { parseManifests } from '../../src/components/index.js';
import { parseScaledObjects } from '../../src/autoscaler/index.js';
import { parseLoad, simulate, triggerTargets } from '../../src/simulate/index.js';

const MESSAGES = 40;
const WORK_MS = 2000;
const SYNC_MS = 1000;

const SCALED_OBJECT = scaledObjectYaml({
  maxReplicaCount: 5,
  cooldownPeriod: 3,
  scaleUpPolicy: '{type: Pods, value: 2, periodSeconds: 2}',
  scaleDown: 'Disabled',
  triggers: serviceBusTrigger(),
});

const COMPONENT = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
  - name: connectionString
    value: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=placeholder"
  - name: queueName
    value: msgqueue
`;

const RUN_FILE = `version: 1
apps:
  - appID: consumer
    appDirPath: /
    command: ${JSON.stringify(LOGGING_CONSUMER)}
    env:
      WORK_MS: "${WORK_MS}"
`;

/** What the simulator decides for this folder's ScaledObject and the load, as "kind from→to". */
async function simulated(): Promise<string[]> {
  const { scaledObjects } = parseScaledObjects(parseManifests(SCALED_OBJECT, 'scaling.yaml'));
  const spec = scaledObjects[0];
  assert.ok(spec, 'the ScaledObject parses');
  const result = simulate(spec, await triggerTargets(spec), {
    loads: [parseLoad(`0s:${MESSAGES}`)],
    workMs: WORK_MS,
    concurrency: 1,
    startupMs: 1000,
    syncPeriodMs: SYNC_MS,
    stabilizationMs: 300_000,
    durationMs: 300_000,
    instantActivation: true,
  });
  assert.equal(result.summary.processed, MESSAGES, 'the model processes every message');
  return result.decisions.map((d) => `${d.kind} ${d.from}→${d.to}`);
}

/** Stores the messages in the embedded queue the way a sidecar's output binding does, before anything runs. */
async function prefill(folder: string, dataDir: string): Promise<void> {
  const b = await queueBackend(folder, dataDir, true);
  try {
    for (let i = 0; i < MESSAGES; i++) await b.send(Buffer.from(JSON.stringify({ text: `sim-${i}` })), {});
  } finally {
    await b.close();
  }
}

test('simulate - for the same ScaledObject and load, qscale up takes the simulator\'s decisions in the same order', { timeout: 180_000 }, async () => {
  const expected = await simulated();
  assert.deepEqual(expected, ['keda 0→1', 'hpa 1→3', 'hpa 3→5', 'keda 5→0'], 'the scenario the test is written for');

  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': SCALED_OBJECT, 'dapr.yaml': RUN_FILE });
  await prefill(folder, path.join(folder, '.qscale'));
  const up = await startUp(folder, ['--embedded', '--hpa-sync-period', `${SYNC_MS}ms`]);
  try {
    const s = await up.waitFor(
      (st) => up.countLines(/\| processed sim-\d+ pid=/) >= MESSAGES && st.decisions.some((d) => d.to === 0),
      150_000,
      `all ${MESSAGES} processed and the consumer back to 0`,
    );
    const real = s.decisions.filter((d) => d.kind !== 'supervisor').map((d) => `${d.kind} ${d.from}→${d.to}`);
    assert.deepEqual(real, expected, `qscale up's decisions follow the simulator's (real reasons: ${s.decisions.map((d) => d.reason).join(' | ')})`);
    assert.equal(up.countLines(/\| processed sim-\d+ pid=/), MESSAGES, 'every message processed once');
  } finally {
    await up.stop();
  }
});
