/**
 * The seed's story end to end, the way KEDA's own e2e tests read: publish N, replicas reach the max, all processed,
 * back to 0; publish fewer than the activation value, replicas stay 0. Real processes throughout: `qscale up`,
 * sidecars, the producer and consumer apps, the embedded queue. Periods are short so it runs in a test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { execFileSync } from 'node:child_process';
import { LOGGING_CONSUMER, MAIN, scaledObjectYaml, serviceBusTrigger, startUp, tempFolder, writeFiles, runFile, running, type UpProcess } from './harness.js';
import type { SystemStatus } from '../../src/supervisor/state.js';

const COMPONENT = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
  - name: connectionString
    secretKeyRef:
      name: servicebus-management
      key: servicebus-management-connectionstring
  - name: queueName
    value: "msgqueue"
  - name: lockDurationInSec
    value: "3"
  - name: visibilityTimeoutInSec
    value: "3"
---
apiVersion: v1
kind: Secret
metadata:
  name: servicebus-management
stringData:
  servicebus-management-connectionstring: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=placeholder"
`;

function scaledObject(opts: { activation?: number; max?: number; cooldown?: number } = {}): string {
  return scaledObjectYaml({
    maxReplicaCount: opts.max ?? 10,
    cooldownPeriod: opts.cooldown ?? 2,
    scaleDown: { window: 2, policy: '{type: Percent, value: 100, periodSeconds: 1}' },
    triggers: serviceBusTrigger(opts.activation),
  });
}

async function produce(up: UpProcess, count: number): Promise<void> {
  const s = await up.status();
  assert.ok(s.producerUrl, 'the producer URL is in the status');
  const res = await request(`${s.producerUrl}/MessageProducer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: '*/*' },
    body: JSON.stringify({ count, intervalMilliseconds: 0 }),
  });
  assert.equal(res.statusCode, 200, await res.body.text());
}

/** Sends distinct texts straight through the producer's sidecar, so the consumer's log lines can be told apart. */
async function sendTexts(up: UpProcess, texts: string[]): Promise<void> {
  const s = await up.status();
  const producer = s.replicas.find((r) => r.appId === 'producer');
  assert.ok(producer, 'the producer replica runs');
  for (const text of texts) {
    const res: Awaited<ReturnType<typeof request>> = await request(`http://127.0.0.1:${producer.sidecarPort}/v1.0/bindings/message-queue`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: { text }, operation: 'create' }),
    });
    assert.equal(res.statusCode, 204, await res.body.text());
  }
}

const ARGS = ['--embedded', '--hpa-sync-period', '1s', '--grace-period', '30s'];

test('up - the seed: 50 messages scale the consumer out to 10 replicas, all 50 processed, back to 0 after the cooldown', { timeout: 180_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': scaledObject(), 'dapr.yaml': runFile({ WORK_MS: '1500' }) });
  const up = await startUp(folder, ARGS);
  try {
    await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready), 60_000, 'the producer to be ready');
    await up.waitFor((s) => running(s) === 0, 30_000, 'the consumer at 0 replicas');
    await produce(up, 50);
    await up.waitFor((s) => running(s) === 10, 60_000, '10 consumer replicas');
    // What a user watches: `qscale status --json` and the kubectl-like table.
    const json = JSON.parse(execFileSync(process.execPath, [MAIN, 'status', '--json', '--data-dir', up.dataDir], { encoding: 'utf8' })) as SystemStatus;
    assert.equal(json.replicas.filter((r) => r.appId === 'consumer' && r.status !== 'Terminating').length, 10);
    assert.ok(json.replicas.every((r) => typeof r.name === 'string' && typeof r.ready === 'boolean' && typeof r.inFlight === 'number'));
    assert.ok(json.queue && typeof json.queue.ready === 'number' && typeof json.queue.inFlight === 'number' && typeof json.queue.deadLettered === 'number');
    assert.ok(json.decisions.length >= 2);
    const table = execFileSync(process.execPath, [MAIN, 'status', '--data-dir', up.dataDir], { encoding: 'utf8' });
    assert.match(table, /Deployment\/consumer\s+\S+\/5 \(avg\)\s+1\s+10\s+10/);
    await up.waitForLine(/Hello World -- Received at: .* -- Finished at: /, 30_000);
    await up.waitFor((s) => running(s) === 0 && up.countLines(/Hello World -- Received at/) >= 50, 120_000, 'all 50 processed and back to 0');
    assert.equal(up.countLines(/Hello World -- Received at/), 50, 'each message processed exactly once');
    const s = await up.status();
    assert.ok(s.decisions.some((d) => d.from === 0 && d.to >= 1), 'the activation decision is shown');
    assert.ok(s.decisions.every((d) => d.reason.length > 0), 'every decision carries its reason');
    assert.equal(s.queue?.ready, 0);
    assert.equal(s.queue?.deadLettered, 0);
  } finally {
    await up.stop();
  }
});

