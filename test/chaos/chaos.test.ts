/**
 * Chaos: `kill -9` of consumer apps and sidecars while thousands of messages with unique ids flow through
 * `qscale up`, on the embedded queue and on every broker of this machine. What a user relies on must hold through it:
 * no message lost, every duplicate explained by a kill, one restart per kill, no process that status does not show,
 * back to 0 consumer processes after the cooldown, and SIGTERM ends `qscale up` with nothing left behind.
 *
 * The consumer is test/chaos/consumer.ts: it logs `start <id> pid=<pid>` and `processed <id> pid=<pid>`, so every
 * delivery is tied to the process that got it. The test itself is the producer: it sends through the same backend
 * code a sidecar's output binding uses, keeping a backlog so every kill lands on a busy replica.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MAIN, ROOT, processTreeMatchesStatus, queueBackend, runProcesses, running, scaledObjectYaml, startUp, tempFolder, writeFiles,
  type UpProcess,
} from '../e2e/harness.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import type { Backend } from '../../src/backends/types.js';
import type { SystemStatus } from '../../src/supervisor/state.js';
import { targets, type ChaosTarget } from './brokers.js';

/** At least this many messages, each with its own id; more are sent while kills are still to come. */
const MESSAGES = 2000;
const KILLS = 8;
const WORK_MS = 30;
const MAX_REPLICAS = 4;
/** Messages per replica the trigger aims at: a backlog above MAX_REPLICAS × TARGET keeps every replica busy. */
const TARGET = 5;
/** Deliveries a replica's sidecar hands its app at once (maxConcurrentHandlers' default). */
const CONCURRENCY = 1;
/** The backlog the producer keeps while kills are still to come. */
const BACKLOG = 300;
/** CrashLoopBackOff's first delay, short for a test (the kubelet's 10 s would make this run take minutes). */
const CRASH_BACKOFF_MS = 300;
const CONSUMER = path.join(ROOT, 'dist/test/chaos/consumer.js');

function runFile(): string {
  return `version: 1
apps:
  - appID: consumer
    appDirPath: ${ROOT}
    command: ["node", ${JSON.stringify(CONSUMER)}]
    env:
      WORK_MS: "${WORK_MS}"
`;
}

/** `--crash-backoff` when this build of `qscale up` has it; QSCALE_CRASH_BACKOFF_MS is set in any case. */
let backoffFlag: string[] | undefined;
function crashBackoffFlag(): string[] {
  if (backoffFlag) return backoffFlag;
  const help = execFileSync(process.execPath, [MAIN, 'up', '--help'], { encoding: 'utf8' });
  backoffFlag = /--crash-backoff\b/.test(help) ? ['--crash-backoff', `${CRASH_BACKOFF_MS}ms`] : [];
  return backoffFlag;
}

interface Delivery {
  id: string;
  pid: number;
  /** Index of the line in qscale up's output. */
  line: number;
}

/** The consumer's lines in `qscale up`'s output, read as they come. */
class DeliveryLog {
  /** Every delivery (`start` line) in order. */
  readonly starts: Delivery[] = [];
  readonly processed = new Map<string, number>();
  private read = 0;
  constructor(private readonly up: UpProcess) {}
  update(): void {
    const lines = this.up.lines;
    for (; this.read < lines.length; this.read++) {
      const m = / \| (start|processed) (\S+) pid=(\d+)$/.exec(lines[this.read]!);
      if (!m) continue;
      if (m[1] === 'start') this.starts.push({ id: m[2]!, pid: Number(m[3]), line: this.read });
      else this.processed.set(m[2]!, (this.processed.get(m[2]!) ?? 0) + 1);
    }
  }
  distinctProcessed(): number {
    this.update();
    return this.processed.size;
  }
}

interface Kill {
  replica: string;
  mode: 'app' | 'sidecar' | 'app+sidecar';
  appPid: number;
  sidecarPid: number;
  restartsBefore: number;
  /** How many lines qscale up had printed when the kill was sent (for reading a failure's log). */
  line: number;
}

