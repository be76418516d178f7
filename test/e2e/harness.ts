/**
 * Runs `qscale up` as a real process over a folder the test writes, and reads what a user would see: its output
 * lines, `qscale status --json`, the consumer's log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, readdirSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { request } from 'undici';
import type { SystemStatus } from '../../src/supervisor/state.js';
import { loadResources } from '../../src/components/index.js';
import { createBackend } from '../../src/backends/registry.js';
import type { Backend } from '../../src/backends/types.js';
import { createLogger } from '../../src/util/log.js';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

export interface UpProcess {
  child: ChildProcess;
  /** Set as QSCALE_E2E_RUN in the environment of `qscale up`, inherited by every process it starts. */
  marker: string;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  lines: string[];
  dataDir: string;
  folder: string;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  countLines(re: RegExp): number;
  status(): Promise<SystemStatus>;
  waitFor(pred: (s: SystemStatus) => boolean, timeoutMs?: number, what?: string): Promise<SystemStatus>;
  /** SIGINT (or the signal given), then SIGKILL if it has not exited after 60 s. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Added to the environment of `qscale up` (and so of every process it starts). */
  env?: Record<string, string>;
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

export interface ScaledObjectOptions {
  maxReplicaCount: number;
  /** Seconds; KEDA's cooldown before 1 → 0. */
  cooldownPeriod: number;
  /** One scaleUp policy as a YAML flow map; default {type: Pods, value: 10, periodSeconds: 1}. No up stabilization. */
  scaleUpPolicy?: string;
  /** The scaleDown rules: a stabilization window (s) and one policy (flow map), or Disabled. */
  scaleDown: { window: number; policy: string } | 'Disabled';
  /** The `triggers:` entries, indented by two spaces. */
  triggers: string;
}

/** ScaledObject consumer-scaler for the app `consumer`: pollingInterval 1 s, from 0, with the behavior given. */
export function scaledObjectYaml(o: ScaledObjectOptions): string {
  const down = o.scaleDown === 'Disabled'
    ? '          selectPolicy: Disabled'
    : `          stabilizationWindowSeconds: ${o.scaleDown.window}\n          policies:\n          - ${o.scaleDown.policy}`;
  return `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  pollingInterval: 1
  cooldownPeriod: ${o.cooldownPeriod}
  minReplicaCount: 0
  maxReplicaCount: ${o.maxReplicaCount}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          policies:
          - ${o.scaleUpPolicy ?? '{type: Pods, value: 10, periodSeconds: 1}'}
        scaleDown:
${down}
  triggers:
${o.triggers}`;
}

/** The seed's trigger: azure-servicebus on msgqueue, one replica per 5 messages. */
export function serviceBusTrigger(activation = 0): string {
  return `  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      messageCount: "5"
      activationMessageCount: "${activation}"
`;
}

/**
 * The backend of the folder's component message-queue, opened in the test process the way a sidecar opens it: a
 * test sends (or reads) through the same code. The caller closes it.
 */
export async function queueBackend(folder: string, dataDir: string, embedded: boolean): Promise<Backend> {
  const { components } = await loadResources([folder]);
  const c = components.find((x) => x.name === 'message-queue');
  if (!c) throw new Error(`no component message-queue in ${folder}`);
  const logger = createLogger('test');
  logger.level = 'error';
  const b = createBackend(c, { logger, dataDir }, { embedded });
  try {
    await b.init();
  } catch (err) {
    await b.close().catch(() => undefined);
    throw err;
  }
  return b;
}

/**
 * A consumer that logs `start <id> pid=<pid>` on every delivery and `processed <id> pid=<pid>` when done (the id is
 * the message's `text` or `id`): a test can count deliveries, not only completions. Same HTTP contract as the seed's.
 */
export const LOGGING_CONSUMER = ['node', path.join(ROOT, 'dist/test/chaos/consumer.js')];

