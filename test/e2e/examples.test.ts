/**
 * Every example folder runs as is on this machine as it comes (RabbitMQ without its management plugin, NATS without
 * monitoring): `qscale up <folder>`, 20 messages through the producer's POST /MessageProducer, 20 processed by a
 * consumer that the example's own ScaledObject scaled from 0, then Ctrl-C.
 *
 * Each example is copied into a temporary folder first. What changes in the copy: the queue name (unique per run, so
 * nothing collides with other tests or a user's queue on the shared brokers), and in the run file the apps' folder
 * (the repository), no fixed ports (the supervisor picks free ones) and WORK_MS 500 instead of 5000. The Component
 * and the trigger settings are the example's own: that is what this test is about.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import YAML from 'yaml';
import { requireBroker, uniqueName, type LocalBroker } from '../support/brokers.js';
import { deleteQueues } from '../backends/rabbitmq/helpers.js';
import { targets as chaosTargets } from '../chaos/brokers.js';
import { ROOT, running, startUp, tempFolder, type UpProcess } from './harness.js';

const MESSAGES = 20;
const PROCESSED = /Hello World -- Received at: .* -- Finished at: /;
const SCALED_OBJECT = 'bindingconsumer-scaler';

interface Example {
  folder: string;
  broker?: LocalBroker;
  args?: string[];
  /** Removes what the run left on the broker under the queue name `q`. */
  cleanup?: (q: string) => Promise<void>;
}

/** The chaos test's cleanup for a broker (it deletes the queue, its dead letters and their rows or streams). */
function cleanupOf(broker: LocalBroker): (q: string) => Promise<void> {
  const target = chaosTargets.find((t) => t.broker === broker);
  if (!target) throw new Error(`no cleanup for ${broker}`);
  return (q) => target.cleanup(q);
}

const EXAMPLES: Example[] = [
  { folder: 'seed', args: ['--embedded'] },
  {
    folder: 'rabbitmq',
    broker: 'rabbitmq',
    cleanup: (q) => deleteQueues(q, `${q}-dlq`),
  },
  { folder: 'redis', broker: 'redis', cleanup: cleanupOf('redis') },
  { folder: 'postgresql', broker: 'postgresql', cleanup: cleanupOf('postgresql') },
  { folder: 'nats', broker: 'nats', cleanup: cleanupOf('nats') },
];

/** The example's YAML with its queue renamed; its run file pointed at this repository with no fixed ports. */
function copyExample(name: string, queue: string): string {
  const from = path.join(ROOT, 'examples', name);
  const to = tempFolder(`qscale-example-${name}-`);
  for (const f of fs.readdirSync(from)) {
    if (!/\.ya?ml$/.test(f)) continue;
    const text = fs.readFileSync(path.join(from, f), 'utf8');
    if (f === 'dapr.yaml') {
      const run = YAML.parse(text) as { apps: Array<Record<string, unknown>> };
      for (const app of run.apps) {
        app.appDirPath = ROOT;
        delete app.appPort;
        if (app.appID === 'consumer') app.env = { ...(app.env as object), WORK_MS: '500' };
      }
      fs.writeFileSync(path.join(to, f), YAML.stringify(run));
    } else {
      fs.writeFileSync(path.join(to, f), text.replace(/\bmsgqueue\b/g, queue));
    }
  }
  return to;
}

async function waitForLines(up: UpProcess, re: RegExp, n: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  let exited = false;
  void up.exited.then(() => (exited = true));
  while (Date.now() < end && !exited && up.countLines(re) < n) await new Promise((r) => setTimeout(r, 200));
  return up.countLines(re);
}

async function runExample(t: TestContext, ex: Example): Promise<void> {
  if (ex.broker && !(await requireBroker(t, ex.broker))) return;
  // Stream and queue names: letters, digits and '-' suit every broker here (NATS refuses '.').
  const queue = ex.broker ? uniqueName('msgqueue-e2e') : 'msgqueue';
  const folder = copyExample(ex.folder, queue);
  t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
  if (ex.cleanup) t.after(() => ex.cleanup?.(queue).catch(() => undefined));

  const up = await startUp(folder, [...(ex.args ?? []), '--hpa-sync-period', '1s']);
  let stopped = false;
  t.after(async () => {
    if (!stopped) await up.stop();
  });
  const ready = await up.waitFor((s) => s.producerUrl !== undefined && running(s, 'producer') >= 1, 60_000, 'the producer to be ready');
  assert.equal(running(ready, 'consumer'), 0, 'the consumer starts at 0 replicas');

  const res = await request(`${ready.producerUrl}/MessageProducer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count: MESSAGES, intervalMilliseconds: 0 }),
  });
  const body = await res.body.text();
  assert.equal(res.statusCode, 200, body);
  assert.deepEqual(JSON.parse(body), { sent: MESSAGES });

  const processed = await waitForLines(up, PROCESSED, MESSAGES, 120_000);
  const last = await up.waitFor((s) => !!s.queue && s.queue.ready === 0 && s.queue.inFlight === 0, 30_000, 'the queue to be empty').catch(() => undefined);
  const status = last ?? (await up.status());
  const context = `\nlast lines:\n${up.lines.slice(-40).join('\n')}`;
  assert.equal(processed, MESSAGES, `${MESSAGES} messages processed by the consumer${context}`);
  const fromZero = status.decisions.find((d) => d.scaledObject === SCALED_OBJECT && d.kind === 'keda' && d.from === 0 && d.to >= 1);
  assert.ok(fromZero, `the ScaledObject activated the consumer from 0: ${JSON.stringify(status.decisions)}${context}`);
  assert.ok(status.replicas.some((r) => r.appId === 'consumer'), 'consumer replicas ran');
  const so = status.scaledObjects.find((s) => s.name === SCALED_OBJECT);
  assert.equal(so?.conditions.ready.status, 'True', `the trigger reads: ${JSON.stringify(so)}`);

  const code = await up.stop();
  stopped = true;
  assert.equal(code, 0, `qscale up exits 0 on Ctrl-C${context}`);
  assert.equal(up.countLines(PROCESSED), MESSAGES, 'no message processed twice');
}

describe('examples run as is', { timeout: 300_000 }, () => {
  for (const ex of EXAMPLES) {
    test(`qscale up examples/${ex.folder}${ex.args ? ' ' + ex.args.join(' ') : ''}: ${MESSAGES} messages produced, ${MESSAGES} processed by a consumer scaled from 0`, { timeout: 180_000 }, (t) =>
      runExample(t, ex));
  }
});
