/**
 * The warm sidecar of `qscale up` (real processes, the embedded queue): a scaled app keeps one standby sidecar started
 * ahead for its next replica; a scale from zero adopts it and spawns only the app. Checked as a user sees it: which
 * process serves the replica, what is processed (once), what is logged, what is left running.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import type { RunningSystem } from '../../src/supervisor/system.js';
import { pidAlive } from '../../src/supervisor/proctree.js';
import type { Backend } from '../../src/backends/types.js';
import { LOGGING_CONSUMER, ROOT, queueBackend, startUp } from '../e2e/harness.js';
import { Lines, scaledConsumerFolder, startScaled, until } from './up-support.js';

const TEST_MS = 120_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));



/** A folder with one scaled consumer (the logging consumer) on the embedded queue: min 0, cooldown 1 s. */
function folder(): string {
  return scaledConsumerFolder('qscale-warm-', LOGGING_CONSUMER, ROOT);
}

function start(dir: string, logs: Lines, warmSidecar: boolean): Promise<RunningSystem> {
  return startScaled(dir, logs, { warmSidecar });
}

async function send(q: Backend, ids: string[]): Promise<void> {
  for (const id of ids) await q.send(Buffer.from(JSON.stringify({ id })), {});
}

const warmOf = (sys: RunningSystem): { name: string; pid: number | undefined } | undefined => sys.deployments.get('consumer')!.warmSidecar();

