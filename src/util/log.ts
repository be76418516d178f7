/**
 * One logger for every qscale process: pino underneath. With QSCALE_LOG_FORMAT=json it writes pino's JSON lines;
 * otherwise daprd's logfmt shape (`time="..." level=info msg="loaded component ..." app_id=consumer`), so the seed's
 * `kubectl logs ... -c daprd` lines read the same locally. Secrets never reach it: callers pass redacted metadata.
 * pino is loaded on the first createLogger call, not on import: a module that only needs the Logger type, or a
 * process that writes its lines through createLineLogger (the consumer app), never pays for loading it.
 */
import { createRequire } from 'node:module';
import type pino from 'pino';

export type Logger = pino.Logger;

let pinoModule: typeof pino | undefined;
function loadPino(): typeof pino {
  pinoModule ??= createRequire(import.meta.url)('pino') as typeof pino;
  return pinoModule;
}

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
  const pino = loadPino();
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

type LogCall = (objOrMsg: object | string, msg?: string) => void;

/** The calls a small app makes on its logger. A pino Logger is one; createLineLogger returns a lighter one. */
export interface LineLogger {
  debug: LogCall;
  info: LogCall;
  warn: LogCall;
  error: LogCall;
}

const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** An Error as pino's err serializer records it (its message is what the logfmt line shows). */
function errorRecord(e: Error): Record<string, unknown> {
  return { type: e.name, message: e.message, stack: e.stack };
}

/**
 * A logger writing the same logfmt lines as createLogger's, without loading pino: for an app process whose start is
 * on the scale-from-zero path. QSCALE_LOG_FORMAT=json, or a QSCALE_LOG_LEVEL pino would refuse, gets createLogger's
 * pino logger, so those cases read (and fail) exactly as before.
 */
export function createLineLogger(name: string, bindings: Record<string, string> = {}): LineLogger {
  const min = LEVEL_VALUES[process.env.QSCALE_LOG_LEVEL ?? 'info'];
  if (process.env.QSCALE_LOG_FORMAT === 'json' || min === undefined) return createLogger(name, bindings);
  const at = (level: number): LogCall => {
    if (level < min) return () => {};
    return (objOrMsg, msg) => {
      let fields: Record<string, unknown> = {};
      let text = msg;
      if (typeof objOrMsg === 'string') text = objOrMsg;
      else if (objOrMsg instanceof Error) fields = { err: errorRecord(objOrMsg) };
      else {
        fields = { ...(objOrMsg as Record<string, unknown>) };
        if (fields.err instanceof Error) fields.err = errorRecord(fields.err);
      }
      // Through JSON as pino's line is: toJSON applies, undefined fields drop out.
      const record = JSON.parse(JSON.stringify({ level, time: Date.now(), ...bindings, name, ...fields, ...(text !== undefined ? { msg: text } : {}) })) as Record<string, unknown>;
      process.stderr.write(toLogfmt(record) + '\n');
    };
  };
  return { debug: at(20), info: at(30), warn: at(40), error: at(50) };
}