test('up - one message starts exactly one replica', { timeout: 120_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': scaledObject(), 'dapr.yaml': runFile({ WORK_MS: '500' }) });
  const up = await startUp(folder, ARGS);
  try {
    await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && running(s) === 0, 60_000, 'producer ready, consumer at 0');
    await produce(up, 1);
    let peak = 0;
    await up.waitFor((s) => {
      peak = Math.max(peak, running(s));
      return up.countLines(/Hello World -- Received at/) === 1 && running(s) === 0;
    }, 60_000, 'the message processed and back to 0');
    assert.equal(peak, 1);
  } finally {
    await up.stop();
  }
});

test('up - a load below the activation threshold keeps 0 replicas', { timeout: 120_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': scaledObject({ activation: 5 }), 'dapr.yaml': runFile({ WORK_MS: '100' }) });
  const up = await startUp(folder, ARGS);
  try {
    await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && running(s) === 0, 60_000, 'producer ready, consumer at 0');
    await produce(up, 3);
    // KEDA's e2e pattern: watch several polling intervals and sync periods; the consumer must stay at zero.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const s = await up.status();
      assert.equal(running(s), 0, `replicas stay 0 with 3 messages under activation 5 (check ${i + 1})`);
      assert.equal(s.queue?.ready, 3);
    }
    // One more message passes the threshold (6 > 5): it activates.
    await produce(up, 3);
    await up.waitFor((s) => running(s) >= 1, 30_000, 'activation above the threshold');
  } finally {
    await up.stop();
  }
});

/**
 * Scale-in under load, proven rather than hoped for: 60 messages of 1 s each on up to 6 replicas. As the queue goes
 * below 6 × 5 the HPA asks for fewer replicas while messages are still queued, so replicas are stopped with work
 * left; each drains the message it holds. Status is read every 100 ms to see it happen. The consumer logs every
 * delivery (`start <text>`), not only completions, so a message handed out twice is seen even if its first try
 * never finished.
 */
