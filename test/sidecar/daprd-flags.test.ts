/**
 * `qscale sidecar` takes daprd's command line (dapr/dapr cmd/daprd/options, dapr/kit logger flags, metrics flags):
 * every daprd flag is accepted, read as pflag reads it, and a flag qscale has nothing to do for is named once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { sidecarCommand, type SidecarCliOptions } from '../../src/cli/sidecar/index.js';
import { parseSidecarFlags, type SidecarRun } from '../../src/cli/sidecar/flags.js';
import { CLI_ERRORS } from '../../src/cli/codes.js';
import { call, componentYaml, freePort, sidecarFor, spawnSidecar, startApp, tempDir, waitFor, writeComponents } from './support.js';

/** Reads a command line as `qscale sidecar` does, without starting anything. */
async function parse(args: string[], env: NodeJS.ProcessEnv = {}): Promise<SidecarRun> {
  const cmd = sidecarCommand();
  let got: SidecarCliOptions | undefined;
  cmd.action((o: SidecarCliOptions) => {
    got = o;
  });
  await cmd.parseAsync(args, { from: 'user' });
  return parseSidecarFlags(got!, env);
}

async function refused(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(parse(args), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_FLAG', err.message);
    assert.match(err.message, message);
    return true;
  });
}

/** Every flag daprd defines (cmd/daprd/options/options.go, logger.AttachCmdFlags, metrics AttachCmdFlags), with a value it takes. */
const DAPRD_FLAGS: Array<[string, string | undefined]> = [
  ['mode', 'standalone'], ['dapr-http-port', '3500'], ['dapr-listen-addresses', '127.0.0.1'], ['dapr-public-port', '3501'],
  ['dapr-public-listen-address', '0.0.0.0'], ['dapr-grpc-port', '50001'], ['dapr-internal-grpc-port', '50002'],
  ['dapr-internal-grpc-listen-address', '0.0.0.0'], ['app-port', '3000'], ['profile-port', '7777'], ['app-protocol', 'http'],
  ['components-path', './c'], ['resources-path', './r'], ['config', './config.yaml'], ['app-id', 'a'], ['control-plane-address', 'x:1'],
  ['sentry-address', 'x:2'], ['control-plane-trust-domain', 'cluster.local'], ['control-plane-namespace', 'dapr-system'],
  ['sentry-request-jwt-audiences', 'a,b'], ['allowed-origins', '*'], ['enable-profiling', undefined], ['version', undefined],
  ['build-info', undefined], ['wait', undefined], ['app-max-concurrency', '-1'], ['enable-mtls', undefined], ['app-ssl', undefined],
  ['dapr-http-max-request-size', '4'], ['max-body-size', '4Mi'], ['dapr-http-read-buffer-size', '4'], ['read-buffer-size', '4Ki'],
  ['unix-domain-socket', '/tmp'], ['dapr-graceful-shutdown-seconds', '5'], ['dapr-block-shutdown-duration', '5s'],
  ['enable-api-logging', undefined], ['disable-builtin-k8s-secret-store', undefined], ['enable-app-health-check', undefined],
  ['app-health-check-path', '/healthz'], ['app-health-probe-interval', '5'], ['app-health-probe-timeout', '500'],
  ['app-health-threshold', '3'], ['app-channel-address', '127.0.0.1'], ['disable-init-endpoints', 'config'],
  ['placement-host-address', 'p:50005'], ['scheduler-host-address', 's:50006'], ['scheduler-job-streams', '3'],
  ['actors-disseminate-timeout', '30s'], ['hot-reload-reconcile-interval', '60s'], ['app-binding-options-timeout', '3s'],
  ['reminders-service', 'x'], ['actors-service', 'x'], ['log-level', 'info'], ['log-file', '/tmp/daprd.log'], ['log-as-json', undefined],
  ['metrics-port', '9090'], ['metrics-listen-address', '0.0.0.0'], ['enable-metrics', undefined],
];
/** What qscale does with a flag: everything else is named in the notice. */
const IMPLEMENTED = new Set([
  'dapr-http-port', 'dapr-listen-addresses', 'app-port', 'app-protocol', 'components-path', 'resources-path', 'app-id', 'version', 'wait',
  'app-max-concurrency', 'dapr-http-max-request-size', 'max-body-size', 'dapr-graceful-shutdown-seconds', 'app-channel-address',
  'app-binding-options-timeout', 'log-level', 'log-as-json', 'metrics-port', 'metrics-listen-address', 'enable-metrics',
]);

