/**
 * The pub/sub examples run as a user runs them: `qscale up examples/pubsub-<broker>` (a copy), 50 events published
 * while the consumer is at 0 replicas, KEDA's trigger on the subscription daprd derives scales it out, every event is
 * processed exactly once (the consumer's own log lines), and it goes back to 0. Then two apps subscribed to one topic,
 * each scaled from 0 by its own ScaledObject: each gets every event.
 *
 * What the copy changes: the topic (unique per run), the run file (this repository, free ports, 1.5 s of work instead
 * of 5 s), cooldownPeriod 3 s and pollingInterval 1 s; for Redis, a 5 s processingTimeout, so an event a stopped
 * replica had read ahead is claimed again within seconds rather than a minute. The component, its Subscription and
 * the triggers are the example's own.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { connect as natsConnect } from 'nats';
import { request } from 'undici';
import YAML from 'yaml';
import { requireBroker, uniqueName, type LocalBroker } from '../support/brokers.js';
import { deleteKeys } from '../backends/redis/helpers.js';
import { ROOT, running, startUp, tempFolder, type UpProcess } from './harness.js';
import type { SystemStatus } from '../../src/supervisor/state.js';

const EVENTS = 50;
const ARGS = ['--hpa-sync-period', '1s', '--downscale-stabilization', '3s', '--grace-period', '30s'];
const SCALED_OBJECT = 'pubsubconsumer-scaler';

interface Broker {
  example: string;
  broker?: LocalBroker;
  args?: string[];
  /** Removes what the run left on the broker for `topic`. */
  cleanup(topic: string): Promise<void>;
}

async function deleteRabbitmq(topic: string, queues: string[]): Promise<void> {
  const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
  try {
    const ch = await conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q);
    await ch.deleteExchange(topic);
  } finally {
    await conn.close();
  }
}

