import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CLI_ERRORS } from '../../src/cli/codes.js';
import { call, componentYaml, freePort, queueDepth, spawnSidecar, startApp, tempDir, waitFor, writeComponents } from './support.js';

const send = (port: number, data: unknown) =>
  call(port, 'POST', '/v1.0/bindings/message-queue', JSON.stringify({ operation: 'create', data }));

async function sidecarUp(port: number): Promise<void> {
  await waitFor('the sidecar API', async () => {
    try {
      return (await call(port, 'GET', '/v1.0/healthz/outbound')).status === 204;
    } catch {
      return false;
    }
  });
}

describe('qscale sidecar process - graceful stop', { timeout: 300_000 }, () => {
  it('drain - on SIGTERM in-flight work finishes and is acked, nothing new is taken, nothing is redelivered, exit 0', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'drain', maxConcurrentHandlers: '2' }) });
    const release: Array<() => void> = [];
    const app = await startApp(async (r) => {
      if (r.method === 'POST') await new Promise<void>((resolve) => release.push(resolve));
      return 200;
    });
    const sc = spawnSidecar(['--app-id', 'consumer', '--app-port', String(app.port), '--resources-path', dir, '--data-dir', dataDir]);
    try {
      const port = await sc.apiPort();
      await sidecarUp(port);
      for (const n of [1, 2, 3]) assert.equal((await send(port, n)).status, 204);
      await waitFor('two deliveries in the app', () => release.length === 2);
      sc.child.kill('SIGTERM');
      await sc.waitForLine(/stopping: no new messages are taken; 2 deliveries in flight/);
      // The work finishes only now, after the stop began.
      for (const r of release.splice(0)) r();
      assert.equal(await sc.exited, 0);
      assert.ok(sc.lines.some((l) => /in-flight deliveries finished and acked/.test(l)), sc.lines.join('\n'));
      const posts = app.received.filter((r) => r.method === 'POST');
      assert.deepEqual(posts.map((p) => p.body.toString()).sort(), ['1', '2']);
      assert.deepEqual(await queueDepth(dataDir, 'drain'), { ready: 1, inFlight: 0, deadLettered: 0 }, 'the third waits for the next replica');
    } finally {
      sc.child.kill('SIGKILL');
      await app.close();
    }
  });

  it('drain - past the grace period the sidecar exits anyway and the unfinished message comes back', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, '.qscale');
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'grace', visibilityTimeoutInSec: '1' }) });
    const app = await startApp(async (r) => (r.method === 'POST' ? new Promise<number>(() => undefined) : 200));
    const sc = spawnSidecar([
      '--app-id', 'consumer', '--app-port', String(app.port), '--resources-path', dir, '--data-dir', dataDir,
      '--dapr-graceful-shutdown-seconds', '1',
    ]);
    try {
      const port = await sc.apiPort();
      await sidecarUp(port);
      await send(port, 'stuck');
      await waitFor('the delivery', () => app.received.some((r) => r.method === 'POST'));
      sc.child.kill('SIGTERM');
      assert.equal(await sc.exited, 0);
      assert.ok(sc.lines.some((l) => /grace period of 1s is over with 1 deliveries in flight/.test(l)), sc.lines.join('\n'));
      await waitFor('the message back in the queue', async () => (await queueDepth(dataDir, 'grace')).ready === 1);
    } finally {
      sc.child.kill('SIGKILL');
      await app.close();
    }
  });

  it('drain - POST /v1.0/shutdown stops the process with exit 0', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'shutdown' }) });
    const sc = spawnSidecar(['--app-id', 'producer', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')]);
    try {
      const port = await sc.apiPort();
      await sidecarUp(port);
      assert.equal((await call(port, 'POST', '/v1.0/shutdown')).status, 204);
      assert.equal(await sc.exited, 0);
      assert.ok(sc.lines.some((l) => /shutdown requested through POST \/v1.0\/shutdown/.test(l)));
    } finally {
      sc.child.kill('SIGKILL');
    }
  });
});

