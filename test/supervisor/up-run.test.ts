/**
 * `qscale up` as a user runs it (real processes): the printed curl works the instant it is printed; a trigger that
 * cannot read its broker is said once, shown as KEDA's Ready False, and said again when it reads; SIGTERM and a
 * second Ctrl-C end everything.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import amqp from 'amqplib';
import { request } from 'undici';
import { runFile, startUp, tempFolder, writeFiles, type UpProcess } from '../e2e/harness.js';
import { closedPort, needBroker, silentServer, uniqueName } from '../support/brokers.js';
import { MARK, consumerScaledObject, embeddedComponent, newMark, processesMarked } from './up-support.js';

const COMPONENT = (queue: string): string => embeddedComponent(queue);

/** A ScaledObject on the consumer with a RabbitMQ trigger (AMQP protocol) at `host`, read every second. */
const RABBITMQ_SCALER = (queue: string, host: string): string => consumerScaledObject(`type: rabbitmq
    metadata:
      protocol: amqp
      host: ${host}
      queueName: ${queue}
      mode: QueueLength
      value: "5"
`, '  pollingInterval: 1\n  minReplicaCount: 0\n  maxReplicaCount: 3\n');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `up` with a marker in its environment, so every process it starts can be found. */
async function start(folder: string, args: string[], env: Record<string, string> = {}): Promise<{ up: UpProcess; mark: string; exit: Promise<number | null> }> {
  const mark = newMark();
  const saved = { ...process.env };
  Object.assign(process.env, env, { [MARK]: mark });
  let up: UpProcess;
  try {
    up = await startUp(folder, args);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  const exit = new Promise<number | null>((resolve) => {
    if (up.child.exitCode !== null) resolve(up.child.exitCode);
    else up.child.once('exit', (code) => resolve(code));
  });
  return { up, mark, exit };
}

async function finish(run: { up: UpProcess; mark: string }): Promise<void> {
  if (run.up.child.exitCode === null && run.up.child.signalCode === null) await run.up.stop();
  for (const pid of processesMarked(run.mark)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

async function until(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A folder whose one app ignores the given signals (it only dies to SIGKILL), listening on APP_PORT. */
function stubbornApp(ignored: NodeJS.Signals[]): string {
  const dir = tempFolder('qscale-up-');
  writeFiles(dir, {
    'queue.yaml': COMPONENT('jobs'),
    'stubborn.mjs': `import http from 'node:http';
for (const sig of ${JSON.stringify(ignored)}) process.on(sig, () => {});
http.createServer((q, r) => r.end('ok')).listen(Number(process.env.APP_PORT), '127.0.0.1');
`,
    'dapr.yaml': `version: 1
apps:
  - appID: stubborn
    appDirPath: ${dir}
    command: ["node", "stubborn.mjs"]
`,
  });
  return dir;
}

describe('qscale up', { timeout: 300_000 }, () => {
  test('up - the producer lines come once it answers: the printed curl, run at once, gets 200', async () => {
    const dir = tempFolder('qscale-up-');
    writeFiles(dir, { 'queue.yaml': COMPONENT('jobs'), 'dapr.yaml': runFile({ WORK_MS: '0' }) });
    const run = await start(dir, []);
    try {
      const tryLine = await run.up.waitForLine(/\| try: +curl -X POST "http:\/\/127\.0\.0\.1:\d+\/MessageProducer"/, 60_000);
      // The very request printed, sent the moment the line is read.
      const url = /curl -X POST "([^"]+)"/.exec(tryLine)![1]!;
      const res = await request(url, { method: 'POST', headers: { accept: '*/*', 'content-type': 'application/json' }, body: '{"count":1,"intervalMilliseconds":0}' });
      const body = await res.body.text();
      assert.equal(res.statusCode, 200, body);
      const producerLine = run.up.lines.findIndex((l) => /\| producer: +http:\/\/127\.0\.0\.1:\d+ +\(Swagger UI: http:\/\/127\.0\.0\.1:\d+\/swagger\)/.test(l));
      assert.ok(producerLine >= 0 && producerLine < run.up.lines.indexOf(tryLine), 'the producer line comes first');
      assert.equal((await run.up.status()).producerUrl, url.replace(/\/MessageProducer$/, ''));
    } finally {
      await finish(run);
    }
  });

  test('up - a trigger whose broker cannot be reached: one line naming ScaledObject and trigger, not repeated; status READY False', async () => {
    const dir = tempFolder('qscale-up-');
    const port = await closedPort();
    writeFiles(dir, {
      'queue.yaml': COMPONENT('jobs'),
      'scaling.yaml': RABBITMQ_SCALER('jobs', `amqp://guest:guest@127.0.0.1:${port}`),
      'dapr.yaml': runFile({ WORK_MS: '0' }),
    });
    const run = await start(dir, []);
    try {
      const failing = /\| ScaledObject consumer-scaler trigger 0 \(rabbitmq\): cannot read the metric: .*(ECONNREFUSED|connection refused).*; no scaling on it until it reads again/;
      const line = await run.up.waitForLine(failing, 60_000);
      assert.match(line, /\(the trigger: .*scaling\.yaml:\d+\)$/, 'the line says where the trigger is');
      assert.doesNotMatch(line, /guest:guest/, 'no credentials in the line');
      const s = await run.up.status();
      const so = s.scaledObjects[0]!;
      assert.equal(so.name, 'consumer-scaler');
      assert.equal(so.conditions.ready.status, 'False');
      assert.equal(so.conditions.ready.reason, 'TriggerError');
      assert.match(so.conditions.ready.message, /trigger 0 \(rabbitmq\): .*(ECONNREFUSED|connection refused)/);
      assert.match(so.triggers[0]!.error ?? '', /ECONNREFUSED|connection refused/);
      // Several more polls (one a second, and a read per status request): still one line.
      for (let i = 0; i < 4; i++) {
        await sleep(1100);
        await run.up.status();
      }
      assert.equal(run.up.countLines(/cannot read the metric/), 1, run.up.lines.filter((l) => /qscale \|/.test(l)).join('\n'));
      assert.equal(run.up.countLines(/still cannot read the metric/), 0);
    } finally {
      await finish(run);
    }
  });

  test('up - a trigger that reads again after its broker came back: one recovery line, READY True', async (t: TestContext) => {
    if (!(await needBroker(t, 'rabbitmq'))) return;
    const queue = uniqueName('qscale-up-trigger');
    const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
    const sockets = new Set<net.Socket>();
    let proxy: net.Server | undefined;
    const dir = tempFolder('qscale-up-');
    const port = await closedPort();
    let run: Awaited<ReturnType<typeof start>> | undefined;
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      writeFiles(dir, {
        'queue.yaml': COMPONENT(queue),
        'scaling.yaml': RABBITMQ_SCALER(queue, `amqp://guest:guest@127.0.0.1:${port}`),
        'dapr.yaml': runFile({ WORK_MS: '0' }),
      });
      run = await start(dir, []);
      await run.up.waitForLine(/ScaledObject consumer-scaler trigger 0 \(rabbitmq\): cannot read the metric: .*(ECONNREFUSED|connection refused)/, 60_000);
      // The broker "comes back": the trigger's port now leads to RabbitMQ.
      proxy = net.createServer((client) => {
        const upstream = net.connect(5672, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve) => proxy!.listen(port, '127.0.0.1', resolve));
      await run.up.waitForLine(/ScaledObject consumer-scaler trigger 0 \(rabbitmq\): reads again \(value 0\) after failing for \d+s; scaling on it resumes/, 30_000);
      const s = await run.up.status();
      assert.equal(s.scaledObjects[0]!.conditions.ready.status, 'True');
      assert.equal(s.scaledObjects[0]!.triggers[0]!.value, 0);
      assert.equal(run.up.countLines(/cannot read the metric/), 1);
      await ch.deleteQueue(queue);
    } finally {
      if (run) await finish(run);
      for (const s of sockets) s.destroy();
      if (proxy) await new Promise<void>((resolve) => proxy!.close(() => resolve()));
      await conn.close().catch(() => undefined);
    }
  });

  test('up - status during a broker outage answers with the error in the queue line, bounded', async () => {
    // A "broker" that accepts connections and never answers: the worst outage, a read that would block.
    const silent = await silentServer();
    const port = silent.port;
    const dir = tempFolder('qscale-up-');
    writeFiles(dir, {
      'queue.yaml': `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.rabbitmq
  version: v1
  metadata:
  - name: host
    value: amqp://guest:guest@127.0.0.1:${port}
  - name: queueName
    value: jobs
scopes:
- consumer
`,
      'scaling.yaml': RABBITMQ_SCALER('jobs', `amqp://guest:guest@127.0.0.1:${port}`),
      'dapr.yaml': runFile({ WORK_MS: '0' }),
    });
    const run = await start(dir, []);
    try {
      const s = await run.up.waitFor((st) => st.queues.length === 1, 60_000, 'the status');
      const q = s.queues[0]!;
      assert.equal(q.binding, 'message-queue');
      assert.match(q.error ?? '', /no answer within 1500 ms/, JSON.stringify(q));
      assert.doesNotMatch(JSON.stringify(s), /guest:guest/);
      await run.up.waitForLine(/ScaledObject consumer-scaler trigger 0 \(rabbitmq\): cannot read the metric: /, 60_000);
    } finally {
      await finish(run);
      await silent.close();
    }
  });

  test('up - SIGTERM after a crashed app was restarted: up exits 0 and no process is left', async () => {
    const dir = tempFolder('qscale-up-');
    writeFiles(dir, { 'queue.yaml': COMPONENT('jobs'), 'dapr.yaml': runFile({ WORK_MS: '0' }) });
    const run = await start(dir, [], { QSCALE_CRASH_BACKOFF_MS: '100' });
    try {
      const s = await run.up.waitFor((st) => st.replicas.length === 2 && st.replicas.every((r) => r.ready), 60_000, 'both apps Ready');
      const consumer = s.replicas.find((r) => r.appId === 'consumer')!;
      process.kill(consumer.pids.app!, 'SIGKILL');
      await run.up.waitFor((st) => st.replicas.some((r) => r.appId === 'consumer' && r.restarts === 1 && r.ready), 60_000, 'the consumer restarted');
      assert.ok(processesMarked(run.mark).length >= 4, 'the apps and sidecars run');
      run.up.child.kill('SIGTERM');
      assert.equal(await run.exit, 0, run.up.lines.slice(-20).join('\n'));
      assert.ok(run.up.lines.some((l) => /\| stopped$/.test(l)));
      await until(() => processesMarked(run.mark).length === 0, 'every process gone');
    } finally {
      await finish(run);
    }
  });

  test('up - an app that ignores SIGTERM: a second Ctrl-C kills at once, exit 130, no process left', { timeout: 90_000 }, async () => {
    const dir = stubbornApp(['SIGTERM', 'SIGINT']);
    const run = await start(dir, ['--grace-period', '600s']);
    try {
      await run.up.waitFor((st) => st.replicas.some((r) => r.ready), 60_000, 'the app Ready');
      run.up.child.kill('SIGINT');
      await run.up.waitForLine(/SIGINT: stopping: .*SIGINT again kills at once/, 30_000);
      run.up.child.kill('SIGINT');
      assert.equal(await run.exit, 130, run.up.lines.slice(-20).join('\n'));
      await until(() => processesMarked(run.mark).length === 0, 'every process gone');
    } finally {
      await finish(run);
    }
  });

  test('up - an app that ignores SIGTERM: one SIGTERM still ends up after the grace period, no process left', { timeout: 90_000 }, async () => {
    const dir = stubbornApp(['SIGTERM']);
    const run = await start(dir, ['--grace-period', '1s']);
    try {
      await run.up.waitFor((st) => st.replicas.some((r) => r.ready), 60_000, 'the app Ready');
      run.up.child.kill('SIGTERM');
      const code = await run.exit;
      assert.ok(code === 0 || code === 1, `exit ${code}`);
      await until(() => processesMarked(run.mark).length === 0, 'every process gone');
    } finally {
      await finish(run);
    }
  });
});
