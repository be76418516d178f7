/**
 * Dead-letter tests on the embedded queue: a folder with queue bindings as a user writes them, messages poisoned
 * through the binding's own backend (a handler that fails them with an app's answer), and fakes for a backend that
 * offers no dead letters and one whose broker does not answer.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadResources } from '../../src/components/index.js';
import { createBackend } from '../../src/backends/registry.js';
import { failed, type Backend, type QueueDepth, type ResolvedComponent } from '../../src/backends/types.js';
import { createLogger } from '../../src/util/log.js';
import type { DlqBinding } from '../../src/dlq/bindings.js';
import { componentYaml as sidecarComponentYaml } from '../sidecar/support.js';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

export const quiet = createLogger('test');
quiet.level = 'silent';

export function tempDir(prefix = 'qscale-dlq-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A queue binding's Component, dead-lettering on the first failure unless `extra` says otherwise. */
export function componentYaml(name: string, queueName: string, type = 'bindings.qscale.embedded', extra: Record<string, string> = {}): string {
  return sidecarComponentYaml(name, { queueName, maxDeliveryCount: '1', ...extra }, type);
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `qscale <args>` as a user runs it: its exit status and what it printed. */
export function qscale(args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { cwd, timeout: timeoutMs, env: { ...process.env, QSCALE_DATA_DIR: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A run file starting test/dlq/consumer.ts as app `consumer`: it refuses every message until `acceptFile` exists. */
export function refusingConsumerRunFile(acceptFile: string): string {
  return `version: 1\napps:\n  - appID: consumer\n    appDirPath: ${ROOT}\n    command: ["node", "dist/test/dlq/consumer.js"]\n    env:\n      ACCEPT_FILE: "${acceptFile}"\n`;
}

/** A folder with one embedded queue binding per name → queue given, as `qscale dlq PATH` reads it. */
export function systemFolder(bindings: Record<string, string>): { folder: string; dataDir: string } {
  const folder = tempDir();
  for (const [name, queue] of Object.entries(bindings)) writeFileSync(path.join(folder, `${name}.yaml`), componentYaml(name, queue));
  return { folder, dataDir: path.join(folder, '.qscale') };
}

export async function bindingsOf(folder: string): Promise<DlqBinding[]> {
  const { components } = await loadResources([folder]);
  return components.map((c) => ({ name: c.name, type: c.type, queue: c.metadata.queueName ?? '', component: c }));
}

export async function open(c: ResolvedComponent, dataDir: string): Promise<Backend> {
  const b = createBackend(c, { logger: quiet, dataDir }, { embedded: false });
  await b.init();
  return b;
}

export async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Sends each body with `metadata`, and fails each delivery as an app answering 500 would, until all are dead letters
 * (the components above dead-letter on the first failure).
 */
export async function poison(binding: DlqBinding, dataDir: string, bodies: Array<string | Buffer>, metadata: Record<string, string> = {}): Promise<void> {
  const b = await open(binding.component, dataDir);
  try {
    const before = (await b.depth()).deadLettered;
    for (const body of bodies) await b.send(Buffer.isBuffer(body) ? body : Buffer.from(body), metadata);
    const ac = new AbortController();
    const receiving = b.receive(async (m) => failed(`app answered 500: {"error":"cannot take ${m.data.toString('utf8').slice(0, 20)}"}`), { concurrency: 1, signal: ac.signal });
    try {
      await until(`${bodies.length} dead letters`, async () => (await b.depth()).deadLettered === before + bodies.length);
    } finally {
      ac.abort();
      await receiving;
    }
  } finally {
    await b.close();
  }
}

export async function send(binding: DlqBinding, dataDir: string, bodies: string[]): Promise<void> {
  const b = await open(binding.component, dataDir);
  try {
    for (const body of bodies) await b.send(Buffer.from(body), {});
  } finally {
    await b.close();
  }
}

export async function depth(binding: DlqBinding, dataDir: string): Promise<QueueDepth> {
  const b = await open(binding.component, dataDir);
  try {
    return await b.depth();
  } finally {
    await b.close();
  }
}

/** A backend with no dead letters and no purge: what a broker looks like until its dead letters land. */
export function plainBackend(name: string, type: string): Backend {
  return {
    name,
    type,
    init: async () => undefined,
    send: async () => undefined,
    receive: async () => undefined,
    depth: async () => ({ ready: 0, inFlight: 0, deadLettered: 3 }),
    close: async () => undefined,
  };
}

/** A backend that offers dead letters but whose broker never answers a read of them. */
export function silentBackend(name: string, type: string): Backend {
  const never = new Promise<never>(() => undefined);
  return {
    ...plainBackend(name, type),
    deadLetters: () => never,
    deadLetter: () => never,
    requeueDeadLetters: () => never,
    purgeDeadLetters: () => never,
  } as Backend;
}

/** A binding of another type, served by `make` (the fakes above). */
export function fakeBinding(name: string, type: string): DlqBinding {
  const component: ResolvedComponent = {
    name, type, version: 'v1', metadata: { queueName: name }, initTimeoutMs: 2000, ignoreErrors: false, scopes: [], file: 'fake.yaml', line: 1, where: () => ({}),
  };
  return { name, type, queue: name, component };
}