async function deleteStream(stream: string): Promise<void> {
  const nc = await natsConnect({ servers: 'nats://127.0.0.1:4222' });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

const BROKERS: Broker[] = [
  { example: 'pubsub-redis', broker: 'redis', cleanup: (topic) => deleteKeys(topic) },
  { example: 'pubsub-redis', args: ['--embedded'], cleanup: async () => undefined },
  { example: 'pubsub-rabbitmq', broker: 'rabbitmq', cleanup: (topic) => deleteRabbitmq(topic, [`consumer-${topic}`]) },
  { example: 'pubsub-nats', broker: 'nats', cleanup: (topic) => deleteStream(topic) },
];

/** The example's YAML for `topic`, its run file on this repository; `extraApps` appended to the run file. */
export function copyPubSubExample(example: string, topic: string, extraApps: Array<Record<string, unknown>> = []): string {
  const from = path.join(ROOT, 'examples', example);
  const to = tempFolder(`qscale-${example}-`);
  for (const f of fs.readdirSync(from)) {
    if (!/\.ya?ml$/.test(f) || f === 'kustomization.yaml') continue;
    let text = fs.readFileSync(path.join(from, f), 'utf8');
    if (f === 'dapr.yaml') {
      const run = YAML.parse(text) as { apps: Array<Record<string, unknown>> };
      for (const app of run.apps) {
        app.appDirPath = ROOT;
        delete app.appPort;
        const env = { ...(app.env as Record<string, string> | undefined) };
        if (env.TOPIC !== undefined) env.TOPIC = topic;
        if (app.appID === 'consumer') env.WORK_MS = '1500';
        app.env = env;
      }
      run.apps.push(...extraApps);
      fs.writeFileSync(path.join(to, f), YAML.stringify(run));
      continue;
    }
    text = text.replace(/\bmsgtopic\b/g, topic).replace(/cooldownPeriod: 300/g, 'cooldownPeriod: 3\n  pollingInterval: 1');
    if (f === 'pubsub.yaml' && example === 'pubsub-redis') {
      text += '    - name: processingTimeout\n      value: "5000"\n    - name: redeliverInterval\n      value: "1000"\n';
    }
    fs.writeFileSync(path.join(to, f), text);
  }
  return to;
}

/** Publishes each text as `{"text": ...}` through the producer's sidecar, as the producer app does. */
export async function publishTexts(up: UpProcess, topic: string, texts: string[]): Promise<void> {
  const s = await up.status();
  const producer = s.replicas.find((r) => r.appId === 'producer' && r.ready);
  assert.ok(producer, 'the producer replica runs');
  for (const text of texts) {
    const res: Awaited<ReturnType<typeof request>> = await request(`http://127.0.0.1:${producer.sidecarPort}/v1.0/publish/pubsub/${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    assert.equal(res.statusCode, 204, await res.body.text());
  }
}

/** Lines of app `appId`'s replicas saying `text` was processed. */
export function processedBy(up: UpProcess, appId: string, text: string): number {
  return up.countLines(new RegExp(`^${appId}-[0-9a-f]+-[0-9a-z]+ \\| ${text} -- Received at: .* -- Finished at: `));
}

async function setUp(t: TestContext, b: Broker, extraApps: Array<Record<string, unknown>> = [], edit?: (folder: string, topic: string) => void): Promise<{ up: UpProcess; topic: string } | undefined> {
  if (b.broker && !(await requireBroker(t, b.broker))) return undefined;
  const topic = uniqueName('pubsub-e2e');
  const folder = copyPubSubExample(b.example, topic, extraApps);
  edit?.(folder, topic);
  t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
  t.after(() => b.cleanup(topic).catch(() => undefined));
  const up = await startUp(folder, [...(b.args ?? []), ...ARGS]);
  t.after(() => up.stop());
  await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready), 60_000, 'the producer to be ready');
  return { up, topic };
}

describe('pub/sub examples: KEDA scales a subscriber from 0 and back', { timeout: 900_000 }, () => {
  for (const b of BROKERS) {
    test(`qscale up examples/${b.example}${b.args ? ' ' + b.args.join(' ') : ''}: ${EVENTS} events published at 0 replicas scale the consumer out, each processed once, back to 0`, { timeout: 240_000 }, async (t) => {
      const ready = await setUp(t, b);
      if (!ready) return;
      const { up, topic } = ready;
      const before = await up.status();
      assert.equal(running(before, 'consumer'), 0, 'the consumer starts at 0 replicas');
      assert.ok(up.lines.some((l) => /Subscription .* of app consumer .* made: its events are kept while consumer has no replica/.test(l)), 'qscale up made the subscription before the first trigger read');

      const texts = Array.from({ length: EVENTS }, (_, i) => `${topic}-event-${i}`);
      let peak = 0;
      const track = (s: SystemStatus): number => (peak = Math.max(peak, running(s, 'consumer')));
      await publishTexts(up, topic, texts);
      await up.waitFor((s) => track(s) >= 4, 60_000, 'the consumer scaled out');
      const done = await up.waitFor((s) => {
        track(s);
        return running(s, 'consumer') === 0 && s.replicas.every((r) => r.appId !== 'consumer') && texts.every((x) => processedBy(up, 'consumer', x) >= 1);
      }, 180_000, `all ${EVENTS} events processed and the consumer back to 0`);

      const context = `\nlast lines:\n${up.lines.slice(-40).join('\n')}`;
      for (const x of texts) assert.equal(processedBy(up, 'consumer', x), 1, `${x} processed exactly once${context}`);
      const fromZero = done.decisions.find((d) => d.scaledObject === SCALED_OBJECT && d.kind === 'keda' && d.from === 0 && d.to >= 1);
      assert.ok(fromZero, `the ScaledObject activated the consumer from 0: ${JSON.stringify(done.decisions)}`);
      const toZero = done.decisions.find((d) => d.scaledObject === SCALED_OBJECT && d.kind === 'keda' && d.to === 0);
      assert.ok(toZero, 'KEDA scaled it back to 0 after the cooldown');
      const so = done.scaledObjects.find((s) => s.name === SCALED_OBJECT);
      assert.equal(so?.conditions.ready.status, 'True', `every trigger reads: ${JSON.stringify(so?.triggers)}`);
      t.diagnostic(`peak consumer replicas: ${peak}`);
    });
  }

  const twoApps = (b: Broker): void => {
    test(`two apps subscribed to one topic (${b.args?.includes('--embedded') ? 'embedded' : b.broker}), each scaled from 0 by its own ScaledObject: each gets every event`, { timeout: 240_000 }, async (t) => {
      const audit = { appID: 'audit', appDirPath: ROOT, command: ['node', 'dist/apps/consumer/main.js'], env: { WORK_MS: '200' } };
      const ready = await setUp(t, b, [audit], (folder, topic) => {
        // The audit app: its own Subscription (scoped to it) and a ScaledObject reading its own consumer group.
        const sub = fs.readFileSync(path.join(folder, 'subscription.yaml'), 'utf8');
        fs.writeFileSync(path.join(folder, 'audit-subscription.yaml'), sub.replace(`name: ${topic}-subscription`, 'name: audit-subscription').replace('  - consumer', '  - audit'));
        const so = fs.readFileSync(path.join(folder, 'consumer-scaling.yaml'), 'utf8');
        fs.writeFileSync(path.join(folder, 'audit-scaling.yaml'), so.replace(/name: pubsubconsumer-scaler/, 'name: audit-scaler').replace('name: consumer', 'name: audit').replace(/consumerGroup: consumer/g, 'consumerGroup: audit'));
      });
      if (!ready) return;
      const { up, topic } = ready;
      const s0 = await up.status();
      assert.deepEqual([running(s0, 'consumer'), running(s0, 'audit')], [0, 0], 'both subscribers start at 0 replicas');
      const texts = Array.from({ length: 20 }, (_, i) => `${topic}-both-${i}`);
      await publishTexts(up, topic, texts);
      await up.waitFor(
        (s) => running(s, 'consumer') === 0 && running(s, 'audit') === 0 && texts.every((x) => processedBy(up, 'consumer', x) >= 1 && processedBy(up, 'audit', x) >= 1),
        180_000, 'every event processed by both apps, both back to 0',
      );
      for (const x of texts) {
        assert.deepEqual({ consumer: processedBy(up, 'consumer', x), audit: processedBy(up, 'audit', x) }, { consumer: 1, audit: 1 }, `${x} reached each app once`);
      }
      const s = await up.status();
      for (const name of [SCALED_OBJECT, 'audit-scaler']) {
        assert.ok(s.decisions.some((d) => d.scaledObject === name && d.kind === 'keda' && d.from === 0 && d.to >= 1), `${name} activated its app from 0`);
      }
    });
  };
  twoApps(BROKERS[1]!);
  twoApps(BROKERS[0]!);
});
