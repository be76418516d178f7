/**
 * A broker outage seen by send() and depth() — what an app's POST /v1.0/bindings/... and the supervisor's /status
 * call: each backend talks to its real broker through a relay the test can make refuse connections (the broker is
 * down) or swallow them (a black hole). Calls must fail with an error naming the component, the broker, its address
 * and the cause, never hang; and work again once the broker is back.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { componentFromYaml } from '../conformance/component.js';
import { createBackend } from '../../src/backends/registry.js';
import type { Backend } from '../../src/backends/types.js';
import { BrokerError } from '../../src/errors.js';
import { createLogger } from '../../src/util/log.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import { startProxy, type CuttableProxy } from './proxy.js';
import { PROXIED_BROKERS, type ProxiedBroker } from './proxied-brokers.js';

const logger = createLogger('outage-test').child({}, { level: process.env.QSCALE_LOG_LEVEL ?? 'silent' });
/** Guards against a hang, never asserts speed. */
const GIVE_UP_MS = 30_000;

/** Either words an outage may take: unreachable with its cause, or no answer within the bound (initTimeout 2s). */
function clearError(subject: string, broker: string, port: number): RegExp {
  const at = `${broker} at [^ ]*127\\.0\\.0\\.1:${port}[^ ]*`;
  return new RegExp(`^${subject}: cannot (send|read the queue depth)( \\(the message (was not|may still be) stored\\))?: ` +
    `(${at} is unreachable \\(.+\\); .+|no answer from ${at} within 2000 ms)\\. Check that ${broker} is running and reachable at that address$`);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof BrokerError, `expected a BrokerError, got ${String(err)}`);
  return err;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function open(t: TestContext, row: ProxiedBroker): Promise<{ b: Backend; proxy: CuttableProxy; subject: string } | undefined> {
  if (!(await needBroker(t, row.broker))) return undefined;
  const proxy = await startProxy(row.port);
  const queue = uniqueName('outage');
  const b = createBackend(componentFromYaml('orders', row.type, row.metadata(queue, proxy), { initTimeout: '2s', file: 'components/queue.yaml' }), { logger, dataDir: '.qscale-test' }, { embedded: false });
  t.after(async () => {
    await b.close();
    await proxy.close();
    await row.cleanup(queue);
  });
  await b.init();
  return { b, proxy, subject: `component orders \\(${row.type.replace(/\./g, '\\.')}\\)` };
}

for (const row of PROXIED_BROKERS) {
  describe(`${row.name} outage`, { timeout: 120_000 }, () => {
    it(`${row.name} outage - a broker that refuses connections fails send and depth at once, naming broker, address and cause; both work again when it is back`, async (t) => {
      const o = await open(t, row);
      if (!o) return;
      const { b, proxy, subject } = o;
      await b.send(Buffer.from('"before"'), {});
      assert.equal((await b.depth()).ready, 1);
      await proxy.setMode('refuse');
      const where = `[^ ]*127\\.0\\.0\\.1:${proxy.port}[^ ]*`;
      // The call under way when the connection drops may learn of it only from its bound; the next ones know.
      const first = await failure(b.send(Buffer.from('"during 1"'), {}));
      assert.match(first.message, clearError(subject, row.name, proxy.port));
      const sent = await failure(b.send(Buffer.from('"during 2"'), {}));
      assert.match(sent.message, new RegExp(`^${subject}: cannot send \\(the message was not stored\\): ${row.name} at ${where} is unreachable \\(.+\\); .+\\. Check that ${row.name} is running and reachable at that address$`));
      const depth = await failure(b.depth());
      assert.match(depth.message, new RegExp(`^${subject}: cannot read the queue depth: ${row.name} at ${where} is unreachable \\(.+\\)`));
      // Both from what the backend knows (the cause), not from having waited out a bound.
      for (const e of [sent, depth]) assert.doesNotMatch(e.message, /within \d+ ms/);
      await proxy.setMode('relay');
      await until(() => b.send(Buffer.from('"after"'), {}).then(() => true, () => false), 'a send once the broker is back');
      // What the queue holds says whether the errors told the truth: "not stored" never is, "may still be" may be.
      const want = ['"before"', '"after"'];
      const maybe = /may still be stored/.test(first.message) ? ['"during 1"'] : [];
      let stored = 0;
      await until(async () => (stored = (await b.depth().catch(() => undefined))?.ready ?? 0) >= want.length, 'the depth once the broker is back');
      const got: string[] = [];
      const ac = new AbortController();
      const giveUp = setTimeout(() => ac.abort(), GIVE_UP_MS);
      await b.receive(async (m) => {
        got.push(m.data.toString());
        if (got.length === stored) ac.abort();
        return true;
      }, { concurrency: 1, signal: ac.signal });
      clearTimeout(giveUp);
      assert.ok(want.every((w) => got.includes(w)), `received ${got.join(', ')}`);
      assert.deepEqual(got.filter((g) => !want.includes(g) && !maybe.includes(g)), [], 'nothing a send was told was not stored');
    });

    it(`${row.name} outage - a broker that accepts connections and never answers: send and depth fail with a clear error instead of hanging`, async (t) => {
      const o = await open(t, row);
      if (!o) return;
      const { b, proxy, subject } = o;
      await b.send(Buffer.from('"before"'), {});
      await proxy.setMode('blackhole');
      const clear = clearError(subject, row.name, proxy.port);
      assert.match((await failure(b.send(Buffer.from('"during"'), {}))).message, clear);
      assert.match((await failure(b.depth())).message, clear);
    });
  });
}