describe('warm sidecar', { timeout: 4 * TEST_MS }, () => {
  test('a scale from zero adopts the warm sidecar; the next one waits for the next replica; scale-in and out lose nothing', { timeout: TEST_MS }, async () => {
    const dir = folder();
    const logs = new Lines();
    const sys = await start(dir, logs, true);
    const q = await queueBackend(dir, path.join(dir, '.qscale'), true);
    try {
      const consumer = sys.deployments.get('consumer')!;
      const first = await until(() => warmOf(sys), 'a warm sidecar at 0 replicas');
      assert.equal(consumer.current, 0, 'the warm sidecar is not a replica');
      assert.deepEqual((await sys.status()).warmSidecars?.map((w) => w.pid), [first.pid], 'status lists the warm sidecar');
      // Up and idle: its API answers, it says it is a standby, and it has neither dialled the app nor read anything.
      await until(() => logs.of(`${first.name} daprd`).some((l) => /HTTP API listening/.test(l)), 'the warm sidecar API');
      await sleep(300);
      const idle = logs.of(`${first.name} daprd`);
      assert.ok(idle.some((l) => /standby/.test(l)), idle.join('\n'));
      assert.ok(!idle.some((l) => /reading|waiting for the app|ready/i.test(l)), `a standby claims to read before it is adopted:\n${idle.join('\n')}`);

      await send(q, ['a1']);
      await until(() => logs.processed('a1') === 1, 'a1 processed');
      const replica = consumer.list()[0]!;
      assert.equal(replica.name, first.name, 'the replica has the name chosen with its warm sidecar');
      assert.equal(replica.pids.sidecar, first.pid, "the replica's sidecar is the one started ahead");
      assert.ok(logs.of(`${first.name} daprd`).some((l) => /adopted by the supervisor/.test(l)));

      // After the replica is Ready, a new warm sidecar for the next replica.
      const second = await until(() => {
        const w = warmOf(sys);
        return w && w.pid !== first.pid ? w : undefined;
      }, 'a second warm sidecar');
      assert.ok(consumer.list().every((r) => r.ready), 'the next warm sidecar starts once the replicas are Ready');
      assert.notEqual(second.name, first.name);

      // Back to 0 (cooldown 1 s), then a burst: the second warm sidecar is adopted and every message is processed once.
      await until(() => consumer.current === 0 && consumer.list().length === 0, 'the consumer back at 0');
      const ids = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
      await send(q, ids);
      await until(() => ids.every((id) => logs.processed(id) >= 1), 'the burst processed');
      assert.ok(consumer.list().some((r) => r.name === second.name && r.pids.sidecar === second.pid), 'the second warm sidecar was adopted');
      await sleep(500);
      for (const id of ['a1', ...ids]) assert.equal(logs.processed(id), 1, `${id} processed once`);
      assert.deepEqual(await q.depth(), { ready: 0, inFlight: 0, deadLettered: 0 });
    } finally {
      await q.close();
      await sys.stop();
    }
    assert.equal(warmOf(sys), undefined, 'no warm sidecar after stop');
  });

  test('a warm sidecar killed with SIGKILL is replaced, and the failure is said once', { timeout: TEST_MS }, async () => {
    const saved = process.env.QSCALE_CRASH_BACKOFF_MS;
    process.env.QSCALE_CRASH_BACKOFF_MS = '200';
    const dir = folder();
    const logs = new Lines();
    let sys: RunningSystem | undefined;
    try {
      sys = await start(dir, logs, true);
      const s = sys;
      let pid = (await until(() => warmOf(s)?.pid, 'a warm sidecar'))!;
      const killed: number[] = [];
      for (let i = 0; i < 3; i++) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
        pid = (await until(() => {
          const p = warmOf(s)?.pid;
          return p !== undefined && !killed.includes(p) ? p : undefined;
        }, `a warm sidecar after kill ${i + 1}`))!;
      }
      const said = logs.of('qscale').filter((l) => /warm sidecar/.test(l));
      assert.equal(said.length, 1, said.join('\n'));
      assert.match(said[0]!, /consumer: warm sidecar exited \(SIGKILL\)/);
      for (const p of killed) assert.equal(pidAlive(p), false);
    } finally {
      if (saved === undefined) delete process.env.QSCALE_CRASH_BACKOFF_MS;
      else process.env.QSCALE_CRASH_BACKOFF_MS = saved;
      await sys?.stop();
    }
  });

  test('qscale up --no-warm-sidecar starts none: a scale from zero starts both processes', { timeout: TEST_MS }, async () => {
    const dir = folder();
    const up = await startUp(dir, ['--embedded', '--hpa-sync-period', '1s', '--no-warm-sidecar']);
    let seen = 0;
    try {
      await up.waitFor((st) => st.scaledObjects.length === 1, 60_000, 'the supervisor up');
      const q = await queueBackend(dir, up.dataDir, true);
      try {
        await send(q, ['c1']);
      } finally {
        await q.close();
      }
      const count = (st: { warmSidecars?: unknown[] }): void => void (seen += st.warmSidecars?.length ?? 0);
      await up.waitFor((st) => {
        count(st);
        return st.replicas.some((r) => r.appId === 'consumer' && r.ready);
      }, 60_000, 'the replica Ready');
      await up.waitFor((st) => {
        count(st);
        return st.replicas.length === 0;
      }, 60_000, 'the consumer back at 0');
      assert.equal(up.countLines(/processed c1 pid=/), 1, up.lines.slice(-20).join('\n'));
      assert.equal(seen, 0, 'no warm sidecar in status');
      assert.equal(up.countLines(/standby/), 0, 'no standby sidecar started');
    } finally {
      await up.stop();
    }
  });

  test('a supervisor killed with SIGKILL takes its standby sidecar along, which reads nothing', { timeout: TEST_MS }, async () => {
    const dir = folder();
    const up = await startUp(dir, ['--embedded', '--hpa-sync-period', '1s']);
    let standby: number | undefined;
    try {
      const s = await up.waitFor((st) => (st.warmSidecars ?? []).length === 1, 60_000, 'a warm sidecar in status');
      standby = s.warmSidecars![0]!.pid!;
      // Once its API answers, it is loaded; it is not healthy, as it serves no app yet.
      const health = await until(async () => {
        try {
          const res = await request(`http://127.0.0.1:${s.warmSidecars![0]!.sidecarPort}/v1.0/healthz`);
          await res.body.dump();
          return res.statusCode;
        } catch {
          return undefined;
        }
      }, 'the standby API');
      assert.notEqual(health, 204, 'a standby is not healthy');
      up.child.kill('SIGKILL');
      await up.exited;
      const q = await queueBackend(dir, up.dataDir, true);
      try {
        await send(q, ['d1']);
        await until(() => !pidAlive(standby!), 'the standby sidecar gone', 30_000);
        assert.deepEqual(await q.depth(), { ready: 1, inFlight: 0, deadLettered: 0 }, 'the message is still in the queue');
      } finally {
        await q.close();
      }
    } finally {
      if (standby !== undefined && pidAlive(standby)) process.kill(standby, 'SIGKILL');
      await up.stop('SIGKILL');
    }
  });
});
