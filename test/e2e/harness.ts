/**
 * Runs `qscale up` as a real process over a folder the test writes, and reads what a user would see: its output
 * lines, `qscale status --json`, the consumer's log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, readdirSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { request } from 'undici';
import type { SystemStatus } from '../../src/supervisor/state.js';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

export interface UpProcess {
  child: ChildProcess;
  lines: string[];
  dataDir: string;
  folder: string;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  countLines(re: RegExp): number;
  status(): Promise<SystemStatus>;
  waitFor(pred: (s: SystemStatus) => boolean, timeoutMs?: number, what?: string): Promise<SystemStatus>;
  stop(): Promise<number | null>;
}

export function tempFolder(prefix = 'qscale-e2e-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Copies examples/seed's Kubernetes YAML (not its run file) into a folder. */
export function copySeedManifests(into: string, which: 'legacy' | 'v2' = 'legacy'): void {
  const seed = path.join(ROOT, 'examples/seed');
  for (const f of readdirSync(seed)) {
    if (/\.ya?ml$/.test(f) && f !== 'dapr.yaml') copyFileSync(path.join(seed, f), path.join(into, f));
  }
  void which;
}

export function writeFiles(folder: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(folder, name);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
}

/** A run file for the seed's apps with this project's compiled apps. */
export function runFile(consumerEnv: Record<string, string> = {}, producerEnv: Record<string, string> = {}): string {
  const env = (e: Record<string, string>): string => Object.entries(e).map(([k, v]) => `      ${k}: "${v}"`).join('\n');
  return `version: 1
apps:
  - appID: producer
    appDirPath: ${ROOT}
    command: ["node", "dist/apps/producer/main.js"]
    env:
${env({ QSCALE_E2E: '1', ...producerEnv })}
  - appID: consumer
    appDirPath: ${ROOT}
    command: ["node", "dist/apps/consumer/main.js"]
    env:
${env({ WORK_MS: '5000', ...consumerEnv })}
`;
}

export async function startUp(folder: string, args: string[] = []): Promise<UpProcess> {
  const dataDir = path.join(folder, '.qscale');
  const child = spawn(process.execPath, [MAIN, 'up', folder, '--data-dir', dataDir, ...args], {
    cwd: folder,
    env: { ...process.env, QSCALE_LOG_LEVEL: process.env.QSCALE_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  for (const s of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      if (process.env.QSCALE_E2E_ECHO) process.stderr.write(`[up] ${l}\n`);
      for (const w of [...waiters]) if (w.re.test(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    });
  }
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => { exited = code; r(code); }));
  const controlUrl = async (): Promise<string> => {
    const f = JSON.parse(readFileSync(path.join(dataDir, 'supervisor.json'), 'utf8')) as { controlUrl: string };
    return f.controlUrl;
  };
  const up: UpProcess = {
    child,
    lines,
    dataDir,
    folder,
    waitForLine(re, timeoutMs = 60_000) {
      const found = lines.find((l) => re.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; last lines:\n${lines.slice(-30).join('\n')}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
        void exit.then((code) => { clearTimeout(t); reject(new Error(`qscale up exited (${code}) before a line matching ${re}; last lines:\n${lines.slice(-30).join('\n')}`)); });
      });
    },
    countLines(re) {
      return lines.filter((l) => re.test(l)).length;
    },
    async status() {
      const res = await request(`${await controlUrl()}/status`);
      return (await res.body.json()) as SystemStatus;
    },
    async waitFor(pred, timeoutMs = 60_000, what = 'condition') {
      const end = Date.now() + timeoutMs;
      let last: SystemStatus | undefined;
      while (Date.now() < end) {
        if (exited !== undefined) throw new Error(`qscale up exited (${exited}) while waiting for ${what}; last lines:\n${lines.slice(-30).join('\n')}`);
        try {
          last = await up.status();
          if (pred(last)) return last;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last?.hpa)} ${JSON.stringify(last?.queue)}; last lines:\n${lines.slice(-30).join('\n')}`);
    },
    async stop() {
      if (exited !== undefined) return exited;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
  };
  return up;
}

/** Replicas of an app that are not terminating. */
export function running(s: SystemStatus, appId = 'consumer'): number {
  return s.replicas.filter((r) => r.appId === appId && r.status !== 'Terminating' && r.status !== 'Stopped').length;
}
