/**
 * A warm standby for a scaled deployment's next replica: a sidecar and, when the app is a node script, a warm app
 * runtime (warm-app-main.ts).
 *
 * The sidecar is `qscale sidecar --standby` started ahead for a scaled deployment's next replica, on that replica's
 * ports and under its name (the run file's fixed appPort / daprHTTPPort when the replica adopting it is to own them,
 * fresh ones otherwise), with its components loaded and its API up. It dials no app and reads no input binding or
 * subscription until a replica adopts it (one line on its stdin); a scale-up then spawns only the app. It is not a
 * replica: replica counts, scaling decisions, status and metrics do not count it.
 *
 * Its stdin is a pipe from the supervisor, so a supervisor that dies (even by SIGKILL) closes it and the standby exits
 * without having read anything.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogSink } from './logs.js';
import { Proc } from './proctree.js';
import type { PortPool } from './ports.js';
import { appEnv, describeSpawnError, spawnSidecar, type SidecarSpec } from './replica.js';

const WARM_APP_MAIN = fileURLToPath(new URL('./warm-app-main.js', import.meta.url));

/**
 * The script and its arguments when `command` runs a node script with no node options (`node app.js a b`) and the
 * app's NODE_OPTIONS load no code: what a warm app runtime can become. Anything else (options that act before the
 * script, such as --require or --import; npm, tsx, a binary) starts as it is written, at scale-up.
 */
export function nodeScript(command: readonly string[], env: NodeJS.ProcessEnv = {}): string[] | undefined {
  const [cmd, script, ...rest] = command;
  if (cmd === undefined || script === undefined || script.startsWith('-')) return undefined;
  // NODE_OPTIONS that load code (a preload, a loader) would run it at 0 replicas.
  if (/(^|\s)(-r|--require|--import|--loader|--experimental-loader)(\s|=|$)/.test(env.NODE_OPTIONS ?? '')) return undefined;
  const base = path.basename(cmd);
  if (cmd !== process.execPath && base !== 'node' && base !== 'nodejs') return undefined;
  return [script, ...rest];
}

/**
 * A node process started with the replica's command's node, working directory and environment, running only
 * warm-app-main.js: `launch()` makes it run the app's script. Its output is the replica's log from the start.
 */
class WarmApp {
  readonly proc: Proc;

  constructor(node: string, private readonly argv: string[], cwd: string, env: NodeJS.ProcessEnv, name: string, logs: LogSink) {
    this.proc = new Proc(node, [WARM_APP_MAIN], { cwd, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] }, (e) => describeSpawnError(node, cwd, e));
    this.proc.child?.stdio[3]?.on('error', () => undefined);
    if (this.proc.child) logs.attach(this.proc.child, name);
  }

  /** Runs the script (once: the standby hands its runtime to one replica). */
  launch(): void {
    const control = this.proc.child?.stdio[3] as NodeJS.WritableStream | undefined;
    control?.write(`${JSON.stringify({ argv: this.argv })}\n`);
    control?.end();
  }
}

export interface WarmPorts {
  app: number;
  sidecar: number;
  metrics: number;
}

export class WarmSidecar {
  readonly proc: Proc;
  readonly startedAt = Date.now();
  private adopted = false;
  private released = false;
  private app: WarmApp | undefined;

  /**
   * `fixed` lists which of `ports` are the run file's (held in the pool like a fixed-port replica holds them, and
   * reusable at once when given back); empty for a standby on fresh ports.
   */
  constructor(
    readonly name: string,
    readonly ports: WarmPorts,
    spec: SidecarSpec & { command?: readonly string[] | undefined },
    logs: LogSink,
    private readonly pool: PortPool,
    readonly fixed: readonly number[] = [],
  ) {
    this.proc = spawnSidecar(spec, ports, undefined);
    // A write to a standby that has just exited must not throw in the supervisor.
    this.proc.child?.stdin?.on('error', () => undefined);
    if (this.proc.child) logs.attach(this.proc.child, `${name} daprd`);
    const env = appEnv(spec, ports);
    const argv = spec.command && nodeScript(spec.command, env);
    if (argv && this.proc.alive) {
      this.app = new WarmApp(spec.command![0]!, argv, spec.cwd, env, name, logs);
      if (!this.app.proc.alive) this.app = undefined;
    }
    // A standby whose sidecar died takes its app runtime with it; one whose runtime died keeps serving as a sidecar.
    void this.proc.ended.then(() => {
      if (!this.adopted) this.app?.proc.signal('SIGKILL');
    });
  }

  /** The warm app runtime's pid while it is alive and no replica has taken it. */
  get appPid(): number | undefined {
    return this.app?.proc.alive ? this.app.proc.pid : undefined;
  }

  /**
   * Hands the warm app runtime to the replica adopting this standby, and makes it run the app's script: undefined
   * when there is none (the app is not a node script, or the runtime has died), and the replica spawns its app.
   */
  takeApp(): Proc | undefined {
    const app = this.app;
    this.app = undefined;
    if (!app?.proc.alive) return undefined;
    app.launch();
    return app.proc;
  }

  /** True when it is on the run file's fixed ports: the replica adopting it owns them. */
  get onFixedPorts(): boolean {
    return this.fixed.length > 0;
  }

  get isAdopted(): boolean {
    return this.adopted;
  }

  /** Tells the standby which app it now serves: it dials that app and starts reading. */
  adopt(appPid: number): void {
    if (this.adopted) return;
    this.adopted = true;
    const stdin = this.proc.child?.stdin;
    if (stdin && !stdin.destroyed) stdin.write(`adopt ${appPid}\n`);
  }

  /** Gives its ports back to the pool (once), when it is gone and no replica owns them. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of [this.ports.app, this.ports.sidecar, this.ports.metrics]) this.pool.release(p, this.fixed.includes(p));
  }

  /** Stops a standby nobody adopted: SIGTERM (it has nothing to drain), SIGKILL after `waitMs`; its ports go back. */
  async stop(waitMs: number): Promise<void> {
    const app = this.app;
    this.app = undefined;
    const stopOne = async (p: Proc): Promise<void> => {
      if (!(await p.stop('SIGTERM', waitMs))) await p.stop('SIGKILL', waitMs);
    };
    await Promise.all([stopOne(this.proc), app ? stopOne(app.proc) : undefined]);
    if (!this.proc.alive) this.release();
  }

  /** kill -9 of a standby nobody will adopt; its ports go back once the sidecar is gone. */
  discard(): Promise<void> {
    this.app?.proc.signal('SIGKILL');
    this.app = undefined;
    this.proc.signal('SIGKILL');
    return this.proc.ended.then(() => this.release());
  }
}
