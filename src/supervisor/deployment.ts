/**
 * The replicas of one app, like a Deployment's ReplicaSet: scaleTo(n) starts or stops replicas. Which replica goes on
 * scale-in is chosen like the ReplicaSet controller does (not ready before ready, newer before older), with one
 * addition the cluster cannot make: a replica with less in-flight work goes first.
 *
 * What callers can rely on:
 * - scaleTo(n) always resolves: a reconcile that fails is said once on the log sink and the next scaleTo applies.
 *   After stopAll/killAll it does nothing, so no process is started once shutdown began.
 * - whenReady() resolves with the first replica that is Ready (app port accepts, sidecar healthz 204).
 * - list() shows every replica that has or may still get a process: starting, running, waiting in
 *   CrashLoopBackOff, terminating. A replica leaves the list only once its processes are gone.
 * - Lines for the user go through `logs.system`, one per event (a crash, a start failure shared by every replica
 *   said once), never one per poll.
 * - The run file's appPort / daprHTTPPort (fixedPorts) belong to one replica at a time and are never swapped for
 *   a random port: when taken, that replica waits in CrashLoopBackOff with a line naming the port. Scale-in keeps
 *   their owner while another Ready replica can go instead, so the fixed address stays served.
 * - With warmSidecar, one standby sidecar waits for the next replica (warm.ts) whenever every replica is Ready; it is
 *   in no count or list above, only in warmSidecar(). While no replica owns the fixed ports (and nothing else listens
 *   there), the standby is on them and the replica adopting it is their owner; otherwise it is on fresh ports and
 *   the next replica on fresh ports adopts it. A standby on fresh ports is swapped for one on the fixed ports once
 *   their owner has stopped and they are free: at any moment the fixed ports are held (PortPool) by one process pair
 *   or standby at most.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { RunFileApp } from './runfile.js';
import { Replica, type ReplicaInfo } from './replica.js';
import type { LogSink } from './logs.js';
import { portFree, sharedPorts, type PortPool } from './ports.js';
import { crashBackoffBase, crashBackoffPolicy, planRestart, type BackoffEntry } from './backoff.js';
import { WarmSidecar } from './warm.js';
import { describeExit } from './proctree.js';
import { errorMessage } from '../errors.js';

export interface DeploymentOptions {
  app: RunFileApp;
  embedded: boolean;
  dataDir: string;
  graceMs: number;
  logs: LogSink;
  /** Use the run file's appPort / daprHTTPPort for one replica (the producer's public address). */
  fixedPorts: boolean;
  /** The run file's path, named with the app's line in start errors ("dapr.yaml:12"). */
  runFile?: string;
  /**
   * The first CrashLoopBackOff delay in ms (doubling, capped at 30×). Default: QSCALE_CRASH_BACKOFF_MS, else the
   * kubelet's 10 s (cap 5 min).
   */
  crashBackoffMs?: number;
  /** Where fresh ports come from; one pool per process by default. */
  ports?: PortPool;
  /**
   * Keep one standby sidecar started ahead for the next replica (warm.ts), so a scale-up spawns only the app. For
   * scaled apps; off by default here, on in `qscale up` unless --no-warm-sidecar.
   */
  warmSidecar?: boolean;
  /**
   * With warmSidecar, the standby also holds a warm app runtime when the app's command is `node <script> …`
   * (warm-app-main.ts): a scale-up then starts no process at all. Default true; `qscale up --no-warm-app` turns it off.
   */
  warmApp?: boolean;
}

/** How long a standby sidecar may take to exit on SIGTERM (it has nothing to drain) before it is killed. */
const WARM_STOP_MS = 3000;

export class Deployment {
  readonly appId: string;
  private readonly replicas = new Map<string, Replica>();
  private readonly terminating = new Set<Replica>();
  /** Like a ReplicaSet's pod-template-hash: stable per app and command. */
  private readonly hash: string;
  private desired = 0;
  private reconciling: Promise<void> = Promise.resolve();
  private queued = false;
  private closed = false;
  private lastFailure: string | undefined;
  /** The replica holding the run file's fixed ports, if any. */
  private fixedOwner: Replica | undefined;
  /** Failures already said for this app (folded across replicas) until a replica is Ready again. */
  private readonly said = new Set<string>();
  private readyWaiters: Array<{ resolve: (r: ReplicaInfo) => void; reject: (e: Error) => void }> = [];
  private readonly backoffBase: number;
  private warm: WarmSidecar | undefined;
  /** Set while a warm sidecar's ports are being taken, or while its replacement waits out its back-off. */
  private warmPending = false;
  private warmTimer: NodeJS.Timeout | undefined;
  private warmBackoff: BackoffEntry | undefined;
  /** A standby being started (or swapped): a scale-up waits for it, so the two never contend for the fixed ports. */
  private warmStarting: Promise<void> | undefined;
  /** Standbys on fresh ports being stopped after a swap; a stop of the deployment waits for them. */
  private readonly warmsStopping = new Set<Promise<void>>();

