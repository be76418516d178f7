import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { allGone, cleanup, embeddedComponent, fixture, only, pidAlive, pidsOf, post, processesOf, sleep, waitUntil } from './replica-support.js';
import type { Deployment } from '../../src/supervisor/deployment.js';
import { freePort, PortPool } from '../../src/supervisor/ports.js';

/** The fake app; its folder is an argument so the process tree can be read back (processesOf). */
const APP = (extra = '') => `  - appID: worker
    appDirPath: ./
    command: ["node", "app.mjs", "{{folder}}"]
${extra}`;

/** The processes of a fixture equal the ones the Deployment lists. */
function treeMatches(folder: string, d: Deployment): void {
  assert.deepEqual(processesOf(folder), d.list().flatMap(pidsOf).sort((a, b) => a - b), 'the process tree is what the Deployment lists');
}

describe('replica - one crash is one restart', { timeout: 180_000 }, () => {
  after(cleanup, { timeout: 60_000 });

  for (const victim of ['app', 'sidecar', 'both'] as const) {
    it(`replica - kill -9 of the ${victim === 'both' ? 'app and the sidecar at once' : victim}: exactly one restart, fresh ports, the old pair gone`, async () => {
      const f = fixture(APP());
      const d = f.deployment();
      await d.scaleTo(1);
      await d.whenReady();
      const before = only(d);
      assert.equal(before.restarts, 0);
      if (victim !== 'sidecar') process.kill(before.pids.app!, 'SIGKILL');
      if (victim !== 'app') process.kill(before.pids.sidecar!, 'SIGKILL');
      await waitUntil('the replica Ready again', () => {
        const r = d.list()[0];
        return r !== undefined && r.ready && r.pids.app !== before.pids.app;
      }, 30_000, f.logs);
      // Several back-off periods later nothing more happened: one crash, one restart.
      await sleep(1500);
      const now = only(d);
      assert.equal(now.restarts, 1, f.logs.all());
      assert.equal(now.status, 'Running');
      assert.equal(d.current, 1);
      assert.ok(await allGone(pidsOf(before)), `old pids ${pidsOf(before).join(', ')} gone`);
      assert.ok(pidsOf(now).every(pidAlive));
      assert.notEqual(now.appPort, before.appPort, 'the new app port is not the old one');
      assert.notEqual(now.sidecarPort, before.sidecarPort, 'the new sidecar port is not the old one');
      assert.doesNotMatch(f.logs.all(), /EADDRINUSE/);
      assert.equal(f.logs.systemMatching(/exited \(SIGKILL\)/).length, 1, f.logs.system_.join('\n'));
      assert.equal(now.lastExit?.signal, 'SIGKILL');
      treeMatches(f.folder, d);
      await d.stopAll();
      assert.ok(await allGone(pidsOf(now)));
      assert.equal(d.list().length, 0);
      assert.deepEqual(processesOf(f.folder), []);
    });
  }

  it('replica - the app\'s own children die with it (its process group is killed)', async () => {
    const pidDir = mkdtempSync(path.join(os.tmpdir(), 'qscale-children-'));
    const f = fixture(APP(`    env:\n      CHILD_PID_DIR: "${pidDir}"\n`));
    const d = f.deployment();
    await d.scaleTo(1);
    await d.whenReady();
    const childOf = async (app: number): Promise<number> => {
      await waitUntil('the app started its child', () => readdirSync(pidDir).includes(`child-of-${app}`));
      return Number(readFileSync(path.join(pidDir, `child-of-${app}`), 'utf8'));
    };
    const first = only(d);
    const child1 = await childOf(first.pids.app!);
    assert.ok(pidAlive(child1));
    process.kill(first.pids.app!, 'SIGKILL');
    assert.ok(await allGone([child1]), 'the crashed app\'s child is killed with its group');
    await waitUntil('the replica Ready again', () => d.list()[0]?.ready === true && d.list()[0]?.pids.app !== first.pids.app, 30_000, f.logs);
    const second = only(d);
    const child2 = await childOf(second.pids.app!);
    await d.stopAll();
    assert.ok(await allGone([child2, ...pidsOf(second)]), 'a stopped replica leaves no process of its group');
  });
});