test('up - scale-in under load: replicas stopped while work remains, every message processed exactly once', { timeout: 240_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': scaledObject({ max: 6 }), 'dapr.yaml': runFile({ WORK_MS: '1000' }, {}, LOGGING_CONSUMER) });
  const up = await startUp(folder, ARGS);
  const snapshots: Array<{ readAt: number; s: SystemStatus }> = [];
  let watching = true;
  let watcher: Promise<void> = Promise.resolve();
  try {
    await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && running(s) === 0, 60_000, 'producer ready, consumer at 0');
    const texts = Array.from({ length: 60 }, (_, i) => `scale-in-${i}`);
    watcher = (async () => {
      while (watching) {
        // readAt is taken before the request: every value in the answer was read after it.
        const readAt = Date.now();
        try {
          snapshots.push({ readAt, s: await up.status() });
        } catch {
          // the next reading counts
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await sendTexts(up, texts);
    const sentAt = Date.now();
    await up.waitFor((s) => running(s) === 6, 60_000, 'scale-out to 6');
    await up.waitFor((s) => running(s) === 0 && s.replicas.every((r) => r.appId !== 'consumer') && s.queue?.ready === 0 && s.queue.inFlight === 0, 180_000, 'everything drained and back to 0');
    watching = false;
    await watcher;

    const work = (s: SystemStatus): number => (s.queue?.ready ?? 0) + (s.queue?.inFlight ?? 0);
    const s = await up.status();
    // A scale-in decision taken after the last message was sent, read back as work remaining after it. Nothing is
    // sent after sentAt, so the work only shrinks: remaining after the decision means remaining at it.
    const scaleIns = s.decisions.filter((d) => d.kind === 'hpa' && d.to < d.from && d.to > 0 && d.at > sentAt);
    const withWork = scaleIns.filter((d) => {
      const next = snapshots.find((x) => x.readAt >= d.at);
      return next !== undefined && work(next.s) > 0;
    });
    const shown = s.decisions.map((d) => `${d.kind} ${d.from}→${d.to}`).join(', ');
    assert.ok(withWork.length > 0, `a scale-in decision while messages remained (decisions: ${shown})`);
    // A replica went Terminating while messages were still queued or in flight.
    const stoppedWithWork = snapshots.filter((x) => work(x.s) > 0 && x.s.replicas.some((r) => r.appId === 'consumer' && r.status === 'Terminating'));
    assert.ok(stoppedWithWork.length > 0, `a consumer replica was Terminating while work remained (decisions: ${shown})`);
    // Scale-in drains: nothing lost, nothing done twice.
    for (const t of texts) {
      const delivered = up.countLines(new RegExp(`\\| start ${t} pid=`));
      const processed = up.countLines(new RegExp(`\\| processed ${t} pid=`));
      assert.deepEqual({ delivered, processed }, { delivered: 1, processed: 1 }, `${t} delivered and processed exactly once`);
    }
    assert.equal(s.queue?.deadLettered, 0);
  } finally {
    watching = false;
    await watcher;
    await up.stop();
  }
});

test('up - a replica killed with SIGKILL mid-work loses nothing', { timeout: 180_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'scaling.yaml': scaledObject({ max: 1, cooldown: 2 }), 'dapr.yaml': runFile({ WORK_MS: '1500' }) });
  const up = await startUp(folder, ARGS);
  try {
    await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready), 60_000, 'the producer to be ready');
    const texts = Array.from({ length: 4 }, (_, i) => `kill-${i}`);
    await sendTexts(up, texts);
    const s = await up.waitFor((st) => st.replicas.some((r) => r.appId === 'consumer' && r.ready && r.inFlight > 0), 60_000, 'a consumer replica with work in flight');
    const victim = s.replicas.find((r) => r.appId === 'consumer' && r.ready)!;
    assert.ok(victim.pids?.app && victim.pids.sidecar, 'status shows the replica processes');
    process.kill(victim.pids.app, 'SIGKILL');
    process.kill(victim.pids.sidecar, 'SIGKILL');
    await up.waitFor((st) => running(st) === 0 && (st.queue?.ready ?? 1) === 0 && (st.queue?.inFlight ?? 1) === 0, 150_000, 'all work done after the kill');
    for (const t of texts) {
      assert.ok(up.countLines(new RegExp(`\\| ${t} -- Received at`)) >= 1, `${t} was processed (at least once: its first try was killed)`);
    }
    const after = await up.status();
    assert.equal(after.queue?.deadLettered, 0);
  } finally {
    await up.stop();
  }
});

test('up - replicas do not outlive a supervisor killed with SIGKILL', { timeout: 120_000 }, async () => {
  const folder = tempFolder();
  writeFiles(folder, { 'binding.yaml': COMPONENT, 'dapr.yaml': runFile({ WORK_MS: '100' }) });
  const up = await startUp(folder, ARGS);
  const s = await up.waitFor((st) => st.replicas.length === 2 && st.replicas.every((r) => r.ready), 60_000, 'both apps ready');
  const pids = s.replicas.flatMap((r) => [r.pids.app, r.pids.sidecar]).filter((p): p is number => typeof p === 'number');
  assert.equal(pids.length, 4);
  up.child.kill('SIGKILL');
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const end = Date.now() + 60_000;
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(pids.filter(alive), [], 'every app and sidecar process exited');
});
