/**
 * For tests of `qscale up` as a user runs it: a marker in the environment, inherited by every process `up` starts,
 * tells which processes on this shared machine are the test's own.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import type { LogSink } from '../../src/supervisor/logs.js';
import { startSystem, type RunningSystem } from '../../src/supervisor/system.js';
import { MAIN, ROOT, tempFolder, writeFiles } from '../e2e/harness.js';
import { waitFor } from '../sidecar/support.js';

export const MARK = 'QSCALE_TEST_MARK';

export function newMark(): string {
  return randomBytes(8).toString('hex');
}

/** PIDs of live processes (other than this one) whose environment holds MARK=mark. */
export function processesMarked(mark: string): number[] {
  const needle = `${MARK}=${mark}`;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'latin1').split('\0');
      if (!env.includes(needle)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      if (/\) Z /.test(stat)) continue; // a zombie has exited
      out.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Runs a qscale command to the end with the marker set. */
export function qscaleMarked(args: string[], mark: string, cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, [MARK]: mark }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A server listening on a loopback port, holding it for the test. */
export async function occupyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  return { port: (s.address() as net.AddressInfo).port, close: () => new Promise((r) => s.close(() => r())) };
}

/** A Component of the embedded queue (served without a broker, with or without --embedded). */
export function embeddedComponent(queue: string, name = 'message-queue', type = 'bindings.qscale.embedded'): string {
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: ${type}
  version: v1
  metadata:
  - name: queueName
    value: ${queue}
`;
}

/** A ScaledObject on the consumer with one trigger (its YAML from "type:" on, indented by four). */
export function consumerScaledObject(trigger: string, spec = ''): string {
  return `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
${spec}  triggers:
  - ${trigger.trimStart()}`;
}

/** Polls `read` every 25 ms until it gives a value (not undefined or false); throws naming `what` after `timeoutMs`. */
export function until<T>(read: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  return waitFor(what, read, timeoutMs);
}

/**
 * A folder with one scaled app `consumer` (min 0, max 2, pollingInterval and cooldown 1 s) on the embedded queue
 * `jobs`, run by `command` from `appDir` with WORK_MS=0, and `files` beside.
 */
export function scaledConsumerFolder(prefix: string, command: readonly string[], appDir = '.', files: Record<string, string> = {}): string {
  const dir = tempFolder(prefix);
  writeFiles(dir, {
    ...files,
    'queue.yaml': embeddedComponent('jobs'),
    'scaling.yaml': consumerScaledObject(`type: azure-servicebus
    metadata:
      queueName: jobs
      messageCount: "5"
`, '  pollingInterval: 1\n  cooldownPeriod: 1\n  minReplicaCount: 0\n  maxReplicaCount: 2\n'),
    'dapr.yaml': `version: 1
apps:
  - appID: consumer
    appDirPath: ${appDir}
    command: ${JSON.stringify(command)}
    env:
      WORK_MS: "0"
`,
  });
  return dir;
}

/** Every line of every process, with the prefix it was attached under, and the supervisor's own lines. */
export class Lines implements LogSink {
  readonly all: Array<{ prefix: string; line: string }> = [];
  readonly system: (line: string) => void = (line) => this.all.push({ prefix: 'qscale', line });
  attach(child: ChildProcess, prefix: string): void {
    for (const s of [child.stdout, child.stderr]) if (s) readline.createInterface({ input: s }).on('line', (line) => this.all.push({ prefix, line }));
  }
  of(prefix: string): string[] {
    return this.all.filter((l) => l.prefix === prefix).map((l) => l.line);
  }
  /** How many times the consumer logged `processed <id>`. */
  processed(id: string): number {
    return this.all.filter((l) => new RegExp(`^processed ${id} pid=`).test(l.line)).length;
  }
}

/** `qscale up`'s supervisor in process over a scaledConsumerFolder: HPA sync 1 s, no down stabilization, instant activation. */
export function startScaled(dir: string, logs: LogSink, warm: { warmSidecar: boolean; warmApp?: boolean }): Promise<RunningSystem> {
  return startSystem({
    folder: dir,
    embedded: true,
    dataDir: path.join(dir, '.qscale'),
    syncPeriodMs: 1000,
    downscaleStabilizationMs: 0,
    graceMs: 5000,
    controlPort: 0,
    instantActivation: true,
    ...warm,
    logs,
  });
}
