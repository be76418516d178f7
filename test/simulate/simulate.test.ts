import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseManifests } from '../../src/components/manifests.js';
import { parseScaledObjects } from '../../src/autoscaler/scaledobject.js';
import { simulate, triggerTargets, parseLoad, type SimulationOptions } from '../../src/simulate/index.js';
import { simulationOptions } from '../../src/cli/simulate/run.js';
import type { SimulateFlags } from '../../src/cli/simulate/index.js';
import { FlagError } from '../../src/simulate/load.js';
import { SEED_SCALEDOBJECT } from '../autoscaler/fixtures.js';

const run = promisify(execFile);
const MAIN = path.resolve('dist/src/cli/main.js');

function specOf(yaml: string) {
  return parseScaledObjects(parseManifests(yaml, 'scaling.yaml')).scaledObjects[0]!;
}

const DEFAULTS: SimulationOptions = {
  loads: [],
  workMs: 5000,
  concurrency: 1,
  startupMs: 1000,
  syncPeriodMs: 15_000,
  stabilizationMs: 300_000,
  durationMs: 15 * 60_000,
  instantActivation: true,
};

async function sim(yaml: string, loads: string[], extra: Partial<SimulationOptions> = {}) {
  const spec = specOf(yaml);
  return simulate(spec, await triggerTargets(spec), { ...DEFAULTS, loads: loads.map(parseLoad), ...extra });
}

const V2 = (metadata: string, spec = '') => `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  maxReplicaCount: 10
${spec}  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
${metadata}`;

test('simulate - the seed: 50 messages, 5 s work, target 5, max 10 → peak 10, drains, back to 0 after cooldown', { timeout: 60_000 }, async () => {
  const r = await sim(SEED_SCALEDOBJECT, ['0s:50']);
  assert.equal(r.summary.peakReplicas, 10);
  assert.equal(r.summary.processed, 50);
  assert.ok(r.summary.drainSeconds !== null && r.summary.drainSeconds < 120, `drained at ${r.summary.drainSeconds}`);
  const last = r.timeline.at(-1)!;
  assert.equal(last.desired, 0);
  assert.equal(last.replicas, 0);
  assert.match(last.reason, /KEDA: inactive for \d+s \(cooldownPeriod 300s\): 1 → 0/);
  assert.match(r.timeline[0]!.reason, /^work arrived: 50 messages; KEDA: queue 50 > activation 0: 0 → 1/);
  assert.ok(last.t - r.summary.drainSeconds! >= 300, 'back to 0 only once the cooldown is over');
});

test('simulate - load at or below the activation value keeps 0 replicas and the messages wait', { timeout: 60_000 }, async () => {
  const r = await sim(V2("      activationMessageCount: '10'\n"), ['0s:10', '2m:0']);
  assert.equal(r.summary.peakReplicas, 0);
  assert.equal(r.summary.decisions, 0);
  assert.equal(r.summary.drainSeconds, null);
  assert.ok(r.timeline.every((row) => row.desired === 0));
});

test('simulate - one message more than the activation value activates', { timeout: 60_000 }, async () => {
  const r = await sim(V2("      activationMessageCount: '10'\n"), ['0s:11']);
  assert.ok(r.summary.peakReplicas >= 1);
  assert.equal(r.summary.processed, 11);
});

test('simulate - without instant activation, scale-from-zero waits for the next poll', { timeout: 60_000 }, async () => {
  const instant = await sim(SEED_SCALEDOBJECT, ['5s:1']);
  const pure = await sim(SEED_SCALEDOBJECT, ['5s:1'], { instantActivation: false });
  assert.equal(instant.decisions[0]!.at, 5000);
  assert.equal(pure.decisions[0]!.at, 30_000);
  assert.ok(pure.summary.maxWaitSeconds > instant.summary.maxWaitSeconds);
});

test('simulate - a rate load over a span sends rate × span messages', { timeout: 60_000 }, async () => {
  const r = await sim(SEED_SCALEDOBJECT, ['10s-70s:5/s']);
  assert.equal(r.summary.messages, 300);
  assert.equal(r.summary.processed, 300);
  assert.equal(r.summary.peakReplicas, 10);
});

test('simulate - a behavior with scaleUp Pods 1/15s grows one replica per sync', { timeout: 60_000 }, async () => {
  const yaml = V2("      messageCount: '5'\n", `  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          policies:
          - type: Pods
            value: 1
            periodSeconds: 15
`);
  const r = await sim(yaml, ['0s:200']);
  const ups = r.decisions.filter((d) => d.kind === 'hpa' && d.to > d.from);
  assert.ok(ups.length > 3);
  for (const d of ups) assert.equal(d.to - d.from, 1, d.reason);
  assert.match(ups[0]!.reason, /limited to 2 by scaleUp policy Pods 1\/15s/);
});

test('simulate - more concurrency per replica drains the same load sooner', { timeout: 60_000 }, async () => {
  const one = await sim(SEED_SCALEDOBJECT, ['0s:50']);
  const five = await sim(SEED_SCALEDOBJECT, ['0s:50'], { concurrency: 5 });
  assert.ok(five.summary.drainSeconds! < one.summary.drainSeconds!);
});

