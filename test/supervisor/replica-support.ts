/**
 * Replica tests run real processes: a tiny node app written into a temp folder and the real `qscale sidecar`, started
 * through the Deployment the way `qscale up` starts them. Every Deployment made here is killed by `cleanup()`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { Deployment, type DeploymentOptions } from '../../src/supervisor/deployment.js';
import { parseRunFile } from '../../src/supervisor/runfile.js';
import type { LogSink } from '../../src/supervisor/logs.js';
import type { ReplicaInfo } from '../../src/supervisor/replica.js';
import { pidAlive } from '../../src/supervisor/proctree.js';

/** The app: answers 200 on APP_PORT; POSTs wait HOLD_MS; with CHILD_PID_DIR it starts a child and records its pid. */
export const FAKE_APP = `
import http from 'node:http';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
const holdMs = Number(process.env.HOLD_MS ?? 0);
if (process.env.CHILD_PID_DIR) {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  fs.writeFileSync(path.join(process.env.CHILD_PID_DIR, 'child-of-' + process.pid), String(c.pid));
}
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST' && holdMs > 0) setTimeout(() => res.end(), holdMs);
    else res.end();
  });
});
server.listen(Number(process.env.APP_PORT), '127.0.0.1', () => console.log('app listening on ' + process.env.APP_PORT));
process.on('SIGTERM', () => process.exit(0));
`;

export class CapturedLogs implements LogSink {
  readonly system_: string[] = [];
  readonly output: string[] = [];
  attach(child: ChildProcess, prefix: string): void {
    for (const s of [child.stdout, child.stderr]) {
      if (!s) continue;
      readline.createInterface({ input: s }).on('line', (l) => {
        this.output.push(`${prefix} | ${l}`);
        if (process.env.QSCALE_TEST_ECHO) process.stderr.write(`${prefix} | ${l}\n`);
      });
    }
  }
  system(line: string): void {
    this.system_.push(line);
    if (process.env.QSCALE_TEST_ECHO) process.stderr.write(`qscale | ${line}\n`);
  }
  systemMatching(re: RegExp): string[] {
    return this.system_.filter((l) => re.test(l));
  }
  all(): string {
    return [...this.system_.map((l) => `qscale | ${l}`), ...this.output].join('\n');
  }
}

export interface Fixture {
  folder: string;
  runFile: string;
  logs: CapturedLogs;
  deployment(appId?: string, opts?: Partial<DeploymentOptions>): Deployment;
}

const made: Deployment[] = [];

/**
 * A folder with the fake app, a run file (`apps` is its apps list in YAML, indented by two) and optional components.
 */
export function fixture(apps: string, files: Record<string, string> = {}): Fixture {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'qscale-replica-'));
  writeFileSync(path.join(folder, 'app.mjs'), FAKE_APP);
  mkdirComponents(folder, files);
  const runFile = path.join(folder, 'dapr.yaml');
  const text = `version: 1\ncommon:\n  resourcesPath: ./components\napps:\n${apps.replaceAll('{{folder}}', folder)}`;
  writeFileSync(runFile, text);
  const parsed = parseRunFile(text, runFile);
  const logs = new CapturedLogs();
  return {
    folder,
    runFile,
    logs,
    deployment(appId, opts = {}) {
      const app = appId ? parsed.apps.find((a) => a.appId === appId) : parsed.apps[0];
      if (!app) throw new Error(`no app ${appId} in the test run file`);
      const d = new Deployment({
        app,
        embedded: true,
        dataDir: path.join(folder, '.qscale'),
        graceMs: 3000,
        logs,
        fixedPorts: false,
        runFile,
        crashBackoffMs: 200,
        ...opts,
      });
      made.push(d);
      return d;
    },
  };
}

function mkdirComponents(folder: string, files: Record<string, string>): void {
  const dir = path.join(folder, 'components');
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
}

/** Kills every Deployment a test made (after()). */
export async function cleanup(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => d.killAll()));
}

export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, logs?: CapturedLogs): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${logs ? `; output:\n${logs.all().split('\n').slice(-40).join('\n')}` : ''}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function only(d: Deployment): ReplicaInfo {
  const l = d.list();
  if (l.length !== 1) throw new Error(`expected one replica, got ${l.length}: ${JSON.stringify(l.map((r) => [r.name, r.status]))}`);
  return l[0]!;
}

export { pidAlive };

/** Every pid of a replica's pair, for "all gone" checks. */
export function pidsOf(r: ReplicaInfo): number[] {
  return [r.pids.app, r.pids.sidecar].filter((p): p is number => p !== undefined);
}

/** Waits for pids to be gone (a killed process takes a moment to be reaped). */
export async function allGone(pids: number[], timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pids.every((p) => !pidAlive(p))) return true;
    await sleep(50);
  }
  return pids.every((p) => !pidAlive(p));
}

/**
 * The live processes whose command line names `folder` (the fixture's apps pass it as an argument and the sidecars
 * get it as their resources path): the process tree to compare with what the Deployment lists.
 */
export function processesOf(folder: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie is gone, only not yet reaped
      if (cmd.includes(folder)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

export function embeddedComponent(name: string, metadata: Record<string, string>): string {
  const meta = Object.entries(metadata).map(([k, v]) => `  - name: ${k}\n    value: ${JSON.stringify(v)}`).join('\n');
  return `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${name}\nspec:\n  type: bindings.qscale.embedded\n  version: v1\n  metadata:\n${meta}\n`;
}

export async function post(port: number, urlPath: string, body: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${urlPath}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  await res.body.dump();
  return res.statusCode;
}
