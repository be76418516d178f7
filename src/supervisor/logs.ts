/**
 * Streams every process's output line by line, prefixed by its replica name, like `kubectl logs -f -l app=consumer`
 * with --prefix. Also keeps the last lines of each replica (app and sidecar together) for the dashboard.
 */
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface LogSink {
  attach(child: ChildProcess, prefix: string): void;
  system(line: string): void;
  /** The last lines of a replica, oldest first; the sidecar's lines start with "daprd | ". */
  tail?(replica: string): string[];
}

const COLORS = [36, 33, 35, 32, 34, 91, 92, 93, 94, 95, 96];
/** Lines kept per replica, and replicas kept (the oldest replica's lines go first once more have run). */
export const TAIL_LINES = 50;
const TAIL_REPLICAS = 64;
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

export function createLogSink(out: NodeJS.WritableStream = process.stdout, color = Boolean((out as NodeJS.WriteStream).isTTY)): LogSink {
  const colorOf = new Map<string, number>();
  const tails = new Map<string, string[]>();
  const paint = (prefix: string): string => {
    if (!color) return prefix;
    const base = prefix.split(' ')[0] ?? prefix;
    let c = colorOf.get(base);
    if (c === undefined) {
      c = COLORS[colorOf.size % COLORS.length]!;
      colorOf.set(base, c);
    }
    return `\x1b[${c}m${prefix}\x1b[0m`;
  };
  const write = (prefix: string, line: string): void => {
    out.write(`${paint(prefix)} | ${line}\n`);
  };
  const keep = (prefix: string, line: string): void => {
    const [replica, ...rest] = prefix.split(' ');
    if (!replica) return;
    let lines = tails.get(replica);
    if (!lines) {
      if (tails.size >= TAIL_REPLICAS) tails.delete(tails.keys().next().value!);
      lines = [];
      tails.set(replica, lines);
    }
    lines.push((rest.length > 0 ? `${rest.join(' ')} | ` : '') + line.replace(ANSI, ''));
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  return {
    attach(child, prefix) {
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
        rl.on('line', (line) => {
          keep(prefix, line);
          write(prefix, line);
        });
      }
    },
    system(line) {
      write('qscale', line);
    },
    tail(replica) {
      return [...(tails.get(replica) ?? [])];
    },
  };
}
