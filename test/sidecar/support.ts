/**
 * Helpers for sidecar tests: components written as YAML in a temp folder (read by the real loader), a tiny app on
 * node:http that records what it receives, and the sidecar in-process or as a real `qscale sidecar` process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { request } from 'undici';
import { loadResources } from '../../src/components/index.js';
import { startSidecar, type SidecarHandle, type SidecarOptions } from '../../src/sidecar/index.js';
import { EmbeddedBackend, parseEmbeddedComponent } from '../../src/backends/embedded/index.js';
import type { QueueMessage, ResolvedComponent } from '../../src/backends/types.js';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
export const quiet = pino({ level: 'silent' });

export function tempDir(prefix = 'qscale-sidecar-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A Component YAML for the embedded queue; extra metadata as name → value. */
export function componentYaml(name: string, metadata: Record<string, string>, type = 'bindings.qscale.embedded'): string {
  const meta = Object.entries(metadata)
    .map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`)
    .join('\n');
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: ${type}
  version: v1
  metadata:
${meta}
`;
}

export function writeComponents(dir: string, files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
}

export async function components(dir: string): Promise<ResolvedComponent[]> {
  return (await loadResources([dir], { appId: 'test-app' })).components;
}

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface TinyApp {
  port: number;
  received: Received[];
  close(): Promise<void>;
}

/** An app whose answer per request is decided by `respond` (status code; may wait). */
export async function startApp(respond: (r: Received) => number | Promise<number>, port = 0): Promise<TinyApp> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(r);
      void Promise.resolve(respond(r)).then((status) => {
        res.statusCode = status;
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

export async function sidecarFor(dir: string, opts: Partial<SidecarOptions> = {}): Promise<SidecarHandle> {
  return startSidecar({
    appId: 'test-app',
    httpPort: 0,
    dataDir: path.join(dir, '.qscale'),
    components: await components(dir),
    logger: quiet,
    gracePeriodMs: 10_000,
    ...opts,
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): unknown;
}

export async function call(
  port: number,
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS',
  urlPath: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${port}${urlPath}`, { method, body, headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}

/** A reply is daprd's 400 for a body it cannot decode: ERR_MALFORMED_REQUEST, "failed deserializing HTTP body: ...". */
export function assertMalformed(r: Reply, message: RegExp): void {
  assert.equal(r.status, 400, r.text.slice(0, 300));
  const j = r.json() as { errorCode: string; message: string };
  assert.equal(j.errorCode, 'ERR_MALFORMED_REQUEST');
  assert.match(j.message, /^failed deserializing HTTP body: /);
  assert.match(j.message, message);
}

/** Reads messages from a queue of the embedded data folder the way another consumer would, acking each. */
export async function drainQueue(dataDir: string, queueName: string, max: number): Promise<QueueMessage[]> {
  const component: ResolvedComponent = {
    name: `reader-${queueName}`,
    type: 'bindings.qscale.embedded',
    version: 'v1',
    metadata: { queueName, maxConcurrentHandlers: '1' },
    initTimeoutMs: 5000,
    ignoreErrors: false,
    scopes: [],
    file: 'test',
    line: 1,
    where: () => ({}),
  };
  const backend = new EmbeddedBackend(component, parseEmbeddedComponent(component), { logger: quiet, dataDir });
  await backend.init();
  const got: QueueMessage[] = [];
  const ac = new AbortController();
  const depth = await backend.depth();
  const want = Math.min(max, depth.ready);
  if (want > 0) {
    await backend.receive(async (m) => {
      got.push(m);
      if (got.length >= want) ac.abort();
      return true;
    }, { concurrency: 1, signal: ac.signal });
  }
  await backend.close();
  return got;
}

export async function queueDepth(dataDir: string, queueName: string): Promise<{ ready: number; inFlight: number; deadLettered: number }> {
  const component: ResolvedComponent = {
    name: `depth-${queueName}`, type: 'bindings.qscale.embedded', version: 'v1', metadata: { queueName },
    initTimeoutMs: 5000, ignoreErrors: false, scopes: [], file: 'test', line: 1, where: () => ({}),
  };
  const backend = new EmbeddedBackend(component, parseEmbeddedComponent(component), { logger: quiet, dataDir });
  await backend.init();
  try {
    return await backend.depth();
  } finally {
    await backend.close();
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface SidecarProcess {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** The API port, read from the start-up line (fails at once, with the output, if the process exits first). */
  apiPort(): Promise<number>;
}

/** Spawns `qscale sidecar`; without --dapr-http-port it asks for any free port (no race with other test runs). */
export function spawnSidecar(args: string[], env: NodeJS.ProcessEnv = {}): SidecarProcess {
  const portArgs = args.includes('--dapr-http-port') || 'DAPR_HTTP_PORT' in env ? [] : ['--dapr-http-port', '0'];
  const child = spawn(process.execPath, [MAIN, 'sidecar', ...portArgs, ...args], {
    env: { ...process.env, QSCALE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) readline.createInterface({ input: s }).on('line', (l) => lines.push(l));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const waitForLine = async (re: RegExp, timeoutMs = 15_000): Promise<string> =>
    waitFor(`a line matching ${re}`, () => {
      const line = lines.find((l) => re.test(l));
      if (line === undefined && exitCode !== undefined) throw new Error(`qscale sidecar exited (${exitCode}) before a line matching ${re}:\n${lines.join('\n')}`);
      return line;
    }, timeoutMs);
  return {
    child,
    lines,
    exited,
    waitForLine,
    apiPort: async () => {
      const line = await waitForLine(/HTTP API listening on /);
      return Number(/:(\d+)(?:"|\s|$)/.exec(line.slice(line.indexOf('HTTP API listening on ')))?.[1]);
    },
  };
}