describe('qscale sidecar process - start-up', { timeout: 300_000 }, () => {
  it('start-up - logs each loaded component like daprd and says when --embedded serves a broker type', async () => {
    const dir = tempDir();
    writeComponents(dir, {
      'q.yaml': componentYaml('message-queue', { queueName: 'msgqueue', connectionString: 'Endpoint=sb://x/;SharedAccessKey=topsecretvalue' }, 'bindings.azure.servicebusqueues'),
    });
    const sc = spawnSidecar(['--app-id', 'producer', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--embedded']);
    try {
      const port = await sc.apiPort();
      await sidecarUp(port);
      assert.ok(sc.lines.some((l) => /loaded component message-queue \(bindings\.azure\.servicebusqueues\)/.test(l)), sc.lines.join('\n'));
      assert.ok(sc.lines.some((l) => /--embedded: every queue binding and pub\/sub component is served from the embedded SQLite queue/.test(l)));
      assert.equal((await send(port, 'hi')).status, 204);
      assert.deepEqual(await queueDepth(path.join(dir, '.qscale'), 'msgqueue'), { ready: 1, inFlight: 0, deadLettered: 0 });
      assert.ok(!sc.lines.some((l) => l.includes('topsecretvalue')));
    } finally {
      sc.child.kill('SIGTERM');
      await sc.exited;
    }
  });

  it('start-up - a component that fails to init stops the sidecar with ERR_COMPONENT_INIT\'s exit status, naming file, component and type, password redacted', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'q', host: 'amqp://user:hunter2pass@127.0.0.1:1' }, 'bindings.rabbitmq') });
    const sc = spawnSidecar(['--app-id', 'x', '--resources-path', dir]);
    assert.equal(await sc.exited, CLI_ERRORS.ERR_COMPONENT_INIT.exit);
    const line = sc.lines.find((l) => l.startsWith('qscale: '));
    assert.match(line ?? sc.lines.join('\n'), /q\.yaml:\d+: component message-queue \(bindings\.rabbitmq\): init failed: /);
    assert.ok(!sc.lines.some((l) => l.includes('hunter2pass')), sc.lines.join('\n'));
  });

  it('start-up - with ignoreErrors a failing component is logged and skipped, and the sidecar serves', async () => {
    const dir = tempDir();
    const yaml = componentYaml('broken', { queueName: 'q', host: 'amqp://user:hunter2pass@127.0.0.1:1' }, 'bindings.rabbitmq').replace('  version: v1\n', '  version: v1\n  ignoreErrors: true\n');
    writeComponents(dir, { 'b.yaml': yaml, 'q.yaml': componentYaml('message-queue', { queueName: 'fine' }) });
    const sc = spawnSidecar(['--app-id', 'x', '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')]);
    try {
      const port = await sc.apiPort();
      await sidecarUp(port);
      assert.ok(sc.lines.some((l) => /component broken \(bindings\.rabbitmq\): init failed: .*ignoreErrors: going on without it/.test(l)), sc.lines.join('\n'));
      assert.equal((await send(port, 1)).status, 204);
      assert.ok(!sc.lines.some((l) => l.includes('hunter2pass')));
    } finally {
      sc.child.kill('SIGTERM');
      await sc.exited;
    }
  });

  const badFlags: Array<[string[], RegExp]> = [
    [['--app-port', 'abc'], /--app-port must be an integer from 0 to 65535, got 'abc'/],
    [['--app-max-concurrency', 'abc'], /--app-max-concurrency must be an integer, got 'abc'/],
    [['--max-body-size', 'lots'], /--max-body-size must be a size such as 4Mi/],
    [['--dapr-graceful-shutdown-seconds', '1.5'], /--dapr-graceful-shutdown-seconds must be an integer, got '1\.5'/],
    [['--app-prot', '3000'], /unknown option '--app-prot' \(Did you mean --app-port\?\)/],
    [['--log-format', 'xml'], /option '--log-format <format>' argument 'xml' is invalid\. Allowed choices are text, json\./],
    [['--app-port'], /option '--app-port <port>' argument missing/],
  ];
  for (const [args, message] of badFlags) {
    it(`flags - ${args.join(' ')} is refused with one line naming the flag and ERR_FLAG's exit status`, async () => {
      const sc = spawnSidecar(['--app-id', 'x', ...args]);
      assert.equal(await sc.exited, CLI_ERRORS.ERR_FLAG.exit);
      assert.equal(sc.lines.length, 1, sc.lines.join('\n'));
      assert.match(sc.lines[0] ?? '', /^qscale: /);
      assert.match(sc.lines[0] ?? '', message);
    });
  }

  it('flags - APP_ID, APP_PORT and DAPR_HTTP_PORT are read from the environment; --log-format json writes JSON lines', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'env' }) });
    const app = await startApp(() => 200);
    const port = await freePort();
    const sc = spawnSidecar(['--resources-path', dir, '--data-dir', path.join(dir, '.qscale'), '--log-format', 'json'], {
      APP_ID: 'from-env', APP_PORT: String(app.port), DAPR_HTTP_PORT: String(port),
    });
    try {
      await sc.waitForLine(/HTTP API listening on /);
      await sidecarUp(port);
      const m = (await call(port, 'GET', '/v1.0/metadata')).json() as { id: string; appConnectionProperties: { port: number } };
      assert.equal(m.id, 'from-env');
      assert.equal(m.appConnectionProperties.port, app.port);
      const first = sc.lines.find((l) => l.includes('starting qscale sidecar'));
      assert.equal((JSON.parse(first ?? '{}') as { msg?: string }).msg, 'starting qscale sidecar for app from-env');
    } finally {
      sc.child.kill('SIGTERM');
      await sc.exited;
      await app.close();
    }
  });
});

describe('qscale sidecar process - initTimeout', { timeout: 300_000 }, () => {
  it('start-up - a broker that accepts the connection but never answers is given up after initTimeout, with ERR_COMPONENT_INIT\'s exit status', async () => {
    // A TCP listener that never speaks AMQP: the broker's connect hangs.
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const blackhole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const addr = blackhole.address();
    const holePort = typeof addr === 'object' && addr ? addr.port : 0;
    const dir = tempDir();
    const yaml = componentYaml('message-queue', { queueName: 'q', host: `amqp://guest:guest@127.0.0.1:${holePort}` }, 'bindings.rabbitmq')
      .replace('  version: v1\n', '  version: v1\n  initTimeout: 1s\n');
    writeComponents(dir, { 'q.yaml': yaml });
    try {
      const sc = spawnSidecar(['--app-id', 'x', '--resources-path', dir]);
      assert.equal(await sc.exited, CLI_ERRORS.ERR_COMPONENT_INIT.exit);
      assert.match(sc.lines.join('\n'), /q\.yaml:\d+: component message-queue \(bindings\.rabbitmq\): init failed: .*(timed out after 1000 ms \(initTimeout\)|no answer)/);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });
});
