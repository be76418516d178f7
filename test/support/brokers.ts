/**
 * Broker tests talk to the real servers on this machine. When one cannot be reached — or a feature a test needs is
 * off, such as RabbitMQ's management plugin — the test fails under CI=true (CI must start every broker and turn on
 * every feature: .ci/run does) and skips with a visible reason elsewhere.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { Backend } from '../../src/backends/types.js';

export async function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export const BROKER_PORTS = { rabbitmq: 5672, redis: 6379, postgresql: 5432, nats: 4222 } as const;
export type LocalBroker = keyof typeof BROKER_PORTS;

/** Broker features that are off on a machine as it comes, how to tell they are on, and how to turn them on. */
export const BROKER_FEATURES = {
  'rabbitmq-management': {
    what: 'the RabbitMQ management API (127.0.0.1:15672)',
    turnOn: 'rabbitmq-plugins enable rabbitmq_management',
    isOn: rabbitmqManagementUp,
  },
} as const;
export type BrokerFeature = keyof typeof BROKER_FEATURES;

/** The management API answers an authenticated request (the port alone opens before the API is ready). */
export async function rabbitmqManagementUp(): Promise<boolean> {
  try {
    const r = await fetch('http://127.0.0.1:15672/api/overview', {
      headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') },
      signal: AbortSignal.timeout(2000),
    });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * Returns true when the broker is reachable, or the feature is on. Otherwise: under CI=true throws (the run goes
 * red: CI must provide it); elsewhere marks the test skipped with the reason and how to provide it, and returns false.
 */
export async function requireBroker(t: TestContext, what: LocalBroker | BrokerFeature): Promise<boolean> {
  let reason: string;
  let remedy: string;
  if (what in BROKER_PORTS) {
    const port = BROKER_PORTS[what as LocalBroker];
    if (await portOpen(port)) return true;
    reason = `${what} is not reachable on 127.0.0.1:${port}`;
    remedy = 'start it';
  } else {
    const f = BROKER_FEATURES[what as BrokerFeature];
    if (await f.isOn()) return true;
    reason = `${f.what} is off`;
    remedy = f.turnOn;
  }
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: every broker and feature must be on; .ci/run does it): ${remedy}`);
  t.skip(`${reason}: ${remedy} to run this test`);
  return false;
}

/** requireBroker for a broker (kept for the tests that name a broker only). */
export function needBroker(t: TestContext, broker: LocalBroker): Promise<boolean> {
  return requireBroker(t, broker);
}

/** A queue name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** A port nothing listens on (it was free a moment ago): to listen on, or to be refused on. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A port connecting to which is refused (nothing listens on it). */
export const closedPort = freePort;

/**
 * Starts receiving from a backend with one handler that holds the first message it gets: resolves once that
 * message is in the handler (in flight). stop() releases it and ends the receive.
 */
export async function holdOne(b: Backend): Promise<{ stop: () => Promise<void> }> {
  const ac = new AbortController();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const inHandler = new Promise<void>((r) => (started = r));
  const receiving = b.receive(async () => (started(), await held, true), { concurrency: 1, signal: ac.signal });
  await inHandler;
  return {
    async stop() {
      ac.abort();
      release();
      await receiving;
    },
  };
}

/** A server that accepts connections and never says a word: a broker that hangs. */
export async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface AloneRun {
  /** 0 when it exited by itself; 2 the script threw; 3 something still held the process open after the script ended
   * (see openHandles); 4 the script itself never ended. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** What kept the process alive (process.getActiveResourcesInfo()), when it did not exit by itself. */
  openHandles: string[] | undefined;
}

/**
 * Runs an ES module script in a process of its own and reports whether that process exits by itself once the script
 * is done — the way `node --test` on one file exits only when every socket and timer was released. `imports` maps
 * names to module paths resolved from the calling test file (`import.meta.url`). A process still alive `graceMs`
 * after the script's end prints what holds it and exits 3; a script still running after `hangMs` exits 4.
 */
export async function runAlone(
  script: string,
  o: { from: string; imports: Record<string, string>; graceMs?: number; hangMs?: number },
): Promise<AloneRun> {
  const grace = o.graceMs ?? 10_000;
  const head = Object.entries(o.imports)
    .map(([name, rel]) => `import * as ${name} from ${JSON.stringify(new URL(rel, o.from).href)};`)
    .join('\n');
  const body = `${head}
setTimeout(() => {
  console.log('SCRIPT HUNG ' + JSON.stringify(process.getActiveResourcesInfo()));
  process.exit(4);
}, ${o.hangMs ?? 30_000}).unref();
try {
${script}
} catch (err) {
  console.log('SCRIPT FAILED: ' + (err && err.stack || err));
  process.exitCode = 2;
}
console.log('SCRIPT DONE');
const watchdog = setTimeout(() => {
  console.log('OPEN HANDLES ' + JSON.stringify(process.getActiveResourcesInfo().filter((r) => r !== 'Timeout')));
  process.exit(3);
}, ${grace});
watchdog.unref();
`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', body], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const m = /OPEN HANDLES (\[.*\])/.exec(stdout);
  return { code, stdout, stderr, openHandles: m?.[1] ? (JSON.parse(m[1]) as string[]) : undefined };
}
