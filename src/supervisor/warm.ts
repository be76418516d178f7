/**
 * A warm sidecar: `qscale sidecar --standby` started ahead for a scaled deployment's next replica, on that replica's
 * ports and under its name (the run file's fixed appPort / daprHTTPPort when the replica adopting it is to own them,
 * fresh ones otherwise), with its components loaded and its API up. It dials no app and reads no input binding or
 * subscription until a replica adopts it (one line on its stdin); a scale-up then spawns only the app. It is not a
 * replica: replica counts, scaling decisions, status and metrics do not count it.
 *
 * Its stdin is a pipe from the supervisor, so a supervisor that dies (even by SIGKILL) closes it and the standby exits
 * without having read anything.
 */
import type { LogSink } from './logs.js';
import type { Proc } from './proctree.js';
import type { PortPool } from './ports.js';
import { spawnSidecar, type SidecarSpec } from './replica.js';

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

  /**
   * `fixed` lists which of `ports` are the run file's (held in the pool like a fixed-port replica holds them, and
   * reusable at once when given back); empty for a standby on fresh ports.
   */
  constructor(readonly name: string, readonly ports: WarmPorts, spec: SidecarSpec, logs: LogSink, private readonly pool: PortPool, readonly fixed: readonly number[] = []) {
    this.proc = spawnSidecar(spec, ports, undefined);
    // A write to a standby that has just exited must not throw in the supervisor.
    this.proc.child?.stdin?.on('error', () => undefined);
    if (this.proc.child) logs.attach(this.proc.child, `${name} daprd`);
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
    if (!(await this.proc.stop('SIGTERM', waitMs))) await this.proc.stop('SIGKILL', waitMs);
    if (!this.proc.alive) this.release();
  }
}
