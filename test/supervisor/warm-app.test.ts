/**
 * The warm app runtime of `qscale up` (real processes, the embedded queue): when a scaled app's command is
 * `node <script> …`, its standby holds a node process with the replica's environment and none of the app's code
 * loaded; a scale from zero makes that process run the script. Checked as the app sees it (argv, require.main,
 * import.meta.url, cwd, ports, when its code first runs) and as a user sees it (which process serves the replica, what
 * is processed, what a crash says, what is left running).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import type { RunningSystem } from '../../src/supervisor/system.js';
import { pidAlive } from '../../src/supervisor/proctree.js';
import { nodeScript } from '../../src/supervisor/warm.js';
import type { Backend } from '../../src/backends/types.js';
import { MAIN, ROOT, queueBackend, startUp } from '../e2e/harness.js';
import { Lines, scaledConsumerFolder, startScaled, until } from './up-support.js';

const TEST_MS = 120_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CONSUMER_URL = pathToFileURL(path.join(ROOT, 'dist/test/chaos/consumer.js')).href;



/** What the app's script saw when it ran, one JSON line per start, appended to started.jsonl in the app folder. */
interface Seen {
  pid: number;
  argv: string[];
  execArgv: string[];
  cwd: string;
  appPort: string | undefined;
  daprHttpPort: string | undefined;
  main: boolean;
}

const ESM_APP = `import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
appendFileSync('started.jsonl', JSON.stringify({ pid: process.pid, argv: process.argv, execArgv: process.execArgv, cwd: process.cwd(),
  appPort: process.env.APP_PORT, daprHttpPort: process.env.DAPR_HTTP_PORT, main: import.meta.url === pathToFileURL(process.argv[1]).href }) + '\\n');
await import(${JSON.stringify(CONSUMER_URL)});
`;
const CJS_APP = `const { appendFileSync } = require('node:fs');
appendFileSync('started.jsonl', JSON.stringify({ pid: process.pid, argv: process.argv, execArgv: process.execArgv, cwd: process.cwd(),
  appPort: process.env.APP_PORT, daprHttpPort: process.env.DAPR_HTTP_PORT, main: require.main === module }) + '\\n');
import(${JSON.stringify(CONSUMER_URL)});
`;
const THROWING_APP = `throw new Error('settings.json is missing: cannot start');\n`;

/** A folder with one scaled app on the embedded queue, run by `command` from the folder. */
function folder(files: Record<string, string>, command: string[]): string {
  return scaledConsumerFolder('qscale-warm-app-', command, '.', files);
}

function start(dir: string, logs: Lines, warmApp = true): Promise<RunningSystem> {
  return startScaled(dir, logs, { warmSidecar: true, warmApp });
}

