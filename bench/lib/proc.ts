/**
 * What a process costs, read from /proc: CPU seconds so far (utime + stime of /proc/<pid>/stat) and memory
 * (bench/system.ts memoryOf, from /proc/<pid>/smaps_rollup).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { memoryOf } from '../system.js';

export { memoryOf };
export type Memory = ReturnType<typeof memoryOf>;

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** User + system CPU seconds the process has used so far (resolution 1 / CLK_TCK, 10 ms here); NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3: utime is field 14, stime field 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

const larger = (x: number, y: number): number => (Number.isNaN(x) ? y : Number.isNaN(y) ? x : Math.max(x, y));

/** The larger of each figure (a sample that failed, NaN, is ignored): a peak kept over samples. */
export function maxMemory(a: Memory | undefined, b: Memory): Memory {
  if (!a) return b;
  return { rss: larger(a.rss, b.rss), pss: larger(a.pss, b.pss), uss: larger(a.uss, b.uss) };
}
