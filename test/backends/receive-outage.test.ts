/**
 * A broker outage seen by a receive loop that reconnects on its own: each backend receives from its real broker
 * through a relay the test makes refuse connections (the broker is down), then lets through again. The loop must
 * tell its caller once through onBrokerState (not once per retry, and without warning lines of its own: the sidecar
 * prints the outage), say once that it is back, and receive what was sent after.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { componentFromYaml } from '../conformance/component.js';
import { createBackend } from '../../src/backends/registry.js';
import type { Backend } from '../../src/backends/types.js';
import { needBroker, uniqueName } from '../support/brokers.js';
import { startProxy, type CuttableProxy } from './proxy.js';
import { PROXIED_BROKERS, type ProxiedBroker } from './proxied-brokers.js';

/** Guards against a hang, never asserts speed. */
const GIVE_UP_MS = 45_000;

interface Line {
  level: number;
  msg: string;
}

/** The backend's log at debug level, as lines the test reads. */
function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

async function until(check: () => boolean | Promise<boolean>, what: string, extra = ''): Promise<void> {
  const end = Date.now() + GIVE_UP_MS;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`gave up waiting: ${what}${extra ? `\n${extra}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Receiving {
  b: Backend;
  proxy: CuttableProxy;
  /** What onBrokerState was called with, in order. */
  states: unknown[];
  got: string[];
  lines: Line[];
}

async function receiveThroughProxy(t: TestContext, row: ProxiedBroker): Promise<Receiving | undefined> {
  if (!(await needBroker(t, row.broker))) return undefined;
  const proxy = await startProxy(row.port);
  const queue = uniqueName('rcvout');
  const { logger, lines } = capture();
  const b = createBackend(componentFromYaml('orders', row.type, row.metadata(queue, proxy), { initTimeout: '2s', file: 'components/queue.yaml' }), { logger, dataDir: '.qscale-test' }, { embedded: false });
  const states: unknown[] = [];
  const got: string[] = [];
  const ac = new AbortController();
  let receiving: Promise<void> | undefined;
  t.after(async () => {
    // The broker back first: a client cannot say goodbye through a relay that refuses, and would keep retrying.
    await proxy.setMode('relay');
    ac.abort();
    await receiving?.catch(() => undefined);
    await b.close();
    await proxy.close();
    await row.cleanup(queue);
  });
  await b.init();
  receiving = b.receive(async (m) => {
    got.push(m.data.toString());
    return true;
  }, { concurrency: 2, signal: ac.signal, onBrokerState: (err) => void states.push(err) });
  return { b, proxy, states, got, lines };
}

const show = (r: Receiving): string =>
  `onBrokerState: ${r.states.map((s) => (s instanceof Error ? s.message : String(s))).join(' | ')}\nlog:\n${r.lines.map((l) => `${l.level} ${l.msg}`).join('\n')}`;

/**
 * refuse: the broker is down, each attempt fails at once. blackhole: connections are accepted and never answered (a
 * network that swallows packets), each attempt fails only by its client's timeout, so fewer are sat through; once
 * the network is back the clients must find out by themselves (nothing resets what the black hole holds).
 */
const modes = [
  { mode: 'refuse', retries: 4, what: 'refuses connections' },
  { mode: 'blackhole', retries: 2, what: 'accepts connections and never answers' },
] as const;

for (const row of PROXIED_BROKERS) {
  describe(`${row.name} receive outage`, { timeout: 150_000 }, () => {
    for (const { mode, retries, what } of modes) it(`${row.name} receive outage - a broker that ${what} while receiving: onBrokerState hears of it once over ${retries} retries, naming broker, address and cause, then once that it is back; messages sent after are received`, async (t) => {
      const r = await receiveThroughProxy(t, row);
      if (!r) return;
      const { b, proxy, states, got, lines } = r;
      await b.send(Buffer.from('"before"'), {});
      await until(() => got.includes('"before"'), 'the message sent before the outage', show(r));
      assert.equal(states.length, 0, 'nothing to report while the broker is there');

      const from = lines.length;
      await proxy.setMode(mode);
      const attempts = (): number => lines.filter((l) => l.msg.startsWith('receiving failed: ')).length;
      await until(() => attempts() >= retries, `${retries} failed attempts`, show(r));
      assert.equal(states.length, 1, show(r));
      const [err] = states;
      assert.ok(err instanceof Error, show(r));
      const subject = `component orders \\(${row.type.replace(/\./g, '\\.')}\\)`;
      assert.doesNotMatch(err.message, /guest:guest/, 'no password in what is printed');
      assert.match(err.message, new RegExp(`^${subject}: ${row.name} at \\S*127\\.0\\.0\\.1:${proxy.port}\\S* is unreachable \\(.+\\)\\. Check that ${row.name} is running and reachable at that address$`));
      // The sidecar prints the outage: the backend itself says nothing above debug meanwhile.
      assert.deepEqual(lines.slice(from).filter((l) => l.level > 20).map((l) => l.msg), [], show(r));

      await proxy.setMode('relay');
      await until(() => states.length >= 2, 'onBrokerState(undefined) once the broker is back', show(r));
      assert.equal(states[1], undefined, show(r));
      await b.send(Buffer.from('"after"'), {});
      await until(() => got.includes('"after"'), 'the message sent after the outage', show(r));
      assert.equal(states.length, 2, show(r));
      assert.deepEqual(lines.slice(from).filter((l) => l.level > 30).map((l) => l.msg), [], show(r));
    });
  });
}