  constructor(private readonly opts: DeploymentOptions) {
    this.appId = opts.app.appId;
    this.hash = createHash('sha256').update(JSON.stringify([opts.app.appId, opts.app.command])).digest('hex').slice(0, 10);
    this.backoffBase = crashBackoffBase(opts.crashBackoffMs);
  }

  get desiredReplicas(): number {
    return this.desired;
  }

  /** Replicas that are not terminating (what the HPA counts as current), CrashLoopBackOff ones included. */
  get current(): number {
    return this.replicas.size;
  }

  get readyCount(): number {
    let n = 0;
    for (const r of this.replicas.values()) if (r.ready) n++;
    return n;
  }

  /** Every replica that has or may still get a process, terminating ones included. */
  list(): ReplicaInfo[] {
    return [...this.replicas.values(), ...this.terminating].map((r) => r.info());
  }

  /** The standby sidecar kept for the next replica, if one is up (it is not a replica). */
  warmSidecar(): { name: string; pid: number | undefined; sidecarPort: number; appPid?: number } | undefined {
    const w = this.warm;
    if (!w?.proc.alive) return undefined;
    const appPid = w.appPid;
    return { name: w.name, pid: w.proc.pid, sidecarPort: w.ports.sidecar, ...(appPid !== undefined ? { appPid } : {}) };
  }

  /** The replicas that are not terminating. */
  all(): Replica[] {
    return [...this.replicas.values()];
  }

  /**
   * Resolves with the first replica seen Ready (at once when one already is). Rejects when the deployment is stopped
   * first, or when `signal` aborts.
   */
  whenReady(signal?: AbortSignal): Promise<ReplicaInfo> {
    for (const r of this.replicas.values()) if (r.ready) return Promise.resolve(r.info());
    if (this.closed) return Promise.reject(new Error(`${this.appId} was stopped before a replica was Ready`));
    if (signal?.aborted) return Promise.reject(new Error(`stopped waiting for ${this.appId} to be Ready`));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (r: ReplicaInfo) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
        reject(new Error(`stopped waiting for ${this.appId} to be Ready`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.push(waiter);
    });
  }

  /**
   * Resolves once started replicas are spawned (or have failed to start and wait in CrashLoopBackOff) and stopped
   * ones have begun draining (not finished). Never rejects; calls made while one runs fold into one reconcile.
   */
  scaleTo(n: number): Promise<void> {
    if (this.closed) return this.reconciling;
    this.desired = Math.max(0, Math.floor(n));
    if (!this.queued) {
      this.queued = true;
      this.reconciling = this.reconciling.then(async () => {
        this.queued = false;
        const target = this.desired;
        try {
          await this.reconcile();
          this.lastFailure = undefined;
          this.ensureWarm();
          this.swapWarmToFixed();
        } catch (err) {
          const msg = errorMessage(err);
          if (msg !== this.lastFailure) this.opts.logs.system(`${this.appId}: could not scale to ${target}: ${msg} (the next scaling decision tries again)`);
          this.lastFailure = msg;
        }
      });
    }
    return this.reconciling;
  }

  private async reconcile(): Promise<void> {
    if (this.closed) return;
    while (this.replicas.size < this.desired && !this.closed) await this.startOne();
    if (this.replicas.size > this.desired) {
      if (this.desired > 0) await this.refreshInFlight(); // the choice among survivors reads fresh in-flight counts
      for (const r of this.pickVictims(this.replicas.size - this.desired)) this.retire(r);
    }
  }

  private retire(r: Replica): void {
    this.replicas.delete(r.name);
    this.terminating.add(r);
    void r.stop().finally(() => this.terminating.delete(r));
  }

  private pickVictims(count: number): Replica[] {
    const rs = [...this.replicas.values()];
    rs.sort((a, b) => {
      if (a.ready !== b.ready) return a.ready ? 1 : -1;
      if ((a === this.fixedOwner) !== (b === this.fixedOwner)) return a === this.fixedOwner ? 1 : -1;
      if (a.inFlight !== b.inFlight) return a.inFlight - b.inFlight;
      return b.startedAt - a.startedAt;
    });
    return rs.slice(0, count);
  }

