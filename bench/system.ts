/**
 * Shared by the whole-system benchmarks: a folder with the seed's component, replicas started through the
 * supervisor's own Deployment (app + sidecar processes, as `qscale up` starts them), and per-replica memory.
 */
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { LogSink } from '../src/supervisor/logs.js';
import { ROOT } from './report.js';

export function seedComponent(extra: Record<string, string> = {}): string {
  const lines = Object.entries(extra).map(([k, v]) => `  - name: ${k}\n    value: "${v}"`).join('\n');
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: bindings.azure.servicebusqueues
  version: v1
  metadata:
  - name: connectionString
    value: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=placeholder"
  - name: queueName
    value: "msgqueue"
${lines}
`;
}

export function benchFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

export function runFileFor(consumerEnv: Record<string, string>, seedPorts = false): string {
  const env = Object.entries(consumerEnv).map(([k, v]) => `      ${k}: "${v}"`).join('\n');
  // With seedPorts, the appPort of each app as examples/seed/dapr.yaml fixes it (what `npm start` runs).
  const port = (p: number): string => (seedPorts ? `\n    appPort: ${p}` : '');
  return `version: 1
apps:
  - appID: producer
    appDirPath: ${ROOT}${port(5000)}
    command: ["node", "dist/apps/producer/main.js"]
  - appID: consumer
    appDirPath: ${ROOT}${port(6000)}
    command: ["node", "dist/apps/consumer/main.js"]
    env:
${env}
`;
}

/** A log sink that counts the consumer's "Finished at" lines and notes when each arrived. */
export class CountingLogs implements LogSink {
  processed = 0;
  firstLineAt: number | undefined;
  readonly waiters: Array<{ n: number; resolve: (at: number) => void }> = [];
  attach(child: ChildProcess, prefix: string): void {
    for (const s of [child.stdout, child.stderr]) {
      if (!s) continue;
      readline.createInterface({ input: s }).on('line', (line) => {
        if (!line.includes('-- Finished at:')) {
          if (process.env.QSCALE_BENCH_ECHO) process.stderr.write(`${prefix} | ${line}\n`);
          return;
        }
        const now = performance.now();
        this.processed += 1;
        this.firstLineAt ??= now;
        for (const w of [...this.waiters]) if (this.processed >= w.n) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(now);
        }
      });
    }
  }
  system(line: string): void {
    if (process.env.QSCALE_BENCH_ECHO) process.stderr.write(`qscale | ${line}\n`);
  }
  /** Resolves with performance.now() when `n` messages in total were processed. */
  until(n: number): Promise<number> {
    if (this.processed >= n) return Promise.resolve(performance.now());
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

/**
 * Resident, proportional and unique memory of a process, in MiB (PSS shares the node binary's pages fairly; USS is
 * what only this process maps, what killing it gives back).
 */
export function memoryOf(pid: number | undefined): { rss: number; pss: number; uss: number } {
  if (!pid) return { rss: NaN, pss: NaN, uss: NaN };
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024, uss: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 };
  } catch {
    return { rss: NaN, pss: NaN, uss: NaN };
  }
}

export const mib = (n: number): string => `${n.toFixed(1)} MiB`;
