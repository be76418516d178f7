/**
 * One suite over every pub/sub component type: what apps behind sidecars would notice. Replicas of one app share a
 * subscription, different apps each get every event, a prepared subscription keeps events for an app at zero replicas,
 * a failed event comes again, a stopped subscriber loses nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPubSub } from '../../src/pubsub/registry.js';
import type { PubSub } from '../../src/pubsub/types.js';
import type { HandlerResult, QueueMessage } from '../../src/backends/types.js';
import { createLogger } from '../../src/util/log.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import { pubsubRows, type PubSubRow } from './pubsub-table.js';
import { GIVE_UP_MS, until } from './harness.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-pubsub-conformance-'));
const logger = createLogger('pubsub-conformance').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });

interface Env {
  id: string;
  topic(n?: number): string;
  open(appId: string): Promise<PubSub>;
}

async function setup(t: TestContext, row: PubSubRow, topicCount = 1): Promise<Env | undefined> {
  const skip = row.skipReason?.();
  if (skip) {
    t.skip(skip);
    return undefined;
  }
  if (row.needs && !(await needBroker(t, row.needs))) return undefined;
  const id = uniqueName(`ps-${row.name}`);
  const topics = Array.from({ length: topicCount }, (_, i) => `${id}-t${i}`);
  await row.before?.(id, topics);
  const opened: PubSub[] = [];
  t.after(async () => {
    for (const p of opened) await p.close();
    await row.cleanup?.(id, topics);
  });
  return {
    id,
    topic: (n = 0) => topics[n] ?? assert.fail(`topic ${n} not set up`),
    async open(appId) {
      const p = createPubSub(row.makeComponent(id), { logger, dataDir, appId });
      opened.push(p);
      await p.init();
      return p;
    },
  };
}

interface Running {
  got: QueueMessage[];
  stop(): Promise<void>;
}

/** Subscribes until stop(); the handler's answer decides (default: processed). */
function run(p: PubSub, topic: string, handler: (m: QueueMessage) => Promise<HandlerResult> = async () => true, concurrency = 4): Running {
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS * 2);
  const done = p.subscribe({ topic, metadata: {} }, async (m) => {
    const r = await handler(m);
    if (r === true) got.push(m);
    return r;
  }, { concurrency, signal: ac.signal });
  return {
    got,
    async stop() {
      ac.abort();
      clearTimeout(giveUp);
      await done;
    },
  };
}

const texts = (ms: QueueMessage[]): string[] => ms.map((m) => m.data.toString()).sort();
const events = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => JSON.stringify({ tag, i }));

