/**
 * Streams every process's output line by line, prefixed by its replica name, like `kubectl logs -f -l app=consumer`
 * with --prefix. Also keeps the last lines per replica for `qscale status`.
 */
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface LogSink {
  attach(child: ChildProcess, prefix: string): void;
  system(line: string): void;
}

const COLORS = [36, 33, 35, 32, 34, 91, 92, 93, 94, 95, 96];

export function createLogSink(out: NodeJS.WritableStream = process.stdout, color = Boolean((out as NodeJS.WriteStream).isTTY)): LogSink {
  const colorOf = new Map<string, number>();
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
  return {
    attach(child, prefix) {
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
        rl.on('line', (line) => write(prefix, line));
      }
    },
    system(line) {
      write('qscale', line);
    },
  };
}
