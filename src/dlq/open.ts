/**
 * Where `qscale dlq` and `qscale queue purge` get their dead letters: from the `qscale up` running this system (it
 * knows whether it runs --embedded and the components as it resolved them), else from the backends themselves.
 */
import path from 'node:path';
import { readSupervisorFile } from '../supervisor/state.js';
import { resolveSystemPath, systemBindings } from './bindings.js';
import { RemoteDeadLetters } from './remote.js';
import { DeadLetterService, type DeadLetterApi } from './service.js';
import { createLogger } from '../util/log.js';

export interface OpenOptions {
  /** PATH: a run file or a folder. */
  path: string;
  runFile?: string;
  embedded: boolean;
  dataDir: string;
  /** A supervisor's control URL: always go through it. */
  url?: string;
}

export interface Opened {
  api: DeadLetterApi;
  /** "the qscale up running it (http://127.0.0.1:…)" or "its backends (--embedded)". */
  via: string;
  remote: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function openDeadLetters(opts: OpenOptions): Promise<Opened> {
  if (opts.url) return { api: new RemoteDeadLetters(opts.url.replace(/\/+$/, '')), via: `the supervisor at ${opts.url}`, remote: true };
  const { folder, runFile } = await resolveSystemPath(opts.path, opts.runFile);
  const running = await readSupervisorFile(opts.dataDir);
  if (running && alive(running.pid) && path.resolve(running.folder) === path.resolve(folder)) {
    return { api: new RemoteDeadLetters(running.controlUrl), via: `the qscale up running it (pid ${running.pid}, ${running.controlUrl})`, remote: true };
  }
  const bindings = await systemBindings(folder, { runFile, embedded: opts.embedded, dataDir: opts.dataDir });
  // A command's output is its answer: a backend's "connected to ..." is not news here (QSCALE_LOG_LEVEL shows it).
  const logger = createLogger('dlq');
  if (process.env.QSCALE_LOG_LEVEL === undefined) logger.level = 'warn';
  return {
    api: new DeadLetterService(bindings, { embedded: opts.embedded, dataDir: path.resolve(opts.dataDir), logger }),
    via: `its backends${opts.embedded ? ` (--embedded: the embedded queue in ${opts.dataDir})` : ''}`,
    remote: false,
  };
}