/** A run file for the seed's apps with this project's compiled apps (or another consumer command). */
export function runFile(
  consumerEnv: Record<string, string> = {},
  producerEnv: Record<string, string> = {},
  consumerCommand: string[] = ['node', 'dist/apps/consumer/main.js'],
): string {
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
    command: ${JSON.stringify(consumerCommand)}
    env:
${env({ WORK_MS: '5000', ...consumerEnv })}
`;
}

export async function startUp(folder: string, args: string[] = [], options: StartOptions = {}): Promise<UpProcess> {
  const dataDir = path.join(folder, '.qscale');
  const marker = randomBytes(8).toString('hex');
  const child = spawn(process.execPath, [MAIN, 'up', folder, '--data-dir', dataDir, ...args], {
    cwd: folder,
    env: { ...process.env, QSCALE_LOG_LEVEL: process.env.QSCALE_LOG_LEVEL ?? 'info', ...options.env, QSCALE_E2E_RUN: marker },
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
    marker,
    exited: exit,
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
    async stop(signal = 'SIGINT') {
      if (exited !== undefined) return exited;
      child.kill(signal);
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

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** One letter, as /proc/<pid>/stat has it: R, S, D, Z (zombie: exited, not yet reaped) ... */
  state: string;
  cmdline: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', cmdline };
  } catch {
    return undefined; // gone meanwhile
  }
}

function hasEnv(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry);
  } catch {
    return false;
  }
}

/**
 * Every live process of a `qscale up` run, itself excluded: its descendants by parent pid, and any process carrying
 * its marker in the environment (which also finds a child re-parented to init after its parent died). Zombies
 * (exited, not yet reaped) are left out.
 */
export function runProcesses(up: Pick<UpProcess, 'child' | 'marker'>): ProcInfo[] {
  const all: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) all.push(p);
  }
  const root = up.child.pid;
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const found = new Set<number>();
  const stack = [...(root !== undefined ? children.get(root) ?? [] : [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (found.has(pid)) continue;
    found.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  const entry = `QSCALE_E2E_RUN=${up.marker}`;
  for (const p of all) if (p.pid !== root && !found.has(p.pid) && hasEnv(p.pid, entry)) found.add(p.pid);
  return all.filter((p) => found.has(p.pid) && p.state !== 'Z').sort((a, b) => a.pid - b.pid);
}

/** The app and sidecar pids status shows, every replica, and the warm sidecars started ahead. */
export function statusPids(s: SystemStatus): number[] {
  return [...s.replicas.flatMap((r) => [r.pids?.app, r.pids?.sidecar]), ...(s.warmSidecars ?? []).flatMap((w) => [w.pid, w.appPid])]
    .filter((p): p is number => typeof p === 'number')
    .sort((a, b) => a - b);
}

/**
 * Checks that the processes of the run are exactly the ones status shows. Status and /proc are read one after the
 * other, so a replica starting or stopping between the reads can make them differ for a moment: a reading counts
 * only when two status reads around the /proc walk agree, and the check retries a few times before it reports.
 */
export async function processTreeMatchesStatus(up: UpProcess, tries = 25): Promise<{ ok: boolean; detail: string; pids: number[] }> {
  let detail = '';
  for (let i = 0; i < tries; i++) {
    const before = statusPids(await up.status());
    const procs = runProcesses(up);
    const after = statusPids(await up.status());
    const seen = procs.map((p) => p.pid);
    if (before.join() === after.join()) {
      if (seen.join() === after.join()) return { ok: true, detail: '', pids: seen };
      const extra = procs.filter((p) => !after.includes(p.pid)).map((p) => `${p.pid} (ppid ${p.ppid}, ${p.state}) ${p.cmdline}`);
      const missing = after.filter((p) => !seen.includes(p));
      detail = `status shows pids [${after.join(', ')}]; running: [${seen.join(', ')}]; not in status: ${extra.join('; ') || 'none'}; in status but not running: ${missing.join(', ') || 'none'}`;
    } else {
      detail = `status changed while reading /proc: [${before.join(', ')}] then [${after.join(', ')}]`;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { ok: false, detail, pids: [] };
}
