/**
 * Self time out of a V8 .cpuprofile (what `node --cpu-prof` writes at exit): per function and per group of code
 * (qscale's own, node's http, node's other internals, ioredis, each other package, GC, native code outside JS).
 * The time between two samples is given to the first of them, as Chrome's DevTools do. A window (microseconds of
 * CLOCK_MONOTONIC, the clock of V8's sample times and of process.hrtime in every process) keeps only the samples
 * taken inside it: the drain, not the start.
 *
 * Self time says where the CPU went (a socket write is node's code); "by caller" gives each sample to the innermost
 * frame on its stack that belongs to qscale, node's http, ioredis or another package (a socket write under an ioredis
 * command is ioredis's, under a call to the app qscale's own HTTP client's), the work each part of the sidecar asks for.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

export interface SelfTime { name: string; group: string; ms: number }
export interface ProfileSummary { busyMs: number; idleMs: number; groups: SelfTime[]; byCaller: SelfTime[]; functions: SelfTime[] }

/** Native functions of node's socket writes and reads (no url in the profile). */
const SOCKET_IO = new Set(['writeUtf8String', 'writeLatin1String', 'writeBuffer', 'writev', 'writeAsciiString', 'readStart', 'readStop', 'shutdown']);
const IOREDIS = new Set(['ioredis', '@ioredis/commands', 'redis-parser', 'redis-errors', 'denque', 'cluster-key-slot', 'standard-as-callback']);

const PROGRAM = 'native, outside JS (program)';
const NATIVE = 'native, called from JS (C++ bindings, V8 builtins)';
const NET = 'node net + streams';
const TICKS = 'node timers, events, ticks';
const NODE = 'node, other internals';
/** Groups that never own a sample "by caller": node's plumbing, native code, GC. */
const PLUMBING = new Set(['GC', 'idle', 'root', 'other', PROGRAM, NATIVE, NET, TICKS, NODE]);

/** The group of one function: where its code lives. */
export function groupOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return PROGRAM;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(root)') return 'root';
  if (/\/dist\/(src|apps)\//.test(url)) return 'qscale';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) return IOREDIS.has(pkg) ? 'ioredis' : pkg;
  if (/^node:(_http_|http$|https$|internal\/http)/.test(url)) return 'node http';
  if (/^node:(net$|stream$|internal\/(net|stream_base_commons|streams\/))/.test(url) || SOCKET_IO.has(functionName)) return NET;
  if (/^node:(events$|timers$|internal\/(timers|process\/task_queues|async_hooks|event_target))/.test(url)) return TICKS;
  if (url.startsWith('node:')) return NODE;
  return url === '' ? NATIVE : 'other';
}

export function summarise(file: string, top = 15, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const caller = (id: number): string => {
    const own = groupOf(byId.get(id)!.callFrame.functionName, byId.get(id)!.callFrame.url);
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const g = groupOf(byId.get(at)!.callFrame.functionName, byId.get(at)!.callFrame.url);
      if (!PLUMBING.has(g)) return g;
    }
    return own;
  };
  const selfUs = new Map<number, number>();
  let at = p.startTime;
  let kept = 0;
  for (let i = 0; i < p.samples.length - 1; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    kept += 1;
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  if (kept === 0) throw new Error(`${file}: no sample inside ${window?.fromUs}..${window?.toUs} µs (the profile runs ${p.startTime}..${at} µs)`);
  const groups = new Map<string, number>();
  const callers = new Map<string, number>();
  const functions = new Map<string, SelfTime>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const group = groupOf(functionName, url);
    groups.set(group, (groups.get(group) ?? 0) + us / 1000);
    if (group === 'idle' || group === 'root') continue;
    const by = caller(id);
    callers.set(by, (callers.get(by) ?? 0) + us / 1000);
    const where = url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'}${where}`;
    const f = functions.get(name) ?? { name, group, ms: 0 };
    f.ms += us / 1000;
    functions.set(name, f);
  }
  const idleMs = groups.get('idle') ?? 0;
  groups.delete('idle');
  groups.delete('root');
  const sorted = (m: Map<string, number>): SelfTime[] => [...m].map(([name, ms]) => ({ name, group: name, ms })).sort((a, b) => b.ms - a.ms);
  const list = sorted(groups);
  return {
    busyMs: list.reduce((s, g) => s + g.ms, 0),
    idleMs,
    groups: list,
    byCaller: sorted(callers),
    functions: [...functions.values()].sort((a, b) => b.ms - a.ms).slice(0, top),
  };
}