describe('daprd fidelity - sidecar flags', { timeout: 120_000 }, () => {
  it("flags - every flag daprd defines is accepted; each one qscale does nothing for is named in one notice line, with why", async () => {
    const skip = new Set(['version', 'wait']); // they do something else than start: tested below
    for (const [name, value] of DAPRD_FLAGS) {
      if (skip.has(name)) continue;
      const run = await parse([`--${name}`, ...(value === undefined ? [] : [value])]);
      const notice = run.notices.find((n) => n.startsWith('daprd flags accepted with no effect in qscale: '));
      if (IMPLEMENTED.has(name)) assert.equal(notice, undefined, name);
      else assert.match(notice ?? '', new RegExp(`: --${name} \\([^)]+\\)$`), name);
    }
    const all = await parse(DAPRD_FLAGS.filter(([n]) => !skip.has(n) && !IMPLEMENTED.has(n)).flatMap(([n, v]) => [`--${n}`, ...(v === undefined ? [] : [v])]));
    assert.equal(all.notices.length, 1, all.notices.join('\n'));
    assert.equal((all.notices[0]!.match(/ --[a-z0-9-]+ \(/g) ?? []).length, DAPRD_FLAGS.length - skip.size - IMPLEMENTED.size + 2);
  });

  it('flags - a bool flag takes no value or =true/=false (Go ParseBool), as pflag reads it; anything else is refused', async () => {
    assert.ok((await parse(['--enable-profiling=false'])).notices[0]?.includes('--enable-profiling'));
    assert.equal((await parse(['--log-as-json'])).json, true);
    assert.equal((await parse(['--log-as-json=F'])).json, false);
    await refused(['--enable-mtls=maybe'], /--enable-mtls takes true or false/);
  });

  const badValues: Array<[string[], RegExp]> = [
    [['--app-health-probe-interval', 'abc'], /--app-health-probe-interval must be an integer, got 'abc'/],
    [['--scheduler-job-streams', '-1'], /--scheduler-job-streams must be a whole number >= 0/],
    [['--dapr-block-shutdown-duration', '5'], /--dapr-block-shutdown-duration must be a duration such as 30s/],
    [['--actors-disseminate-timeout', '0s'], /--actors-disseminate-timeout must be positive/],
    [['--disable-init-endpoints', 'config,everything'], /--disable-init-endpoints takes config and subscribe, got 'everything'/],
    [['--log-level', 'warning'], /invalid value for --log-level: warning \(debug, info, warn, error or fatal\)/],
    [['--app-protocol', 'ftp'], /invalid value for 'app-protocol': ftp/],
    [['--app-max-concurrency', 'abc'], /--app-max-concurrency must be an integer, got 'abc'/],
    [['--dapr-graceful-shutdown-seconds', '1.5'], /--dapr-graceful-shutdown-seconds must be an integer, got '1\.5'/],
    [['--max-body-size', '4m'], /--max-body-size must be a size such as 4Mi/],
    [['--max-body-size', '1.5'], /--max-body-size must be a size such as 4Mi/],
    [['--app-binding-options-timeout', '3'], /--app-binding-options-timeout must be a duration/],
    [['--app-port', '3500', '--dapr-http-port', '3500'], /the 'dapr-http-port' argument value 3500 conflicts with 'app-port'/],
  ];
  for (const [args, message] of badValues) {
    it(`flags - ${args.join(' ')} is refused, as daprd refuses it`, async () => refused(args, message));
  }

  it('flags - single-dash flags are read as double-dash ones, as daprd reads them', async () => {
    const run = await parse(['-app-id', 'legacy', '-app-port', '3000', '-dapr-http-port', '3600', '-app-max-concurrency', '-1']);
    assert.deepEqual([run.options.appId, run.options.appPort, run.options.httpPort, run.options.appMaxConcurrency], ['legacy', 3000, 3600, undefined]);
  });

  it('flags - --log-level takes debug, info, warn, error and fatal, in any case', async () => {
    for (const level of ['debug', 'INFO', 'Warn', 'error', 'fatal']) assert.equal((await parse(['--log-level', level])).logLevel, level.toLowerCase());
  });

  it('flags - --app-max-concurrency -1, 0 or below is no limit, as daprd', async () => {
    for (const v of ['-1', '0', '-7']) assert.equal((await parse(['--app-max-concurrency', v])).options.appMaxConcurrency, undefined, v);
    assert.equal((await parse(['--app-max-concurrency', '0x10'])).options.appMaxConcurrency, 16, 'Go reads 0x10 as 16');
  });

  it('flags - --dapr-graceful-shutdown-seconds below 0 is the default grace period', async () => {
    assert.equal((await parse(['--dapr-graceful-shutdown-seconds', '-3'])).options.gracePeriodMs, 30_000);
    assert.equal((await parse(['--dapr-graceful-shutdown-seconds', '0'])).options.gracePeriodMs, 0);
  });

  it('flags - --max-body-size is a Kubernetes quantity: 0 is no limit and -1 the default; --dapr-http-max-request-size is in MB and loses to it', async () => {
    const cases: Array<[string[], number]> = [
      [['--max-body-size', '4Mi'], 4 * 1024 * 1024], [['--max-body-size', '1M'], 1_000_000], [['--max-body-size', '2k'], 2000],
      [['--max-body-size', '1e3'], 1000], [['--max-body-size', '0'], 0], [['--max-body-size', '-1'], 4 * 1024 * 1024],
      [['--dapr-http-max-request-size', '2'], 2 * 1024 * 1024], [['--dapr-http-max-request-size', '0'], 0],
      [['--dapr-http-max-request-size', '2', '--max-body-size', '512Ki'], 512 * 1024],
    ];
    for (const [args, bytes] of cases) assert.equal((await parse(args)).options.maxBodyBytes, bytes, args.join(' '));
  });

  it('flags - --app-protocol http, https, grpc, grpcs or h2c in any case; anything but http is named in a notice (the app is called over HTTP)', async () => {
    assert.deepEqual((await parse(['--app-protocol', 'HTTP'])).notices, []);
    for (const p of ['https', 'grpc', 'GRPCS', 'h2c']) {
      assert.match((await parse(['--app-protocol', p])).notices[0] ?? '', new RegExp(`^--app-protocol ${p.toLowerCase()} has no effect in qscale: the app is called over plain HTTP`));
    }
  });

  it('flags - --dapr-listen-addresses: the API listens on the first address; the others are named in a notice', async () => {
    const run = await parse(['--dapr-listen-addresses', '127.0.0.2,::1']);
    assert.equal(run.options.listenAddress, '127.0.0.2');
    assert.deepEqual(run.notices, ['--dapr-listen-addresses: the HTTP API listens on 127.0.0.2 only, not on ::1']);
  });

  it("flags - --resources-path is a string slice, as pflag's: repeatable and comma-separated", async () => {
    assert.deepEqual((await parse(['--resources-path', 'a,b', '--resources-path', 'c', '--components-path', 'd'])).options.resourcesPaths, ['a', 'b', 'c', 'd']);
  });

  it('flags - --broker-headers, or QSCALE_BROKER_HEADERS=true, opts in to the headers daprd never sends; off by default', async () => {
    assert.equal((await parse([])).options.brokerHeaders, false);
    assert.equal((await parse(['--broker-headers'])).options.brokerHeaders, true);
    assert.equal((await parse([], { QSCALE_BROKER_HEADERS: 'true' })).options.brokerHeaders, true);
    assert.equal((await parse(['--broker-headers=false'], { QSCALE_BROKER_HEADERS: 'true' })).options.brokerHeaders, false);
  });

  it('flags - --app-binding-options-timeout bounds the OPTIONS probe; 0 or below is the default', async () => {
    assert.equal((await parse(['--app-binding-options-timeout', '250ms'])).options.appBindingOptionsTimeoutMs, 250);
    assert.equal((await parse(['--app-binding-options-timeout', '0s'])).options.appBindingOptionsTimeoutMs, undefined);
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'probe-timeout' }) });
    const app = await startApp((r) => (r.method === 'OPTIONS' ? new Promise<number>(() => undefined) : 200));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }));
    const sc = await sidecarFor(dir, { appPort: app.port, appBindingOptionsTimeoutMs: 250, logger });
    try {
      type Meta = { qscale: { inputBindings: Array<{ state: string }> } };
      const state = await waitFor('the probe given up', async () => {
        const s = ((await call(sc.port, 'GET', '/v1.0/metadata')).json() as Meta).qscale.inputBindings[0]?.state;
        return s === 'not-subscribed' && s;
      }, 10_000);
      assert.equal(state, 'not-subscribed');
      assert.ok(lines.some((l) => l.includes('OPTIONS /message-queue failed: no answer within 250 ms')), lines.join('\n'));
    } finally {
      await sc.close();
      await app.close();
    }
  });
});

