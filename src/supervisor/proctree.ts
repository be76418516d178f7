/**
 * One child process of a replica, started in its own process group so a signal reaches everything it started (an
 * app run through `npm start` or `sh -c` has children of its own). Its end is one promise that settles once, whether
 * the process exited or could not be spawned at all, so an owner never has two exit paths to reconcile.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface ExitReason {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process never ran: the spawn error's code and a sentence for the user. */
  spawnError?: { code: string; message: string };
  at: number;
}

/** Every process group a Proc started that has not been seen gone; killed when the supervisor itself exits. */
const live = new Set<Proc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // The last line of defence: a supervisor that exits (even through an uncaught error) takes its replicas along.
  process.on('exit', () => {
    for (const p of live) p.signal('SIGKILL');
  });
}

export class Proc {
  readonly child: ChildProcess | undefined;
  readonly pid: number | undefined;
  /** Settles once: when the process has exited, or when it could not be spawned. Never rejects. */
  readonly ended: Promise<ExitReason>;
  exit: ExitReason | undefined;
  private settle!: (r: ExitReason) => void;

  constructor(command: string, args: string[], options: SpawnOptions, describeSpawnError: (err: NodeJS.ErrnoException) => string) {
    this.ended = new Promise((resolve) => (this.settle = resolve));
    const finish = (r: ExitReason): void => {
      if (this.exit) return;
      this.exit = r;
      live.delete(this);
      // Whatever the leader left behind in its group goes with it.
      if (this.pid !== undefined) signalGroup(this.pid, 'SIGKILL', false);
      this.settle(r);
    };
    let child: ChildProcess | undefined;
    try {
      child = spawn(command, args, { ...options, detached: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      finish({ code: null, signal: null, spawnError: { code: e.code ?? 'ERR_SPAWN', message: describeSpawnError(e) }, at: Date.now() });
    }
    this.child = child;
    this.pid = child?.pid;
    if (!child) return;
    if (this.pid !== undefined) {
      installExitHook();
      live.add(this);
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      // An error on a running process (a failed kill) is not its end; one that never got a pid is.
      if (child.pid === undefined) finish({ code: null, signal: null, spawnError: { code: err.code ?? 'ERR_SPAWN', message: describeSpawnError(err) }, at: Date.now() });
    });
    child.once('exit', (code, signal) => finish({ code, signal, at: Date.now() }));
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Signals the whole process group; never throws. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid === undefined || this.exit) return;
    signalGroup(this.pid, sig, true);
  }

  /** Sends `sig` and waits up to `timeoutMs` for the exit. True once the process is gone. */
  async stop(sig: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
    if (this.exit) return true;
    this.signal(sig);
    return this.waitExit(timeoutMs);
  }

  /** Waits up to `timeoutMs` for the exit, sending nothing. */
  waitExit(timeoutMs: number): Promise<boolean> {
    if (this.exit) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
      void this.ended.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

/**
 * A group id stays reserved while any member lives, so signalling it cannot reach a stranger. The leader's own pid is
 * tried only while its exit has not been seen (it may have left its group); once reaped, the pid may be reused.
 */
function signalGroup(pid: number, sig: NodeJS.Signals, leaderToo: boolean): void {
  try {
    process.kill(-pid, sig);
  } catch {
    if (!leaderToo) return;
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
}

/** "code 1", "SIGKILL", or the spawn error's sentence. */
export function describeExit(r: ExitReason): string {
  if (r.spawnError) return r.spawnError.message;
  if (r.signal) return r.signal;
  return `code ${r.code ?? '?'}`;
}

/** True while a process with this pid exists (for tests and checks). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return true;
}