for (const row of pubsubRows) {
  const name = (what: string): string => `pubsub conformance ${row.name} - ${what}`;

  test(name('a published event reaches a subscriber with exactly its bytes'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row);
    if (!env) return;
    const app = await env.open('app-a');
    await app.prepare({ topic: env.topic(), metadata: {} });
    const sub = run(app, env.topic());
    const pub = await env.open('publisher');
    const sent = ['{"order":1,"note":"naïve café ✓"}', '{"order":2}', '"just a string"'];
    for (const s of sent) await pub.publish(env.topic(), Buffer.from(s), {});
    await until(() => sub.got.length >= sent.length, 'all events received');
    await sub.stop();
    assert.deepEqual(texts(sub.got), [...sent].sort());
  });

  const fanOut = row.fanOut !== false;
  test(name(fanOut ? 'replicas of one app share the subscription; another app gets every event' : 'replicas of one app share the queue'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row);
    if (!env) return;
    const [a1, a2] = [await env.open('app-a'), await env.open('app-a')];
    const b = fanOut ? await env.open('app-b') : undefined;
    await a1.prepare({ topic: env.topic(), metadata: {} });
    await b?.prepare({ topic: env.topic(), metadata: {} });
    const slow = async (): Promise<true> => (await new Promise((r) => setTimeout(r, 5)), true);
    const s1 = run(a1, env.topic(), slow, 2);
    const s2 = run(a2, env.topic(), slow, 2);
    const sb = b ? run(b, env.topic()) : undefined;
    const pub = await env.open('publisher');
    const sent = events(30, 'share');
    for (const s of sent) await pub.publish(env.topic(), Buffer.from(s), {});
    await until(() => s1.got.length + s2.got.length >= sent.length && (sb?.got.length ?? sent.length) >= sent.length, 'every subscription got the events');
    await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show
    for (const s of [s1, s2, sb]) await s?.stop();
    assert.deepEqual(texts([...s1.got, ...s2.got]), [...sent].sort(), 'app-a: each event processed once across its replicas');
    if (sb) assert.deepEqual(texts(sb.got), [...sent].sort(), 'app-b: every event');
  });

  test(name('a prepared subscription keeps events for an app with no replica running'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row);
    if (!env) return;
    const later = await env.open('app-c');
    await later.prepare({ topic: env.topic(), metadata: {} });
    const pub = await env.open('publisher');
    const sent = events(5, 'kept');
    for (const s of sent) await pub.publish(env.topic(), Buffer.from(s), {});
    await new Promise((r) => setTimeout(r, 200));
    const sub = run(later, env.topic());
    await until(() => sub.got.length >= sent.length, 'kept events delivered once the app runs');
    await sub.stop();
    assert.deepEqual(texts(sub.got), [...sent].sort());
  });

  test(name('a failed event comes again and is processed once it succeeds'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row);
    if (!env) return;
    const app = await env.open('app-a');
    await app.prepare({ topic: env.topic(), metadata: {} });
    const attempts = new Map<string, number>();
    const sub = run(app, env.topic(), async (m) => {
      const k = m.data.toString();
      const n = (attempts.get(k) ?? 0) + 1;
      attempts.set(k, n);
      return n >= 2;
    });
    const pub = await env.open('publisher');
    const sent = events(3, 'retry');
    for (const s of sent) await pub.publish(env.topic(), Buffer.from(s), {});
    await until(() => sub.got.length >= sent.length, 'every event processed after a failure');
    await new Promise((r) => setTimeout(r, 300));
    await sub.stop();
    assert.deepEqual(texts(sub.got), [...sent].sort(), 'each processed once');
    for (const s of sent) assert.ok((attempts.get(s) ?? 0) >= 2, `${s} was delivered again after failing`);
  });

  test(name('a subscriber stopped mid-event loses nothing: the next replica gets it'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row);
    if (!env) return;
    const first = await env.open('app-a');
    await first.prepare({ topic: env.topic(), metadata: {} });
    let started!: () => void;
    const inHandler = new Promise<void>((r) => (started = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const sub1 = run(first, env.topic(), async () => {
      started();
      await released;
      return false; // the replica went away before it finished
    }, 1);
    const pub = await env.open('publisher');
    await pub.publish(env.topic(), Buffer.from('{"only":1}'), {});
    await inHandler;
    const stopping = sub1.stop();
    release();
    await stopping;
    const second = await env.open('app-a');
    const sub2 = run(second, env.topic());
    await until(() => sub2.got.length >= 1, 'the unfinished event reaches the next replica');
    await sub2.stop();
    assert.deepEqual(texts(sub2.got), ['{"only":1}']);
  });

  test(name('topics are kept apart'), { timeout: 120_000 }, async (t) => {
    const env = await setup(t, row, 2);
    if (!env) return;
    const app = await env.open('app-a');
    await app.prepare({ topic: env.topic(0), metadata: {} });
    const pub = await env.open('publisher');
    const sub = run(app, env.topic(0));
    await pub.publish(env.topic(1), Buffer.from('"other topic"'), {});
    await pub.publish(env.topic(0), Buffer.from('"this topic"'), {});
    await until(() => sub.got.length >= 1, 'this topic\'s event');
    await new Promise((r) => setTimeout(r, 300));
    await sub.stop();
    assert.deepEqual(texts(sub.got), ['"this topic"']);
  });
}