describe('replica - start failures', { timeout: 120_000 }, () => {
  after(cleanup, { timeout: 60_000 });

  const cases = [
    { name: 'a command that does not exist', app: `  - appID: worker\n    appDirPath: ./\n    command: ["nodee", "app.mjs"]\n`, line: /dapr\.yaml:\d+: cannot start `nodee app\.mjs`: command nodee not found on PATH/ },
    { name: 'a working directory that does not exist', app: `  - appID: worker\n    appDirPath: ./nowhere\n    command: ["node", "app.mjs"]\n`, line: /dapr\.yaml:\d+: cannot start `node app\.mjs`: working directory .*nowhere \(appDirPath\) does not exist/ },
    { name: 'a file that is not executable', app: `  - appID: worker\n    appDirPath: ./\n    command: ["./app.mjs"]\n`, line: /dapr\.yaml:\d+: cannot start `\.\/app\.mjs`: command \.\/app\.mjs is not executable/ },
  ];
  for (const c of cases) {
    it(`replica - ${c.name}: CrashLoopBackOff, one line naming file:line and the command, the deployment keeps working`, async () => {
      const f = fixture(c.app);
      const d = f.deployment();
      await d.scaleTo(2);
      assert.equal(d.current, 2);
      await waitUntil('three failed starts per replica', () => d.list().every((r) => r.restarts >= 3), 30_000, f.logs);
      const lines = f.logs.systemMatching(/cannot start/);
      assert.equal(lines.length, 1, `said once for both replicas and every retry:\n${f.logs.system_.join('\n')}`);
      assert.match(lines[0]!, c.line);
      for (const r of d.list()) {
        assert.ok(['CrashLoopBackOff', 'Pending'].includes(r.status), r.status);
        assert.equal(r.ready, false);
        assert.ok(r.lastExit?.error, 'the start error is in status');
        assert.deepEqual(r.pids, { app: undefined, sidecar: undefined }, 'no process runs');
      }
      // Later scale decisions still apply.
      await d.scaleTo(1);
      assert.equal(d.current, 1);
      await d.stopAll();
      assert.equal(d.list().length, 0);
    });
  }

  it('replica - stop while waiting in CrashLoopBackOff is prompt (the back-off timer does not hold it)', async () => {
    const f = fixture(`  - appID: worker\n    appDirPath: ./\n    command: ["node", "-e", "process.exit(3)"]\n`);
    // A 60 s back-off: the test's own timeout would fire long before a stop that waited for it.
    const d = f.deployment(undefined, { crashBackoffMs: 60_000 });
    await d.scaleTo(1);
    await waitUntil('waiting in CrashLoopBackOff', () => only(d).status === 'CrashLoopBackOff' && only(d).nextStartAt !== undefined, 30_000, f.logs);
    const r = only(d);
    assert.equal(r.restarts, 2, 'the first crash restarts at once, the second waits');
    assert.equal(r.lastExit?.code, 3);
    assert.ok(Math.abs(r.nextStartAt! - (r.lastExit!.at + 60_000)) < 1000, 'the second restart is due one back-off base after the exit');
    assert.equal(f.logs.systemMatching(/exited \(code 3\)/).length, 1, `a pair that keeps failing the same way before Ready is said once:\n${f.logs.system_.join('\n')}`);
    await Promise.race([d.stopAll(), sleep(15_000).then(() => assert.fail('stopAll did not finish within 15 s'))]);
    assert.equal(d.list().length, 0);
  });

  it('replica - stop right after scaleTo (mid-start) leaves no process behind', async () => {
    const f = fixture(APP());
    const d = f.deployment();
    await d.scaleTo(3);
    const pids = d.list().flatMap(pidsOf);
    assert.equal(pids.length, 6, 'scaleTo resolves once every pair is spawned');
    treeMatches(f.folder, d);
    await d.stopAll();
    assert.ok(await allGone(pids));
    assert.equal(d.list().length, 0);
    // A replica stopped while its start waits for ports spawns nothing afterwards.
    const slow = new (class extends PortPool {
      override async take(): Promise<number> {
        await sleep(300);
        return super.take();
      }
    })();
    const f2 = fixture(APP());
    const d2 = f2.deployment(undefined, { ports: slow });
    void d2.scaleTo(1);
    await waitUntil('the replica is starting', () => d2.all().length === 1);
    await d2.all()[0]!.stop();
    await sleep(1000);
    assert.equal(d2.all()[0]!.status, 'Stopped');
    assert.deepEqual(processesOf(f2.folder), [], 'nothing was spawned after, or left by, the stop');
    await d2.stopAll();
    await d.scaleTo(2);
    assert.equal(d.current, 0, 'nothing starts once the deployment is stopped');
    await assert.rejects(d.whenReady(), /stopped before a replica was Ready/);
  });
});