function seen(dir: string): Seen[] {
  const file = path.join(dir, 'started.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Seen);
}

async function send(q: Backend, ids: string[]): Promise<void> {
  for (const id of ids) await q.send(Buffer.from(JSON.stringify({ id })), {});
}

type Warm = { name: string; pid: number | undefined; appPid?: number };
const warmOf = (sys: RunningSystem): Warm | undefined => sys.deployments.get('consumer')!.warmSidecar();

describe('warm app runtime', { timeout: 8 * TEST_MS }, () => {
  for (const [kind, file, script] of [['an ES module', 'app.mjs', ESM_APP], ['a CommonJS script', 'app.cjs', CJS_APP]] as const) {
    test(`${kind}: no app code runs at 0 replicas; a scale from zero runs the script in the waiting runtime, as node would`, { timeout: TEST_MS }, async () => {
      const dir = folder({ [file]: script }, ['node', file, '--mode', 'fast']);
      const logs = new Lines();
      const sys = await start(dir, logs);
      const q = await queueBackend(dir, path.join(dir, '.qscale'), true);
      const pids: number[] = [];
      try {
        const consumer = sys.deployments.get('consumer')!;
        const first = await until(() => {
          const w = warmOf(sys);
          return w?.appPid !== undefined ? w : undefined;
        }, 'a warm app runtime at 0 replicas');
        pids.push(first.appPid!);
        assert.equal((await sys.status()).warmSidecars?.[0]?.appPid, first.appPid, 'status lists the warm app runtime');
        await until(() => logs.of(`${first.name} daprd`).some((l) => /HTTP API listening/.test(l)), 'the standby sidecar up');
        await sleep(300);
        assert.ok(pidAlive(first.appPid!));
        assert.deepEqual(seen(dir), [], "the app's code has not run at 0 replicas");

        await send(q, ['w1']);
        await until(() => logs.processed('w1') === 1, 'w1 processed');
        const replica = consumer.list()[0]!;
        assert.equal(replica.pids.app, first.appPid, "the replica's app is the runtime that waited");
        assert.equal(replica.name, first.name);
        const [s, ...more] = seen(dir);
        assert.deepEqual(more, [], 'the script ran once');
        assert.equal(s!.pid, first.appPid);
        assert.deepEqual(s!.argv, [process.execPath, path.join(dir, file), '--mode', 'fast'], 'argv as `node <script> --mode fast` gives it');
        assert.deepEqual(s!.execArgv, []);
        assert.equal(s!.main, true, 'the script is the main module');
        assert.equal(s!.cwd, dir);
        assert.equal(s!.appPort, String(replica.appPort));
        assert.equal(s!.daprHttpPort, String(replica.sidecarPort));
        assert.ok(logs.of(first.name).some((l) => /^processed w1 pid=/.test(l)), "the app's lines are logged under the replica's name");

        // The next standby, for the next replica, has a runtime of its own.
        const second = await until(() => {
          const w = warmOf(sys);
          return w?.appPid !== undefined && w.appPid !== first.appPid ? w : undefined;
        }, 'the next warm app runtime');
        pids.push(second.appPid!);
        assert.equal(seen(dir).length, 1, 'the next runtime has run nothing');
      } finally {
        await q.close();
        await sys.stop();
      }
      assert.equal(warmOf(sys), undefined);
      await until(() => pids.every((p) => !pidAlive(p)), 'every app runtime gone after stop', 10_000);
    });
  }

  test('a script that throws at load: the replica ends with code 1, the error is in its log, and the restart starts node again', { timeout: TEST_MS }, async () => {
    const saved = process.env.QSCALE_CRASH_BACKOFF_MS;
    process.env.QSCALE_CRASH_BACKOFF_MS = '200';
    const dir = folder({ 'app.mjs': THROWING_APP }, ['node', 'app.mjs']);
    const logs = new Lines();
    let sys: RunningSystem | undefined;
    try {
      sys = await start(dir, logs);
      const s = sys;
      const warm = await until(() => {
        const w = warmOf(s);
        return w?.appPid !== undefined ? w : undefined;
      }, 'a warm app runtime');
      const q = await queueBackend(dir, path.join(dir, '.qscale'), true);
      try {
        await send(q, ['t1']);
      } finally {
        await q.close();
      }
      const consumer = s.deployments.get('consumer')!;
      await until(() => (consumer.list()[0]?.restarts ?? 0) >= 2, 'two crashes');
      const replica = consumer.list()[0]!;
      assert.equal(replica.lastExit?.process, 'app');
      assert.equal(replica.lastExit?.code, 1);
      const errors = logs.of(warm.name).filter((l) => /settings\.json is missing: cannot start/.test(l));
      assert.ok(errors.length >= 2, `the error of each start is in the replica's log:\n${logs.of(warm.name).join('\n')}`);
      assert.ok(!pidAlive(warm.appPid!), 'the runtime that ran the script has exited');
    } finally {
      if (saved === undefined) delete process.env.QSCALE_CRASH_BACKOFF_MS;
      else process.env.QSCALE_CRASH_BACKOFF_MS = saved;
      await sys?.stop();
    }
  });

  test('a runtime killed while it waits: the scale from zero starts the app as a new process, and nothing is lost', { timeout: TEST_MS }, async () => {
    const dir = folder({ 'app.mjs': ESM_APP }, ['node', 'app.mjs']);
    const logs = new Lines();
    const sys = await start(dir, logs);
    const q = await queueBackend(dir, path.join(dir, '.qscale'), true);
    try {
      const warm = await until(() => {
        const w = warmOf(sys);
        return w?.appPid !== undefined ? w : undefined;
      }, 'a warm app runtime');
      process.kill(warm.appPid!, 'SIGKILL');
      await until(() => warmOf(sys)?.appPid === undefined, 'the runtime seen gone');
      assert.equal(warmOf(sys)?.pid, warm.pid, 'the standby sidecar stays');
      await send(q, ['k1']);
      await until(() => logs.processed('k1') === 1, 'k1 processed');
      const replica = sys.deployments.get('consumer')!.list()[0]!;
      assert.equal(replica.pids.sidecar, warm.pid, 'the standby sidecar was adopted');
      assert.notEqual(replica.pids.app, warm.appPid);
      assert.equal(seen(dir)[0]?.pid, replica.pids.app);
    } finally {
      await q.close();
      await sys.stop();
    }
  });

  test('an app that is not a node script, or warmApp off: the standby has no app runtime and the app starts at scale-up', { timeout: TEST_MS }, async () => {
    for (const [command, warmApp] of [[['sh', '-c', 'exec node app.mjs'], true], [['node', 'app.mjs'], false]] as const) {
      const dir = folder({ 'app.mjs': ESM_APP }, [...command]);
      const logs = new Lines();
      const sys = await start(dir, logs, warmApp);
      const q = await queueBackend(dir, path.join(dir, '.qscale'), true);
      try {
        const warm = await until(() => warmOf(sys), 'a warm sidecar');
        await sleep(300);
        assert.equal(warmOf(sys)?.appPid, undefined, `${command.join(' ')} (warmApp ${warmApp}): no runtime`);
        await send(q, ['n1']);
        await until(() => logs.processed('n1') === 1, 'n1 processed');
        assert.equal(sys.deployments.get('consumer')!.list()[0]!.pids.sidecar, warm.pid);
      } finally {
        await q.close();
        await sys.stop();
      }
    }
  });

  test('a supervisor killed with SIGKILL takes its warm app runtime along, which has run nothing', { timeout: TEST_MS }, async () => {
    const dir = folder({ 'app.mjs': ESM_APP }, ['node', 'app.mjs']);
    const up = await startUp(dir, ['--embedded', '--hpa-sync-period', '1s']);
    let runtime: number | undefined;
    try {
      const s = await up.waitFor((st) => st.warmSidecars?.[0]?.appPid !== undefined, 60_000, 'a warm app runtime in status');
      runtime = s.warmSidecars![0]!.appPid!;
      up.child.kill('SIGKILL');
      await up.exited;
      await until(() => !pidAlive(runtime!), 'the runtime gone', 30_000);
      assert.deepEqual(seen(dir), [], 'the app never ran');
    } finally {
      if (runtime !== undefined && pidAlive(runtime)) process.kill(runtime, 'SIGKILL');
      await up.stop('SIGKILL');
    }
  });

  test('qscale status names the warm app runtime', { timeout: TEST_MS }, async () => {
    const dir = folder({ 'app.mjs': ESM_APP }, ['node', 'app.mjs']);
    const up = await startUp(dir, ['--embedded', '--hpa-sync-period', '1s']);
    try {
      const s = await up.waitFor((st) => st.warmSidecars?.[0]?.appPid !== undefined, 60_000, 'a warm app runtime in status');
      const out = execFileSync(process.execPath, [MAIN, 'status', '--data-dir', up.dataDir], { encoding: 'utf8' });
      assert.match(out, new RegExp(`warm sidecar for consumer's next replica: \\S+, pid ${s.warmSidecars![0]!.pid} and warm app runtime, pid ${s.warmSidecars![0]!.appPid}; not a replica`));
    } finally {
      await up.stop();
    }
  });

  test('which commands a runtime can become', { timeout: 5_000 }, () => {
    assert.deepEqual(nodeScript(['node', 'app.js', 'a']), ['app.js', 'a']);
    assert.deepEqual(nodeScript([process.execPath, 'dist/main.js']), ['dist/main.js']);
    assert.deepEqual(nodeScript(['/usr/local/bin/node', 'main.mjs']), ['main.mjs']);
    assert.equal(nodeScript(['node', '--require', 'dotenv/config', 'app.js']), undefined, 'node options act before the script');
    assert.equal(nodeScript(['node']), undefined);
    assert.equal(nodeScript(['npm', 'start']), undefined);
    assert.equal(nodeScript(['tsx', 'app.ts']), undefined);
    assert.equal(nodeScript(['sh', '-c', 'node app.js']), undefined);
    assert.equal(nodeScript(['node', 'app.js'], { NODE_OPTIONS: '--require ./tracing.js' }), undefined, 'a preload in NODE_OPTIONS');
    assert.equal(nodeScript(['node', 'app.js'], { NODE_OPTIONS: '--max-old-space-size=256 --import=./otel.mjs' }), undefined);
    assert.equal(nodeScript(['node', 'app.js'], { NODE_OPTIONS: '-r dotenv/config' }), undefined);
    assert.deepEqual(nodeScript(['node', 'app.js'], { NODE_OPTIONS: '--max-old-space-size=256' }), ['app.js'], 'options that load nothing');
  });
});