const FLAGS: SimulateFlags = {
  load: ['0s:50'], work: '5s', concurrency: '1', startup: '1s', syncPeriod: '15s', stabilization: '5m', duration: '15m',
  instantActivation: true, json: false,
};

const BAD_FLAGS: Array<[string, Partial<SimulateFlags>, RegExp]> = [
  ['a load without a count', { load: ['0s'] }, /^--load '0s': expected <time>:<count>/],
  ['a load with a bad time', { load: ['soon:50'] }, /^--load 'soon:50': 'soon' is not a time/],
  ['a rate without a span', { load: ['0s:5/s'] }, /^--load '0s:5\/s': a rate needs a span/],
  ['a span that ends before it starts', { load: ['70s-10s:5/s'] }, /^--load '70s-10s:5\/s': the span ends \(70s\)|^--load '70s-10s:5\/s': the span ends/],
  ['no load at all', { load: [] }, /^--load '': give at least one/],
  ['work that is not a duration', { work: 'fast' }, /^--work 'fast': not a duration/],
  ['zero concurrency', { concurrency: '0' }, /^--concurrency '0': must be a whole number of at least 1/],
  ['a zero sync period', { syncPeriod: '0s' }, /^--sync-period '0s': must be more than 0/],
  ['a bad polling interval', { pollingInterval: '-5s' }, /^--polling-interval '-5s': not a duration/],
  ['a bad duration', { duration: '1 day' }, /^--duration '1 day': not a duration/],
];
for (const [name, flags, message] of BAD_FLAGS) {
  test(`simulate - refuses ${name}, naming the flag and the value`, { timeout: 60_000 }, () => {
    assert.throws(() => simulationOptions({ ...FLAGS, ...flags }), (err: unknown) => err instanceof FlagError && message.test(err.message));
  });
}

test('simulate - the command prints JSON with timeline and summary (real process)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-sim-'));
  const file = path.join(dir, 'consumer-scaling.yaml');
  writeFileSync(file, SEED_SCALEDOBJECT);
  const { stdout } = await run(process.execPath, [MAIN, 'simulate', file, '--load', '0s:50', '--json']);
  const out = JSON.parse(stdout) as { timeline: Array<Record<string, unknown>>; summary: Record<string, unknown> };
  assert.deepEqual(Object.keys(out.timeline[0]!).sort(), ['desired', 'inFlight', 'queue', 'reason', 'replicas', 't']);
  assert.deepEqual(Object.keys(out.summary).sort(), ['decisions', 'drainSeconds', 'maxWaitSeconds', 'messages', 'peakReplicas', 'processed', 'replicaSeconds']);
  assert.equal(out.summary.peakReplicas, 10);
});

test('simulate - the command exits 2 with one line naming a bad flag (real process)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-sim-'));
  const file = path.join(dir, 'consumer-scaling.yaml');
  writeFileSync(file, SEED_SCALEDOBJECT);
  await assert.rejects(run(process.execPath, [MAIN, 'simulate', file, '--load', '0s:50', '--work', 'slow']), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 2);
    assert.equal(err.stderr, "qscale: --work 'slow': not a duration (write e.g. 500ms, 5s, 2m, 1h30m)\n");
    return true;
  });
});

test('simulate - a config error in the file names file:line (real process)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-sim-'));
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, SEED_SCALEDOBJECT.replace('maxReplicaCount: 10', 'maxReplicaCount: ten'));
  await assert.rejects(run(process.execPath, [MAIN, 'simulate', file, '--load', '0s:50']), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr ?? '', /bad\.yaml:12: ScaledObject bindingconsumer-scaler: spec\.maxReplicaCount must be an integer, got 'ten'/);
    return true;
  });
});

test('simulate - a folder with several ScaledObjects needs --scaled-object, and a wrong name lists the ones there', { timeout: 60_000 }, async () => {
  const { pickScaledObject } = await import('../../src/cli/simulate/run.js');
  const two = parseScaledObjects(parseManifests(SEED_SCALEDOBJECT + '---\n' + V2('').replace('name: consumer\n', 'name: producer\n'), 'deploy')).scaledObjects;
  assert.throws(() => pickScaledObject(two, 'deploy', undefined), /--scaled-object '': deploy holds 2 ScaledObjects \(bindingconsumer-scaler, consumer-scaler\): name one/);
  assert.throws(() => pickScaledObject(two, 'deploy', 'nope'), /--scaled-object 'nope': no such ScaledObject in deploy \(there: bindingconsumer-scaler, consumer-scaler\)/);
  assert.equal(pickScaledObject(two, 'deploy', 'consumer-scaler').name, 'consumer-scaler');
});

test('simulate - a folder is read for its ScaledObjects only: the seed folder with its dapr.yaml run file', { timeout: 60_000, skip: existsSync('examples/seed/consumer-scaling.yaml') ? false : 'examples/seed not present' }, async () => {
  const { scaledObjectManifests } = await import('../../src/cli/simulate/run.js');
  const manifests = await scaledObjectManifests('examples/seed');
  const { scaledObjects } = parseScaledObjects(manifests);
  assert.deepEqual(scaledObjects.map((s) => s.target), ['consumer']);
});