describe('replica - fixed ports', { timeout: 120_000 }, () => {
  after(cleanup, { timeout: 60_000 });

  it('replica - a fixed app port in use: a line naming the port and the app, never a silent move; it starts there once free', async () => {
    const port = await freePort();
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    let closed = false;
    try {
      const f = fixture(`  - appID: producer\n    appDirPath: ./\n    appPort: ${port}\n    command: ["node", "app.mjs"]\n`);
      const d = f.deployment(undefined, { fixedPorts: true });
      await d.scaleTo(1);
      await waitUntil('two failed starts', () => only(d).restarts >= 2, 30_000, f.logs);
      const lines = f.logs.systemMatching(new RegExp(`port ${port}`));
      assert.equal(lines.length, 1, f.logs.system_.join('\n'));
      assert.match(lines[0]!, new RegExp(`dapr\\.yaml:\\d+: cannot start \`node app\\.mjs\`: port ${port} \\(appPort of producer\\) is in use by another process`));
      assert.equal(only(d).ready, false);
      assert.equal(only(d).pids.app, undefined, 'no app was started on another port');
      await new Promise<void>((r) => squatter.close(() => r()));
      closed = true;
      const ready = await d.whenReady();
      assert.equal(ready.appPort, port);
      // A crash of the fixed-port replica restarts it on the same port once the old app is gone.
      process.kill(ready.pids.app!, 'SIGKILL');
      await waitUntil('Ready again', () => only(d).ready && only(d).pids.app !== ready.pids.app, 30_000, f.logs);
      assert.equal(only(d).appPort, port);
      assert.equal(only(d).restarts, 3);
      await d.stopAll();
    } finally {
      if (!closed) squatter.close();
    }
  });
});

describe('replica - in-flight and scale-in with an API token', { timeout: 120_000 }, () => {
  after(cleanup, { timeout: 60_000 });

  it('replica - refreshInFlight reads the real in-flight count when DAPR_API_TOKEN is set; scale-in stops the idle replica', async () => {
    const token = 'tok-123';
    const f = fixture(
      `  - appID: worker\n    appDirPath: ./\n    command: ["node", "app.mjs"]\n    env:\n      DAPR_API_TOKEN: "${token}"\n      HOLD_MS: "60000"\n`,
      { 'q.yaml': embeddedComponent('jobs', { queueName: 'inflight', maxConcurrentHandlers: '1' }) },
    );
    const d = f.deployment(undefined, { graceMs: 1000 });
    await d.scaleTo(2);
    await waitUntil('two Ready replicas', () => d.readyCount === 2, 30_000, f.logs);
    const [a] = d.list();
    assert.equal(await post(a!.sidecarPort, '/v1.0/bindings/jobs', JSON.stringify({ operation: 'create', data: { n: 1 } }), { 'dapr-api-token': token }), 204);
    let busy: string | undefined;
    await waitUntil('one replica with the message in flight', async () => {
      await d.refreshInFlight();
      const withWork = d.list().filter((r) => r.inFlight === 1);
      busy = withWork[0]?.name;
      return withWork.length === 1;
    }, 30_000, f.logs);
    await d.scaleTo(1);
    const left = d.all().map((r) => r.name);
    assert.deepEqual(left, [busy], 'the busy replica is kept');
    await d.stopAll();
  });
});

describe('replica - the supervisor takes its replicas along', { timeout: 60_000 }, () => {
  it('replica - a supervisor that exits on an uncaught error leaves no app behind', async () => {
    const { spawn } = await import('node:child_process');
    const f = fixture(APP());
    const script = `
      import { Deployment } from ${JSON.stringify(new URL('../../src/supervisor/deployment.js', import.meta.url).href)};
      import { parseRunFile } from ${JSON.stringify(new URL('../../src/supervisor/runfile.js', import.meta.url).href)};
      import fs from 'node:fs';
      const file = ${JSON.stringify(f.runFile)};
      const app = parseRunFile(fs.readFileSync(file, 'utf8'), file).apps[0];
      const d = new Deployment({ app, embedded: true, dataDir: ${JSON.stringify(path.join(f.folder, '.qscale'))}, graceMs: 1000, logs: { attach() {}, system() {} }, fixedPorts: false });
      await d.scaleTo(1);
      const r = await d.whenReady();
      console.log(JSON.stringify(r.pids));
      setTimeout(() => { throw new Error('supervisor bug'); }, 10);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.notEqual(code, 0);
    const pids = JSON.parse(out.trim().split('\n').pop()!) as { app: number; sidecar: number };
    assert.ok(await allGone([pids.app, pids.sidecar]), `app ${pids.app} and sidecar ${pids.sidecar} are gone with their supervisor`);
  });
});