  private async startOne(): Promise<void> {
    const app = this.opts.app;
    // A standby being started is waited for, and one that has just died holds its ports until its end is seen (which
    // frees them); a replacement its end starts is waited for in turn.
    for (;;) {
      if (this.warmStarting) await this.warmStarting;
      else if (this.warm && !this.warm.proc.alive) await this.warm.proc.ended;
      else break;
    }
    const fixed = this.ownsFixedPorts() && this.fixedOwner === undefined;
    // A standby serves the replica that takes the ports it is on: the fixed ones or fresh ones. A replica taking the
    // fixed ports while the standby is on fresh ones (their owner was still stopping) starts its own sidecar.
    const warm = this.warm?.proc.alive && this.warm.onFixedPorts === fixed ? this.warm : undefined;
    if (warm) this.warm = undefined;
    const name = warm?.name ?? this.replicaName();
    const runFile = this.opts.runFile ?? (app as RunFileApp & { file?: string }).file;
    const r = new Replica({
      name,
      appId: app.appId,
      command: app.command,
      cwd: app.appDir,
      env: app.env,
      appPort: fixed ? app.appPort : undefined,
      sidecarPort: fixed ? app.daprHttpPort : undefined,
      resourcesPaths: app.resourcesPaths,
      embedded: this.opts.embedded,
      dataDir: this.opts.dataDir,
      appMaxConcurrency: app.appMaxConcurrency,
      graceMs: this.opts.graceMs,
      logs: this.opts.logs,
      source: runFile ? `${displayPath(runFile)}:${app.line}` : `line ${app.line} of the run file`,
      backoff: crashBackoffPolicy(this.backoffBase),
      ports: this.opts.ports ?? sharedPorts,
      report: (key, line) => this.say(key, line),
      warm,
    });
    if (fixed) this.fixedOwner = r;
    r.on('ready', (info: ReplicaInfo) => {
      this.said.clear();
      // The next warm sidecar starts once this replica is up, so it does not take CPU from the app's own start.
      this.ensureWarm();
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w.resolve(info);
    });
    r.once('stopped', () => {
      if (this.fixedOwner !== r) return;
      this.fixedOwner = undefined;
      this.ensureWarm();
      this.swapWarmToFixed();
    });
    this.replicas.set(name, r);
    await r.start();
  }

  /** True when the run file fixes a port of this app and this deployment uses it. */
  private ownsFixedPorts(): boolean {
    const app = this.opts.app;
    return this.opts.fixedPorts && (app.appPort !== undefined || app.daprHttpPort !== undefined);
  }