/** Reads status every 250 ms: the highest restart count seen per replica, also for replicas gone since. */
class StatusWatch {
  readonly restarts = new Map<string, number>();
  last: SystemStatus | undefined;
  private stopped = false;
  private readonly done: Promise<void>;
  constructor(up: UpProcess) {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          this.note(await up.status());
        } catch {
          // between two reads of a restarting supervisor: the next read counts
        }
        await sleep(250);
      }
    })();
  }
  note(s: SystemStatus): void {
    this.last = s;
    for (const r of s.replicas) if (r.appId === 'consumer') this.restarts.set(r.name, Math.max(this.restarts.get(r.name) ?? 0, r.restarts));
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function sendAll(producer: Backend, ids: string[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++]!;
      await producer.send(Buffer.from(JSON.stringify({ id })), {});
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** The promise's value, or 'still running' when it has not settled within ms (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function assertTree(up: UpProcess, when: string): Promise<void> {
  const r = await processTreeMatchesStatus(up);
  assert.ok(r.ok, `${when}: the processes of qscale up are not what status shows: ${r.detail}`);
}

interface Figures {
  messages: number;
  kills: number;
  lost: number;
  duplicates: number;
  /** Deliveries beyond each message's first. */
  redeliveries: number;
  /** Deliveries a killed replica's app had started (rule (a) below), summed over the kills. */
  startedAtKills: number;
  /** Repeated deliveries charged to messages a killed sidecar held that its app never logged (rule (b)). */
  heldBySidecarsAtKills: number;
  restarts: number;
}

/**
 * What a kill may cost, and the rule asserted. A replica's sidecar leases only what it can hand its app at once
 * (CONCURRENCY) and frees a slot when the app answers; the ack of the answered message may still be on its way to the
 * broker when the next delivery starts. So a killed replica (its app, its sidecar, or both: the pair ends together)
 * held at most:
 *   (a) the last CONCURRENCY + 1 deliveries its app had started (seen in the log: `start <id> pid=<its app>`), and
 *   (b) CONCURRENCY messages its sidecar had leased that its app never logged (handed over as the app died, before
 *       the app read the body; or about to be handed over).
 * Each of those may be delivered once more for that kill; nothing else may. Asserted:
 *   1. every id was processed (none lost);
 *   2. every id's deliveries ≤ 1 + the kills that held it. Kills holding it per (a) are read from the log; what is
 *      left over is charged to (b), at most CONCURRENCY messages per kill and only to kills sent before the id's last
 *      delivery. So with no kill there is no duplicate, and repeated deliveries ≤ what the kills held.
 */
function account(log: DeliveryLog, kills: Kill[], ids: string[]): { figures: Omit<Figures, 'restarts'>; lost: string[]; unexplained: string[] } {
  log.update();
  const byPid = new Map<number, Delivery[]>();
  const byId = new Map<string, Delivery[]>();
  for (const d of log.starts) {
    byPid.set(d.pid, [...(byPid.get(d.pid) ?? []), d]);
    byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
  }
  const heldByApp = new Map<string, number>();
  let startedAtKills = 0;
  for (const k of kills) {
    for (const d of (byPid.get(k.appPid) ?? []).slice(-(CONCURRENCY + 1))) {
      heldByApp.set(d.id, (heldByApp.get(d.id) ?? 0) + 1);
      startedAtKills++;
    }
  }
  const killLines = kills.map((k) => k.line).sort((a, b) => a - b);
  const leftOver = [...byId]
    .map(([id, ds]) => ({ id, ds, excess: ds.length - 1 - (heldByApp.get(id) ?? 0), last: ds[ds.length - 1]!.line }))
    .filter((x) => x.excess > 0)
    .sort((a, b) => a.last - b.last);
  // Kills sent before a delivery form a prefix of killLines, so counting the budget in order of last delivery is exact.
  let chargedToSidecars = 0;
  const unexplained: string[] = [];
  for (const x of leftOver) {
    const before = killLines.filter((l) => l < x.last).length;
    if (chargedToSidecars + x.excess <= CONCURRENCY * before) chargedToSidecars += x.excess;
    else unexplained.push(`${x.id} delivered to pids ${x.ds.map((d) => d.pid).join(', ')} (log lines ${x.ds.map((d) => d.line + 1).join(', ')})`);
  }
  let redeliveries = 0;
  for (const ds of byId.values()) redeliveries += ds.length - 1;
  let duplicates = 0;
  for (const n of log.processed.values()) duplicates += n - 1;
  const lost = ids.filter((id) => !log.processed.has(id));
  return {
    figures: {
      messages: ids.length, kills: kills.length, lost: lost.length, duplicates, redeliveries,
      startedAtKills, heldBySidecarsAtKills: chargedToSidecars,
    },
    lost,
    unexplained,
  };
}

async function chaos(t: TestContext, target: ChaosTarget): Promise<void> {
  if (target.broker && !(await needBroker(t, target.broker))) return;
  const queue = uniqueName('chaos');
  const folder = tempFolder('qscale-chaos-');
  writeFiles(folder, {
    'binding.yaml': target.component(queue),
    'scaling.yaml': scaledObjectYaml({
      maxReplicaCount: MAX_REPLICAS,
      cooldownPeriod: 2,
      scaleDown: { window: 0, policy: '{type: Percent, value: 100, periodSeconds: 1}' },
      triggers: target.trigger(queue, TARGET),
    }),
    'dapr.yaml': runFile(),
  });
  let up: UpProcess | undefined;
  let producer: Backend | undefined;
  let watch: StatusWatch | undefined;
  const ids: string[] = [];
  const kills: Kill[] = [];
  let figures: Figures | undefined;
  let passed = false;
  try {
    up = await startUp(
      folder,
      [...target.args, '--hpa-sync-period', '1s', '--downscale-stabilization', '0s', '--grace-period', '10s', ...crashBackoffFlag()],
      { env: { QSCALE_CRASH_BACKOFF_MS: String(CRASH_BACKOFF_MS) } },
    );
    const u = up;
    await u.waitFor((s) => s.hpa.length === 1 && running(s) === 0, 60_000, 'qscale up serving, the consumer at 0');
    producer = await queueBackend(folder, u.dataDir, target.args.includes('--embedded'));
    const log = new DeliveryLog(u);
    watch = new StatusWatch(u);
    const w = watch;

    const produce = async (n: number): Promise<void> => {
      const batch = Array.from({ length: n }, (_, i) => `${queue}-${ids.length + i}`);
      ids.push(...batch);
      await sendAll(producer!, batch);
    };
    await produce(BACKLOG);
    await u.waitFor((s) => s.replicas.filter((r) => r.appId === 'consumer' && r.ready).length === MAX_REPLICAS, 90_000, `${MAX_REPLICAS} consumer replicas ready`);
    await assertTree(u, 'at full scale, before any kill');

    // The producer keeps a backlog until the kills are over and MESSAGES were sent.
    let killsOver = false;
    const production = (async () => {
      while (!killsOver || ids.length < MESSAGES) {
        if (ids.length - log.distinctProcessed() < BACKLOG) await produce(100);
        else await sleep(50);
      }
    })();
    production.catch(() => undefined); // awaited below; a send that fails fails the test there

    const modes: Kill['mode'][] = ['app', 'sidecar', 'app+sidecar'];
    try {
      for (let k = 0; k < KILLS; k++) {
        await sleep(300 + Math.random() * 700);
        const s = await u.status();
        w.note(s);
        const candidates = s.replicas.filter((r) => r.appId === 'consumer' && r.ready && r.status === 'Running' && r.pids.app && r.pids.sidecar);
        assert.ok(candidates.length > 0, `kill ${k + 1}: no consumer replica is running (status: ${s.replicas.map((r) => `${r.name} ${r.status}`).join(', ')})`);
        const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
        const kill: Kill = {
          replica: victim.name,
          mode: modes[k % modes.length]!,
          appPid: victim.pids.app!,
          sidecarPid: victim.pids.sidecar!,
          restartsBefore: victim.restarts,
          line: u.lines.length,
        };
        kills.push(kill);
        if (kill.mode !== 'sidecar') process.kill(kill.appPid, 'SIGKILL');
        if (kill.mode !== 'app') process.kill(kill.sidecarPid, 'SIGKILL');
        // The same replica comes back once: restarted, ready, with new processes.
        await u.waitFor((st) => {
          w.note(st);
          const r = st.replicas.find((x) => x.name === kill.replica);
          return !!r && r.ready && r.restarts > kill.restartsBefore && r.pids.app !== kill.appPid && r.pids.sidecar !== kill.sidecarPid;
        }, 90_000, `replica ${kill.replica} back after kill ${k + 1} (${kill.mode})`);
        if (k === 2 || k === 5) await assertTree(u, `after kill ${k + 1}`);
      }
    } finally {
      killsOver = true;
      await production;
    }
    await assertTree(u, 'after the last kill');

    // Everything processed and the consumer back to 0 replicas after the cooldown (at 0 nothing more is processed:
    // what is missing then is reported below as lost).
    await u.waitFor((s) => {
      const zero = s.replicas.every((r) => r.appId !== 'consumer');
      return zero && (log.distinctProcessed() === ids.length || (s.hpa[0]?.desired ?? 1) === 0);
    }, 180_000, `all ${ids.length} messages processed and the consumer back to 0 replicas`);
    await assertTree(u, 'at 0 replicas');
    const warm = new Set(((await u.status()).warmSidecars ?? []).flatMap((x) => [x.pid, x.appPid]));
    assert.deepEqual(runProcesses(u).filter((p) => !warm.has(p.pid)).map((p) => p.cmdline), [], 'no process of the run but the warm standby (sidecar and app runtime) is left at 0 replicas');

    await w.stop();
    const { figures: f, lost, unexplained } = account(log, kills, ids);
    const restarts = [...w.restarts.values()].reduce((a, b) => a + b, 0);
    figures = { ...f, restarts };
    assert.deepEqual(lost.slice(0, 20), [], `${lost.length} of ${ids.length} messages never processed`);
    assert.deepEqual(unexplained.slice(0, 20), [], 'messages delivered again with no kill to explain it (see the rule above account())');
    const perReplica = new Map<string, number>();
    for (const k of kills) perReplica.set(k.replica, (perReplica.get(k.replica) ?? 0) + 1);
    assert.deepEqual(
      Object.fromEntries([...w.restarts].filter(([, n]) => n > 0).sort()),
      Object.fromEntries([...perReplica].sort()),
      'restarts per replica in status equal the kills of that replica (app and sidecar killed together count once)',
    );
    const dead = w.last?.queue?.deadLettered ?? 0;
    assert.equal(dead, 0, 'nothing dead-lettered');

    // SIGTERM ends qscale up, and nothing it started outlives it.
    u.child.kill('SIGTERM');
    const code = await within(u.exited, 60_000);
    assert.notEqual(code, 'still running', `qscale up did not exit after SIGTERM; last lines:\n${u.lines.slice(-15).join('\n')}`);
    let left = runProcesses(u);
    for (let i = 0; i < 25 && left.length > 0; i++) {
      await sleep(200);
      left = runProcesses(u);
    }
    assert.deepEqual(left.map((p) => `${p.pid} ${p.cmdline}`), [], 'no process of the run outlives qscale up');
    passed = true;
  } finally {
    await watch?.stop();
    const f = figures ?? { messages: ids.length, kills: kills.length };
    t.diagnostic(`chaos ${target.name}: ${JSON.stringify(f)}`);
    if (up && !passed) {
      // What qscale up printed and what was killed, for whoever reads the failure.
      const file = path.join(folder, 'chaos.log');
      writeFileSync(file, [...kills.map((k) => `kill ${JSON.stringify(k)}`), ...up.lines].join('\n') + '\n');
      t.diagnostic(`chaos ${target.name}: qscale up's output and the kills are in ${file}`);
    }
    if (up) {
      const stillUp = up.child.exitCode === null && up.child.signalCode === null;
      if (stillUp) await up.stop('SIGKILL');
      // Whatever the run left behind (a failed assertion above says so): end it, by pid.
      for (const p of runProcesses(up)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await producer?.close().catch(() => undefined);
    await target.cleanup(queue).catch((err: unknown) => t.diagnostic(`cleanup of ${queue} failed: ${String(err)}`));
    if (passed) rmSync(folder, { recursive: true, force: true });
  }
}

describe('chaos - kill -9 of consumer apps and sidecars during thousands of messages', { timeout: 480_000 }, () => {
  for (const target of targets) {
    test(`chaos - ${target.name}: no message lost, duplicates only from kills, one restart per kill, process tree as status shows, back to 0, clean exit`, { timeout: 240_000 }, (t) => chaos(t, target));
  }
});
