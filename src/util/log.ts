/**
 * One logger for every qscale process: pino underneath. With QSCALE_LOG_FORMAT=json it writes pino's JSON lines;
 * otherwise daprd's logfmt shape (`time="..." level=info msg="loaded component ..." app_id=consumer`), so the seed's
 * `kubectl logs ... -c daprd` lines read the same locally. Secrets never reach it: callers pass redacted metadata.
 */
import pino from 'pino';

export type Logger = pino.Logger;

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s;
}

/** Renders one pino JSON record as a logfmt line. Exported for tests. */
export function toLogfmt(record: Record<string, unknown>): string {
  const { level, time, msg, pid: _pid, hostname: _h, name, ...rest } = record;
  const parts = [
    `time=${logfmtValue(new Date(typeof time === 'number' ? time : Date.now()).toISOString())}`,
    `level=${LEVELS[Number(level)] ?? String(level)}`,
    `msg=${logfmtValue(msg ?? '')}`,
  ];
  if (name !== undefined) parts.push(`scope=${logfmtValue(name)}`);
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      parts.push(`error=${logfmtValue((v as { message?: unknown }).message ?? v)}`);
      continue;
    }
    parts.push(`${k}=${logfmtValue(v)}`);
  }
  return parts.join(' ');
}

export function createLogger(name: string, bindings: Record<string, string> = {}): Logger {
  const level = process.env.QSCALE_LOG_LEVEL ?? 'info';
  if (process.env.QSCALE_LOG_FORMAT === 'json') {
    return pino({ name, level, base: { ...bindings } }, pino.destination({ dest: 2, sync: true }));
  }
  const stream = {
    write(line: string): void {
      try {
        process.stderr.write(toLogfmt(JSON.parse(line) as Record<string, unknown>) + '\n');
      } catch {
        process.stderr.write(line);
      }
    },
  };
  return pino({ name, level, base: { ...bindings } }, stream);
}