  private replicaName(): string {
    return `${this.appId}-${this.hash}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  }

  /**
   * Starts a warm sidecar for the next replica when the deployment keeps one, has none, and every replica it has is
   * Ready (at 0 replicas: at once).
   */
  private ensureWarm(): void {
    if (!this.opts.warmSidecar || this.closed || this.warm || this.warmPending) return;
    for (const r of this.replicas.values()) if (!r.ready) return;
    this.runWarm(() => this.startWarm());
  }

  /**
   * Once the fixed ports' owner has stopped and they are free, a standby on fresh ports gives way to one on the fixed
   * ports, so the next scale-up (the one from zero) adopts its sidecar there too.
   */
  private swapWarmToFixed(): void {
    const w = this.warm;
    if (!w || w.onFixedPorts || !w.proc.alive || this.warmPending || this.closed || !this.ownsFixedPorts() || this.fixedOwner) return;
    const pool = this.opts.ports ?? sharedPorts;
    if (this.fixedPortList().some((p) => pool.isHeld(p))) return;
    this.runWarm(async () => {
      if (!(await this.fixedPortsFree())) return;
      if (this.warm !== w || this.fixedOwner || this.closed) return;
      // Its ports are fresh ones, not the fixed ones: the new standby can start while it stops.
      this.warm = undefined;
      const stopping = w.stop(WARM_STOP_MS).finally(() => this.warmsStopping.delete(stopping));
      this.warmsStopping.add(stopping);
      await this.startWarm();
    });
  }

  private runWarm(start: () => Promise<void>): void {
    this.warmPending = true;
    const run = start()
      .catch((err: unknown) => this.warmFailed(`could not be started: ${errorMessage(err)}`, Date.now()))
      .finally(() => {
        this.warmPending = this.warmTimer !== undefined;
        if (this.warmStarting === run) this.warmStarting = undefined;
      });
    this.warmStarting = run;
  }

  private fixedPortList(): number[] {
    const app = this.opts.app;
    return [app.appPort, app.daprHttpPort].filter((p): p is number => p !== undefined);
  }

  /** Nothing listens on the fixed ports (a program other than qscale may hold one: the replica then says so). */
  private async fixedPortsFree(): Promise<boolean> {
    return (await Promise.all(this.fixedPortList().map((p) => portFree(p)))).every(Boolean);
  }

  /**
   * Holds the run file's fixed ports for a standby when no replica owns them and nothing listens there; undefined
   * (nothing held) otherwise.
   */
  private async holdFixedPorts(pool: PortPool): Promise<number[] | undefined> {
    if (!this.ownsFixedPorts() || this.fixedOwner) return undefined;
    const held: number[] = [];
    for (const p of this.fixedPortList()) {
      if (!pool.hold(p)) break;
      held.push(p);
    }
    if (held.length === this.fixedPortList().length && (await this.fixedPortsFree())) return held;
    for (const p of held) pool.release(p, true);
    return undefined;
  }

  private async startWarm(): Promise<void> {
    const pool = this.opts.ports ?? sharedPorts;
    const app = this.opts.app;
    const fixed = (await this.holdFixedPorts(pool)) ?? [];
    const fixedApp = fixed.length ? app.appPort : undefined;
    const fixedSidecar = fixed.length ? app.daprHttpPort : undefined;
    const taken: number[] = [];
    const giveBack = (): void => {
      for (const p of taken) pool.release(p);
      for (const p of fixed) pool.release(p, true);
    };
    try {
      for (let i = (fixedApp === undefined ? 1 : 0) + (fixedSidecar === undefined ? 1 : 0) + 1; i > 0; i--) taken.push(await pool.take());
    } catch (err) {
      giveBack();
      throw err;
    }
    if (this.closed) {
      giveBack();
      return;
    }
    const ports = { app: fixedApp ?? taken.shift()!, sidecar: fixedSidecar ?? taken.shift()!, metrics: taken.shift()! };
    const w = new WarmSidecar(this.replicaName(), ports, {
      appId: app.appId,
      cwd: app.appDir,
      env: app.env,
      resourcesPaths: app.resourcesPaths,
      embedded: this.opts.embedded,
      dataDir: this.opts.dataDir,
      appMaxConcurrency: app.appMaxConcurrency,
      graceMs: this.opts.graceMs,
      command: this.opts.warmApp === false ? undefined : app.command,
    }, this.opts.logs, pool, fixed);
    this.warm = w;
    void w.proc.ended.then((r) => {
      // Once a replica took it (or a stop did), that one owns its ports and its end.
      if (this.warm !== w) return;
      this.warm = undefined;
      w.release();
      if (this.closed) return;
      this.warmFailed(`exited (${describeExit(r)}) before a replica adopted it`, r.at);
    });
  }

  /** A warm sidecar that failed is replaced after the crash back-off; one line per run of failures, not per retry. */
  private warmFailed(what: string, at: number): void {
    const plan = planRestart(this.warmBackoff, at, Date.now(), crashBackoffPolicy(this.backoffBase));
    this.warmBackoff = plan.entry;
    if (plan.waitMs === 0) {
      this.opts.logs.system(`${this.appId}: warm sidecar ${what}; starting another now (if it fails again, it is retried with back-off without a line each; replicas start their own sidecar meanwhile)`);
    }
    this.warmPending = true;
    this.warmTimer = setTimeout(() => {
      this.warmTimer = undefined;
      this.warmPending = false;
      this.ensureWarm();
      this.swapWarmToFixed();
    }, plan.waitMs);
  }

  private async stopWarm(now: boolean): Promise<void> {
    if (this.warmStarting) await this.warmStarting;
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.warmTimer = undefined;
    await Promise.all(this.warmsStopping);
    const w = this.warm;
    this.warm = undefined;
    if (!w) return;
    if (now) {
      await w.proc.stop('SIGKILL', WARM_STOP_MS);
      if (!w.proc.alive) w.release();
    } else {
      await w.stop(WARM_STOP_MS);
    }
  }

  private say(key: string, line: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.opts.logs.system(line);
  }

  /** Reads every live replica's in-flight count (with the app's API token when it has one). */
  async refreshInFlight(): Promise<void> {
    await Promise.all([...this.replicas.values(), ...this.terminating].map((r) => r.refreshInFlight()));
  }

  /** Graceful stop of every replica (in parallel); bounded by the grace period plus a few seconds. */
  async stopAll(): Promise<void> {
    this.close();
    await this.reconciling;
    const all = [...this.replicas.values()];
    for (const r of all) this.retire(r);
    await Promise.all([...[...this.terminating].map((r) => r.stop()), this.stopWarm(false)]);
  }

  /** kill -9 of every replica's processes; resolves once they are gone. */
  async killAll(): Promise<void> {
    this.close();
    const all = [...this.replicas.values(), ...this.terminating];
    await Promise.all(all.map((r) => r.kill()));
    await this.reconciling;
    for (const r of [...this.replicas.values()]) this.retire(r);
    await Promise.all([...[...this.terminating].map((r) => r.kill()), this.stopWarm(true)]);
  }

  private close(): void {
    this.closed = true;
    this.desired = 0;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(new Error(`${this.appId} was stopped before a replica was Ready`));
  }
}

function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && rel.length < file.length ? rel : file;
}
