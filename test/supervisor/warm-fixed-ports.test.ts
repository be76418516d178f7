/**
 * The warm sidecar of an app whose run file fixes appPort and daprHTTPPort (the seed's consumer): while no replica
 * owns those ports, the standby sidecar waits on them and the replica adopting it is their owner, so the scale from
 * zero spawns only the app there too. Real processes (the logging consumer, `qscale sidecar`), the embedded queue,
 * the Deployment driven the way the scale loop drives it. What is checked is what a user sees: which process serves
 * the replica, on which port, what is processed (once), what is said, what is left running.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { Deployment } from '../../src/supervisor/deployment.js';
import { freePort } from '../../src/supervisor/ports.js';
import type { Backend } from '../../src/backends/types.js';
import { LOGGING_CONSUMER, queueBackend } from '../e2e/harness.js';
import { embeddedComponent } from './up-support.js';
import { allGone, cleanup, fixture, pidAlive, processesOf, sleep, waitUntil, type Fixture } from './replica-support.js';

const TEST_MS = 120_000;

interface Setup {
  fx: Fixture;
  d: Deployment;
  q: Backend;
  appPort: number;
  httpPort: number;
}

async function setup(workMs = 0): Promise<Setup> {
  const [appPort, httpPort] = [await freePort(), await freePort()];
  const fx = fixture(`  - appID: consumer
    appDirPath: {{folder}}
    appPort: ${appPort}
    daprHTTPPort: ${httpPort}
    command: ${JSON.stringify([...LOGGING_CONSUMER, '{{folder}}'])}
    env:
      WORK_MS: "${workMs}"
`, { 'queue.yaml': embeddedComponent('jobs') });
  const d = fx.deployment('consumer', { fixedPorts: true, warmSidecar: true, graceMs: 10_000 });
  const q = await queueBackend(path.join(fx.folder, 'components'), path.join(fx.folder, '.qscale'), true);
  return { fx, d, q, appPort, httpPort };
}

async function send(q: Backend, ids: string[]): Promise<void> {
  for (const id of ids) await q.send(Buffer.from(JSON.stringify({ id })), {});
}

/** How many times the consumer said `processed <id>`. */
function processed(fx: Fixture, id: string): number {
  return fx.logs.output.filter((l) => new RegExp(`\\| processed ${id} pid=`).test(l)).length;
}

/** The live process's APP_PORT (an app) or --dapr-http-port (a sidecar), read from /proc. */
function portOf(pid: number, what: 'APP_PORT' | '--dapr-http-port' | '--app-port'): number | undefined {
  try {
    if (what === 'APP_PORT') {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('APP_PORT='));
      return env ? Number(env.slice('APP_PORT='.length)) : undefined;
    }
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = args.indexOf(what);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  } catch {
    return undefined;
  }
}

const standby = (d: Deployment): { name: string; pid: number; sidecarPort: number } | undefined => {
  const w = d.warmSidecar();
  return w?.pid !== undefined ? { name: w.name, pid: w.pid, sidecarPort: w.sidecarPort } : undefined;
};

async function standbyOn(s: Setup, fixed: boolean, not: number[] = []): Promise<{ name: string; pid: number; sidecarPort: number }> {
  let found: { name: string; pid: number; sidecarPort: number } | undefined;
  await waitUntil(`a standby sidecar on ${fixed ? 'the fixed' : 'fresh'} ports`, () => {
    const w = standby(s.d);
    found = w && !not.includes(w.pid) && (w.sidecarPort === s.httpPort) === fixed ? w : undefined;
    return found !== undefined;
  }, 30_000, s.fx.logs);
  return found!;
}

/**
 * Samples, every 20 ms, the processes the deployment lists (replicas and standby) and which of them claim a fixed
 * port: an app started with APP_PORT=appPort, a sidecar started with --dapr-http-port httpPort. More than one live
 * process claiming one port at any sample is a clash.
 */
function watchClaims(s: Setup): { stop: () => string[] } {
  const clashes: string[] = [];
  const timer = setInterval(() => {
    const apps = new Set<number>();
    const sidecars = new Set<number>();
    const pids = s.d.list().flatMap((r) => [r.pids.app, r.pids.sidecar]);
    pids.push(s.d.warmSidecar()?.pid);
    for (const pid of pids) {
      if (pid === undefined || !pidAlive(pid)) continue;
      if (portOf(pid, 'APP_PORT') === s.appPort) apps.add(pid);
      if (portOf(pid, '--dapr-http-port') === s.httpPort) sidecars.add(pid);
    }
    if (apps.size > 1) clashes.push(`apps ${[...apps].join(', ')} on ${s.appPort}`);
    if (sidecars.size > 1) clashes.push(`sidecars ${[...sidecars].join(', ')} on ${s.httpPort}`);
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      return clashes;
    },
  };
}