describe('daprd fidelity - sidecar flags, as a process', { timeout: 180_000 }, () => {
  it('flags - a daprd command line runs as is: one notice line names the flags without effect, and the API serves', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'daprd-args' }) });
    const sc = spawnSidecar([
      '--app-id', 'producer', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--dapr-grpc-port', '50001',
      '--config', './config.yaml', '--enable-profiling', '--profile-port', '7777', '--placement-host-address', 'localhost:50005',
      '--enable-app-health-check', '--app-health-check-path', '/healthz', '--log-as-json=false', '--app-max-concurrency', '-1',
    ]);
    try {
      const port = await sc.apiPort();
      assert.equal((await call(port, 'POST', '/v1.0/bindings/message-queue', '{"operation":"create","data":1}')).status, 204);
      const notices = sc.lines.filter((l) => l.includes('daprd flags accepted with no effect in qscale'));
      assert.equal(notices.length, 1, sc.lines.join('\n'));
      for (const f of ['dapr-grpc-port', 'config', 'enable-profiling', 'profile-port', 'placement-host-address', 'enable-app-health-check', 'app-health-check-path']) {
        assert.ok(notices[0]!.includes(`--${f} (`), f);
      }
    } finally {
      sc.child.kill('SIGTERM');
      await sc.exited;
    }
  });

  it('flags - --log-level warn leaves info lines out; --log-level debug shows debug ones', async () => {
    const dir = tempDir();
    writeComponents(dir, {
      'q.yaml': componentYaml('message-queue', { queueName: 'levels' }),
      'svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [{port: 80}]\n',
    });
    const port = await freePort();
    const quiet = spawnSidecar(['--app-id', 'x', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--dapr-http-port', String(port), '--log-level', 'warn']);
    try {
      await waitFor('the API', async () => (await call(port, 'GET', '/v1.0/healthz/outbound').catch(() => undefined))?.status === 204);
      assert.deepEqual(quiet.lines.filter((l) => /level=info/.test(l)), []);
    } finally {
      quiet.child.kill('SIGTERM');
      await quiet.exited;
    }
    const loud = spawnSidecar(['--app-id', 'x', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--log-level', 'DEBUG']);
    try {
      await loud.apiPort();
      assert.ok(loud.lines.some((l) => /level=debug msg="skipped Service web/.test(l)), loud.lines.join('\n'));
    } finally {
      loud.child.kill('SIGTERM');
      await loud.exited;
    }
  });

  it('flags - --wait polls the sidecar on --dapr-http-port until it is outbound-ready, then exits 0, as daprd --wait', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'wait' }) });
    const port = await freePort();
    const waiter = spawnSidecar(['--wait', '--dapr-http-port', String(port)]);
    const sc = spawnSidecar(['--app-id', 'x', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--dapr-http-port', String(port)]);
    try {
      assert.equal(await waiter.exited, 0);
      assert.ok(waiter.lines.includes('Dapr is outbound ready!'), waiter.lines.join('\n'));
      assert.ok(!waiter.lines.some((l) => l.includes('HTTP API listening')), 'the waiter serves nothing');
    } finally {
      waiter.child.kill('SIGKILL');
      sc.child.kill('SIGTERM');
      await sc.exited;
    }
  });

  it("flags - a value daprd refuses stops the process with one line and ERR_FLAG's exit status", async () => {
    const sc = spawnSidecar(['--app-id', 'x', '--log-level', 'verbose']);
    assert.equal(await sc.exited, CLI_ERRORS.ERR_FLAG.exit);
    assert.deepEqual(sc.lines, ['qscale: invalid value for --log-level: verbose (debug, info, warn, error or fatal)']);
  });
});
