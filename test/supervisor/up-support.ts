/**
 * For tests of `qscale up` as a user runs it: a marker in the environment, inherited by every process `up` starts,
 * tells which processes on this shared machine are the test's own.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { MAIN, ROOT } from '../e2e/harness.js';

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
