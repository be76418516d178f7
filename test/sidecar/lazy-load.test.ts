/**
 * A sidecar loads the client library of the broker it serves and no other: a replica on the embedded queue (a binding
 * or a pub/sub component) never pays the memory and start-up time of amqplib, pg, ioredis, nats or the Azure SDKs,
 * and never loads the chart renderer; nor prom-client before /metrics is scraped, nor cel-js without a CEL routing
 * rule, nor fastify (the API is served on node:http; fastify is the supervisor's); and a replica on Redis never loads
 * better-sqlite3. A real `qscale sidecar` runs with a hook (--import) that records every package resolved by import or
 * require; after it served one message and went idle it stops, and the list is read.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { call, componentYaml, spawnSidecar, startApp, tempDir, waitFor, writeComponents } from './support.js';
import { publish, pubsubYaml, startPubSubApp } from '../pubsub/support.js';
import { needBroker, uniqueName } from '../support/brokers.js';

/**
 * Broker clients and the chart renderer; prom-client (and the OpenTelemetry API it pulls in) until /metrics is
 * scraped; cel-js unless a subscription routes by a CEL rule.
 */
const NEVER = [
  'amqplib', 'pg', 'ioredis', 'nats', '@azure/service-bus', '@azure/identity', 'long', 'vega', 'vega-lite',
  'prom-client', '@opentelemetry/api', '@marcbachmann/cel-js',
  // fastify and the packages only its tree brings
  'fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'ajv', 'toad-cache', 'secure-json-parse',
  '@fastify/ajv-compiler', '@fastify/error', '@fastify/fast-json-stringify-compiler', '@fastify/proxy-addr',
  // qscale's own modules of the other brokers
  'qscale:backends/nats', 'qscale:backends/postgresql', 'qscale:backends/rabbitmq', 'qscale:backends/redis',
];

/**
 * An --import module: ESM resolutions are reported by a loader hook (it runs on its own thread), CommonJS ones are
 * in require's cache; at exit the package names (and `qscale:backends/<folder>` for qscale's own broker code) go
 * to `out`.
 */
function loadHook(dir: string, out: string): string {
  const file = path.join(dir, 'record-packages.mjs');
  writeFileSync(file, `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
const { port1, port2 } = new MessageChannel();
const seen = new Set();
port1.on('message', (url) => seen.add(url));
port1.unref();
const hook = 'let port; export function initialize(d) { port = d.port; } ' +
  'export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }';
register('data:text/javascript,' + encodeURIComponent(hook), import.meta.url, { data: { port: port2 }, transferList: [port2] });
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const names = new Set();
  for (const f of [...seen, ...Object.keys(require('node:module')._cache)]) {
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f);
    if (m) names.add(m[1]);
    const own = /dist\\/src\\/backends\\/([^/]+)\\//.exec(f);
    if (own) names.add('qscale:backends/' + own[1]);
  }
  writeFileSync(${JSON.stringify(out)}, [...names].sort().join('\\n'));
});
`);
  return file;
}

async function packagesOfIdleSidecar(
  dir: string, appPort: number, serveOne: (apiPort: number) => Promise<void>, needs: readonly string[] = ['pino', 'better-sqlite3'],
): Promise<string[]> {
  const out = path.join(dir, 'packages.txt');
  const hook = loadHook(dir, out);
  const sc = spawnSidecar(
    ['--app-id', 'consumer', '--app-port', String(appPort), '--resources-path', dir, '--data-dir', path.join(dir, '.qscale')],
    { NODE_OPTIONS: `--import ${pathToFileURL(hook).href}` },
  );
  try {
    const port = await sc.apiPort();
    await serveOne(port);
    sc.child.kill('SIGTERM');
    assert.equal(await sc.exited, 0, sc.lines.join('\n'));
  } finally {
    sc.child.kill('SIGKILL');
  }
  const names = readFileSync(out, 'utf8').split('\n');
  // The hook sees what a sidecar does need: it would otherwise prove nothing.
  for (const needed of needs) assert.ok(names.includes(needed), `${needed} not seen: ${names.join(', ')}`);
  return names;
}

function assertNoneOf(names: string[], never: readonly string[] = NEVER): void {
  const loaded = never.filter((n) => names.includes(n));
  assert.deepEqual(loaded, [], `loaded without a component that needs them: ${loaded.join(', ')}`);
}

/** The packages of a sidecar on `dir`'s components once one message sent to its binding `jobs` reached the app. */
async function packagesAfterOneMessage(dir: string, needs?: readonly string[]): Promise<string[]> {
  const app = await startApp(() => 200);
  try {
    return await packagesOfIdleSidecar(dir, app.port, async (port) => {
      const r = await call(port, 'POST', '/v1.0/bindings/jobs', JSON.stringify({ operation: 'create', data: 'one' }));
      assert.equal(r.status, 204);
      await waitFor('the delivery', () => app.received.some((q) => q.method === 'POST' && q.url === '/jobs'));
    }, needs);
  } finally {
    await app.close();
  }
}

describe('qscale sidecar - broker libraries load only for the broker in use', { timeout: 120_000 }, () => {
  it('an embedded binding: a message is delivered, and no other broker library (nor the chart renderer) was loaded', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('jobs', { queueName: 'lazy' }) });
    assertNoneOf(await packagesAfterOneMessage(dir));
  });

  it('an embedded pub/sub component: an event is delivered, and no other broker library was loaded', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    writeComponents(dir, { 'pubsub.yaml': pubsubYaml('events') });
    const app = await startPubSubApp([{ pubsubname: 'events', topic: 'orders', route: '/orders' }]);
    try {
      const names = await packagesOfIdleSidecar(dir, app.port, async (port) => {
        // Published again until the subscription is up: an event sent before it has no queue to land in.
        await waitFor('the event in the app', async () => {
          if (app.got.some((d) => d.url === '/orders')) return true;
          assert.equal((await publish(port, 'events', 'orders', '{"n":1}')).status, 204);
          return false;
        });
      });
      assertNoneOf(names);
    } finally {
      await app.close();
    }
  });

  it('a Redis binding: a message is delivered, and neither better-sqlite3 nor another broker library was loaded', { timeout: 60_000 }, async (t: TestContext) => {
    if (!(await needBroker(t, 'redis'))) return;
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('jobs', { redisHost: '127.0.0.1:6379', queueName: uniqueName('lazy') }, 'bindings.qscale.redis') });
    const names = await packagesAfterOneMessage(dir, ['pino', 'ioredis']);
    assertNoneOf(names, [...NEVER.filter((n) => n !== 'ioredis' && n !== 'qscale:backends/redis'), 'better-sqlite3']);
  });
});