/** The replica that adopted `w`: its sidecar is the standby's process, and it is on the fixed ports with its app. */
function assertAdoptedOnFixedPorts(s: Setup, w: { name: string; pid: number }): void {
  const r = s.d.list().find((x) => x.name === w.name);
  assert.ok(r, `a replica named after the standby ${w.name}: ${JSON.stringify(s.d.list().map((x) => x.name))}`);
  assert.equal(r.pids.sidecar, w.pid, "the replica's sidecar is the standby started ahead");
  assert.equal(r.appPort, s.appPort);
  assert.equal(r.sidecarPort, s.httpPort);
  assert.equal(portOf(r.pids.app!, 'APP_PORT'), s.appPort, 'the app was started with the fixed APP_PORT');
  assert.equal(portOf(w.pid, '--app-port'), s.appPort, 'the sidecar dials the fixed app port');
}

const ready = (d: Deployment, n: number) => (): boolean => d.current === n && d.list().length === n && d.readyCount === n;

describe('warm sidecar on the run file fixed ports', { timeout: 4 * TEST_MS }, () => {
  after(cleanup, { timeout: 60_000 });

  test('a scale from zero adopts the standby on the fixed ports; the fixed ports change hands on scale-in and out with nothing lost or done twice', { timeout: TEST_MS }, async () => {
    const s = await setup(150);
    const claims = watchClaims(s);
    try {
      await s.d.scaleTo(0);
      const first = await standbyOn(s, true);
      assert.equal(s.d.current, 0, 'the standby is not a replica');
      await send(s.q, ['a1']);
      await s.d.scaleTo(1);
      await waitUntil('a1 processed', () => processed(s.fx, 'a1') === 1, 30_000, s.fx.logs);
      assertAdoptedOnFixedPorts(s, first);
      const owner = first.name;

      // The next standby is on fresh ports (the owner holds the fixed ones); the second replica adopts it there.
      const fresh = await standbyOn(s, false);
      await s.d.scaleTo(2);
      await waitUntil('two replicas Ready', ready(s.d, 2), 30_000, s.fx.logs);
      const second = s.d.list().find((r) => r.name === fresh.name);
      assert.ok(second && second.pids.sidecar === fresh.pid && second.appPort !== s.appPort, 'the second replica adopted the fresh standby');
      const burst = Array.from({ length: 8 }, (_, i) => `b${i}`);
      await send(s.q, burst);
      // Scale-in keeps the owner of the fixed ports while another Ready replica can go.
      await s.d.scaleTo(1);
      assert.deepEqual(s.d.all().map((r) => r.name), [owner]);
      await waitUntil('the burst processed', () => burst.every((id) => processed(s.fx, id) >= 1), 30_000, s.fx.logs);

      // At 0 the fixed ports are free again: the standby is swapped for one on them, and the next scale from zero is
      // served by it.
      await s.d.scaleTo(0);
      await waitUntil('no replica', () => s.d.list().length === 0, 30_000, s.fx.logs);
      const back = await standbyOn(s, true, [first.pid]);
      await send(s.q, ['c1']);
      await s.d.scaleTo(1);
      await waitUntil('c1 processed', () => processed(s.fx, 'c1') === 1, 30_000, s.fx.logs);
      assertAdoptedOnFixedPorts(s, back);

      // Scale-in and out at once: the owner is still draining when a new replica starts, so the new one is on fresh
      // ports; once the old owner is gone the standby moves to the fixed ports and the next replica owns them.
      await standbyOn(s, false);
      await send(s.q, ['d1', 'd2']);
      await waitUntil('d1 delivered', () => s.fx.logs.output.some((l) => /\| start d1 pid=/.test(l)), 30_000, s.fx.logs);
      await s.d.scaleTo(0);
      await s.d.scaleTo(1);
      const interim = s.d.all()[0]!;
      assert.notEqual(interim.appPort, s.appPort, 'the fixed ports are still their draining owner’s');
      await waitUntil('the old owner gone', () => s.d.list().length === 1, 30_000, s.fx.logs);
      const moved = await standbyOn(s, true, [back.pid]);
      await send(s.q, ['e1']);
      await s.d.scaleTo(2);
      await waitUntil('two replicas Ready', ready(s.d, 2), 30_000, s.fx.logs);
      assertAdoptedOnFixedPorts(s, moved);
      await waitUntil('e1 processed', () => processed(s.fx, 'e1') === 1, 30_000, s.fx.logs);
      // The owner is the newer of the two now: scale-in still keeps it, so the fixed address stays served.
      await s.d.scaleTo(1);
      assert.deepEqual(s.d.all().map((r) => r.name), [moved.name]);

      await waitUntil('the queue empty', async () => (await s.q.depth()).ready === 0 && (await s.q.depth()).inFlight === 0, 30_000, s.fx.logs);
      await sleep(300);
      for (const id of ['a1', ...burst, 'c1', 'd1', 'd2', 'e1']) assert.equal(processed(s.fx, id), 1, `${id} processed once`);
      assert.deepEqual(s.fx.logs.systemMatching(/in use|held by|exited|could not/), [], 'no port clash and no crash said');
      assert.ok(s.d.list().every((r) => r.restarts === 0));
    } finally {
      const clashes = claims.stop();
      await s.q.close();
      await s.d.stopAll();
      assert.deepEqual(clashes, [], 'never two processes on one fixed port');
    }
    assert.equal(s.d.warmSidecar(), undefined);
    assert.ok(await allGone(processesOf(s.fx.folder)), 'nothing left running');
  });

  test('a fixed owner killed with SIGKILL comes back on the fixed ports; a standby on them killed is replaced there, and adopted', { timeout: TEST_MS }, async () => {
    const s = await setup();
    const claims = watchClaims(s);
    try {
      await s.d.scaleTo(0);
      const first = await standbyOn(s, true);
      await s.d.scaleTo(1);
      await waitUntil('the replica Ready', ready(s.d, 1), 30_000, s.fx.logs);
      assertAdoptedOnFixedPorts(s, first);
      await standbyOn(s, false);
      const killed = s.d.list()[0]!;
      for (const pid of [killed.pids.app!, killed.pids.sidecar!]) process.kill(pid, 'SIGKILL');
      await waitUntil('the owner restarted', () => {
        const r = s.d.list()[0];
        return r !== undefined && r.ready && r.restarts === 1;
      }, 30_000, s.fx.logs);
      const again = s.d.list()[0]!;
      assert.equal(again.name, killed.name);
      assert.equal(portOf(again.pids.app!, 'APP_PORT'), s.appPort, 'the restarted app is on the fixed port again');
      assert.equal(portOf(again.pids.sidecar!, '--dapr-http-port'), s.httpPort);
      await send(s.q, ['k1']);
      await waitUntil('k1 processed', () => processed(s.fx, 'k1') === 1, 30_000, s.fx.logs);

      await s.d.scaleTo(0);
      await waitUntil('no replica', () => s.d.list().length === 0, 30_000, s.fx.logs);
      const onFixed = await standbyOn(s, true, [first.pid]);
      process.kill(onFixed.pid, 'SIGKILL');
      const replaced = await standbyOn(s, true, [first.pid, onFixed.pid]);
      await send(s.q, ['k2']);
      await s.d.scaleTo(1);
      await waitUntil('k2 processed', () => processed(s.fx, 'k2') === 1, 30_000, s.fx.logs);
      assertAdoptedOnFixedPorts(s, replaced);
      assert.equal(processed(s.fx, 'k1'), 1);
    } finally {
      const clashes = claims.stop();
      await s.q.close();
      await s.d.stopAll();
      assert.deepEqual(clashes, [], 'never two processes on one fixed port');
    }
    assert.ok(await allGone(processesOf(s.fx.folder)), 'nothing left running');
  });

  for (const when of ['before the standby starts', 'after the standby started on it'] as const) {
    test(`a program other than qscale on the fixed app port (${when}): the replica says so as before, and nothing is left running`, { timeout: TEST_MS }, async () => {
      const s = await setup();
      let foreign: net.Server | undefined;
      const occupy = async (): Promise<void> => {
        foreign = net.createServer();
        await new Promise<void>((resolve, reject) => {
          foreign!.once('error', reject);
          foreign!.listen(s.appPort, '127.0.0.1', () => resolve());
        });
      };
      let w: { pid: number } | undefined;
      try {
        if (when === 'before the standby starts') {
          await occupy();
          await s.d.scaleTo(0);
          w = await standbyOn(s, false);
        } else {
          await s.d.scaleTo(0);
          w = await standbyOn(s, true);
          await occupy();
        }
        await send(s.q, ['f1']);
        await s.d.scaleTo(1);
        await waitUntil('the port error said', () => s.fx.logs.systemMatching(/in use by another process/).length > 0, 30_000, s.fx.logs);
        const said = s.fx.logs.systemMatching(/in use by another process/);
        assert.equal(said.length, 1, said.join('\n'));
        assert.match(said[0]!, new RegExp(`^consumer-\\S+: \\S*dapr\\.yaml:\\d+: cannot start \`.*\`: port ${s.appPort} \\(appPort of consumer\\) is in use by another process; stop what listens there or change appPort in the run file \\(`));
        assert.deepEqual(s.fx.logs.systemMatching(/exited/), [], 'the port is named before any app is started on it');
        assert.equal(s.d.readyCount, 0, 'no replica runs on a port another program holds');
        assert.ok(s.d.list()[0]!.restarts >= 1);
        if (when === 'after the standby started on it') {
          assert.ok(await allGone([w.pid]), 'the standby that could not be adopted is gone');
          // Once the program is gone, the replica's next try takes the fixed ports and the message is processed.
          await new Promise((r) => foreign!.close(r));
          foreign = undefined;
          await waitUntil('f1 processed', () => processed(s.fx, 'f1') === 1, 30_000, s.fx.logs);
          assert.equal(s.d.list()[0]!.appPort, s.appPort);
        }
      } finally {
        if (foreign) await new Promise((r) => foreign!.close(r));
        await s.q.close();
        await s.d.stopAll();
      }
      assert.equal(s.d.warmSidecar(), undefined);
      assert.ok(await allGone(processesOf(s.fx.folder)), 'nothing left running');
    });
  }
});
