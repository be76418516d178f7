/**
 * A replica is what a pod is with the Dapr injector: the app process and its sidecar process, started together,
 * Ready together, ended together. It is one state machine with one exit path per pair of processes:
 *
 *   Pending → Starting → Running (Ready) → Terminating → Stopped
 *                 ↘          ↓                ↑
 *                  CrashLoopBackOff ──────────┘  (the pair is restarted after the kubelet's back-off)
 *
 * Each started pair has a generation number. Whichever of its processes ends first ends the pair, once: the other is
 * killed and awaited before anything restarts, and the end of an older pair can never act on a newer one. Scale-in
 * stops the sidecar first (it stops taking messages and finishes in-flight work), then the app, so nothing is lost
 * and nothing drained in time is done twice. A replica's first pair may adopt a warm standby its deployment started
 * ahead (warm.ts): its sidecar, and its app runtime when the app is a node script (which then runs the script instead
 * of a new process being spawned); the pair is the same pair from there on.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { LogSink } from './logs.js';
import { crashBackoffPolicy, planRestart, type BackoffEntry, type BackoffPolicy } from './backoff.js';
import { describeExit, Proc, type ExitReason } from './proctree.js';
import { portFree, sharedPorts, type PortPool } from './ports.js';
import { LatencyLog } from './latency.js';
import type { WarmSidecar } from './warm.js';
import { SIDECAR_NODE_FLAGS } from './node-flags.js';

export type ReplicaStatus = 'Pending' | 'Starting' | 'Running' | 'Terminating' | 'CrashLoopBackOff' | 'Stopped';

export interface ReplicaOptions {
  name: string;
  appId: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  /** A fixed app port (the run file's appPort); without it every pair gets a fresh one. */
  appPort?: number | undefined;
  /** A fixed sidecar HTTP port (the run file's daprHTTPPort); without it every pair gets a fresh one. */
  sidecarPort?: number | undefined;
  resourcesPaths: string[];
  embedded: boolean;
  dataDir: string;
  appMaxConcurrency: number | undefined;
  /** Like terminationGracePeriodSeconds: how long a stopping replica may take to drain. */
  graceMs: number;
  logs: LogSink;
  /** Where the app is declared, e.g. "dapr.yaml:12", named in every start error. */
  source?: string;
  /** Crash back-off; the kubelet's (10 s doubling to 5 min) by default. */
  backoff?: BackoffPolicy;
  /** Where fresh ports come from; shared by every replica of the process by default. */
  ports?: PortPool;
  /**
   * A standby sidecar started ahead on the ports this replica takes (the run file's fixed ones when appPort /
   * sidecarPort are set): the first pair adopts it and spawns only the app (nothing, when the standby has a warm app
   * runtime for it).
   */
  warm?: WarmSidecar | undefined;
  /**
   * Prints a failure line. The deployment folds a failure every replica shares (a missing command) into one line;
   * `key` says what makes two lines the same failure. Defaults to logs.system.
   */
  report?: (key: string, line: string) => void;
}

/** Why the last pair ended: which process ended first and how. */
export interface LastExit {
  process: 'app' | 'daprd';
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the pair could not start: missing command, bad working directory, fixed port in use. */
  error?: string;
  /** "SIGKILL", "code 1", or the start error. */
  reason: string;
  at: number;
}

export interface ReplicaInfo {
  name: string;
  appId: string;
  status: ReplicaStatus;
  ready: boolean;
  /** Crashes so far, one per ended pair (however many of its processes exited). */
  restarts: number;
  /** When the replica was created (kubectl's AGE); a restart keeps it. */
  startedAt: number;
  /** When the current pair was started; undefined between pairs. */
  runningSince?: number | undefined;
  /** The current pair's ports (the last pair's between pairs; 0 before the first). */
  appPort: number;
  sidecarPort: number;
  /** The current pair's sidecar metrics port (daprd's --metrics-port; the last pair's between pairs). */
  metricsPort?: number;
  inFlight: number;
  /** Messages the current pair's sidecar has handed to the app and acked (its counter starts at 0 with each pair). */
  processed?: number;
  /**
   * Enqueue → ack latency samples read from the replica's sidecars, for the dashboard's history (the same log on every
   * info() of a replica). In JSON (GET /status) it is written as its counts: {samples, withoutEnqueueTime}.
   */
  latency?: LatencyLog;
  /** The processes running now: a pid is listed exactly while its process is alive. */
  pids: { app: number | undefined; sidecar: number | undefined };
  lastExit?: LastExit | undefined;
  /** In CrashLoopBackOff: when the next start is due. */
  nextStartAt?: number | undefined;
}

const SIDECAR_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** How long a SIGKILLed process may take to be seen gone before the supervisor says so and moves on. */
const KILL_WAIT_MS = 3000;
const READY_POLL_MS = 100;
const PROBE_TIMEOUT_MS = 1000;

interface Pair {
  gen: number;
  appPort: number;
  sidecarPort: number;
  metricsPort: number;
  app: Proc;
  sidecar: Proc | undefined;
  startedAt: number;
  readyAt: number | undefined;
  /** Set by the first end seen; later ones are the same end. */
  over: boolean;
  portsReleased: boolean;
}

class StartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export class Replica extends EventEmitter {
  readonly name: string;
  readonly appId: string;
  status: ReplicaStatus = 'Pending';
  ready = false;
  restarts = 0;
  readonly startedAt = Date.now();
  inFlight = 0;
  processed = 0;
  readonly latency = new LatencyLog();
  lastExit: LastExit | undefined;
  private gen = 0;
  private pair: Pair | undefined;
  private lastPorts = { app: 0, sidecar: 0, metrics: 0 };
  private launching: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextStartAt: number | undefined;
  private readyTimer: NodeJS.Timeout | undefined;
  private backoffEntry: BackoffEntry | undefined;
  private readonly policy: BackoffPolicy;
  private readonly ports: PortPool;

  constructor(readonly opts: ReplicaOptions) {
    super();
    this.name = opts.name;
    this.appId = opts.appId;
    this.policy = opts.backoff ?? crashBackoffPolicy();
    this.ports = opts.ports ?? sharedPorts;
  }

  /** The current (or last) pair's app port. */
  get appPort(): number {
    return this.pair?.appPort ?? this.lastPorts.app;
  }

  /** The current (or last) pair's sidecar HTTP port. */
  get sidecarPort(): number {
    return this.pair?.sidecarPort ?? this.lastPorts.sidecar;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  info(): ReplicaInfo {
    return {
      name: this.name,
      appId: this.appId,
      status: this.status,
      ready: this.ready,
      restarts: this.restarts,
      startedAt: this.startedAt,
      runningSince: this.pair?.startedAt,
      appPort: this.appPort,
      sidecarPort: this.sidecarPort,
      metricsPort: this.pair?.metricsPort ?? this.lastPorts.metrics,
      inFlight: this.inFlight,
      processed: this.processed,
      latency: this.latency,
      pids: this.pids(),
      lastExit: this.lastExit,
      nextStartAt: this.nextStartAt,
    };
  }

  /** PIDs of the processes alive now, for status and for tests that kill a replica's processes from outside. */
  pids(): { app: number | undefined; sidecar: number | undefined } {
    const p = this.pair;
    return { app: p?.app.alive ? p.app.pid : undefined, sidecar: p?.sidecar?.alive ? p.sidecar.pid : undefined };
  }

  /**
   * Starts the first pair. Resolves once its processes are spawned or its start has failed (the replica then waits
   * in CrashLoopBackOff); never rejects.
   */
  start(): Promise<void> {
    if (this.gen > 0 || this.stopping) return this.launching ?? Promise.resolve();
    return this.launch();
  }

  private launch(): Promise<void> {
    const run: Promise<void> = this.spawnPair()
      .catch((err: unknown) => this.bug('start', err))
      .finally(() => {
        if (this.launching === run) this.launching = undefined;
      });
    this.launching = run;
    return run;
  }

  private async spawnPair(): Promise<void> {
    const gen = ++this.gen;
    const o = this.opts;
    this.status = 'Pending';
    this.ready = false;
    this.nextStartAt = undefined;
    const [cmd, ...args] = o.command;
    // A warm sidecar started ahead serves the first pair only, and only while it is alive; its ports are this pair's.
    let warm = gen === 1 ? o.warm : undefined;
    if (warm && !warm.proc.alive) {
      warm.release();
      warm = undefined;
    }
    let ports: { app: number; sidecar: number; metrics: number } | undefined;
    try {
      // Both at once: every millisecond before the spawn is scale-from-zero time.
      const [dir, taken] = await Promise.allSettled([checkDir(o.cwd), warm ? this.warmPorts(warm) : this.takePorts()]);
      if (dir.status === 'rejected') {
        if (taken.status === 'fulfilled' && !warm) this.releasePorts(taken.value);
        throw dir.reason;
      }
      if (taken.status === 'rejected') throw taken.reason;
      ports = taken.value;
    } catch (err) {
      if (warm) {
        // The pair never spawns: its warm standby goes (and its ports with it, once it is gone).
        void warm.discard();
        ports = undefined;
      }
      if (this.stopping || gen !== this.gen) return;
      const e = err instanceof StartError ? err : new StartError('ERR_START', String((err as Error).message ?? err));
      this.pairEnded(undefined, 'app', { code: null, signal: null, spawnError: { code: e.code, message: e.message }, at: Date.now() });
      return;
    }
    if (this.stopping || gen !== this.gen) {
      if (warm) {
        void warm.discard();
      } else {
        this.releasePorts(ports);
      }
      return;
    }
    // A warm app runtime (a node script's standby) runs the script now; otherwise the command is spawned.
    const warmApp = warm?.takeApp();
    const app = warmApp ?? new Proc(cmd!, args, { cwd: o.cwd, env: appEnv(o, ports), stdio: ['ignore', 'pipe', 'pipe'] }, (e) => describeSpawnError(cmd!, o.cwd, e));
    let sidecar: Proc | undefined;
    if (app.pid !== undefined) {
      // A standby sidecar has its components loaded and its API up: from now on it dials this app.
      if (warm) warm.adopt(app.pid);
      else sidecar = spawnSidecar(o, ports, app.pid);
    }
    // An app that could not spawn ends the pair, which kills the warm sidecar and gives back its ports once it is gone.
    if (warm) sidecar = warm.proc;
    const pair: Pair = { gen, appPort: ports.app, sidecarPort: ports.sidecar, metricsPort: ports.metrics, app, sidecar, startedAt: Date.now(), readyAt: undefined, over: false, portsReleased: false };
    this.pair = pair;
    this.processed = 0;
    this.lastPorts = { app: ports.app, sidecar: ports.sidecar, metrics: ports.metrics };
    this.status = 'Starting';
    // A warm app runtime's lines have gone to the log under this replica's name since it started.
    if (app.child && !warmApp) o.logs.attach(app.child, this.name);
    // A warm sidecar's lines have gone to the log under this replica's name since it started.
    if (sidecar?.child && !warm) o.logs.attach(sidecar.child, `${this.name} daprd`);
    void app.ended.then((r) => this.pairEnded(pair, 'app', r));
    void sidecar?.ended.then((r) => this.pairEnded(pair, 'daprd', r));
    if (app.pid !== undefined) this.pollReady(pair);
  }

  /**
   * A standby's ports. On the run file's fixed appPort it only dials it: the app binds it now, so a program that
   * took it since the standby started is named as a replica taking it would name it.
   */
  private async warmPorts(warm: WarmSidecar): Promise<{ app: number; sidecar: number; metrics: number }> {
    const port = warm.ports.app;
    if (port === this.opts.appPort && warm.fixed.includes(port) && !(await portFree(port))) throw inUse(this.opts.appId, port, 'appPort');
    return warm.ports;
  }

  /** Fixed ports are used only once nothing listens there; never swapped for a random one. */
  private async takePorts(): Promise<{ app: number; sidecar: number; metrics: number }> {
    const o = this.opts;
    const taken: Array<{ port: number; fixed: boolean }> = [];
    const give = (): void => {
      for (const t of taken) this.ports.release(t.port, t.fixed);
    };
    const fixed = async (port: number, field: string): Promise<number> => {
      const where = ` (${field} of ${o.appId})`;
      if (!this.ports.hold(port)) throw new StartError('EADDRINUSE', `port ${port}${where} is held by another replica of this supervisor`);
      taken.push({ port, fixed: true });
      if (!(await portFree(port))) throw inUse(o.appId, port, field);
      return port;
    };
    const fresh = async (): Promise<number> => {
      const p = await this.ports.take();
      taken.push({ port: p, fixed: false });
      return p;
    };
    // The three probes run at once; the pool never hands out one port twice, and a failure gives back what was taken.
    const [app, sidecar, metrics] = await Promise.allSettled([
      o.appPort !== undefined ? fixed(o.appPort, 'appPort') : fresh(),
      o.sidecarPort !== undefined ? fixed(o.sidecarPort, 'daprHTTPPort') : fresh(),
      // The sidecar's metrics port is always a fresh one: replicas never contend for daprd's 9090.
      fresh(),
    ]);
    for (const r of [app, sidecar, metrics]) {
      if (r.status === 'rejected') {
        give();
        throw r.reason;
      }
    }
    return { app: (app as PromiseFulfilledResult<number>).value, sidecar: (sidecar as PromiseFulfilledResult<number>).value, metrics: (metrics as PromiseFulfilledResult<number>).value };
  }

  private releasePorts(ports: { app: number; sidecar: number; metrics: number }): void {
    this.ports.release(ports.app, ports.app === this.opts.appPort);
    this.ports.release(ports.sidecar, ports.sidecar === this.opts.sidecarPort);
    this.ports.release(ports.metrics);
  }

  /** Ready as a pod with a TCP probe on the app and an HTTP probe on the sidecar: both must answer. Stops once Ready. */
  private pollReady(pair: Pair): void {
    const tick = async (): Promise<void> => {
      this.readyTimer = undefined;
      if (!this.current(pair)) return;
      const ok = (await tcpAccepts(pair.appPort)) && (await this.sidecarHealthy(pair.sidecarPort));
      if (!this.current(pair)) return;
      if (ok) {
        pair.readyAt = Date.now();
        this.ready = true;
        this.status = 'Running';
        this.emit('ready', this.info());
        return;
      }
      this.readyTimer = setTimeout(() => void tick().catch((err: unknown) => this.bug('readiness', err)), READY_POLL_MS);
    };
    void tick().catch((err: unknown) => this.bug('readiness', err));
  }

  private current(pair: Pair): boolean {
    return !pair.over && !this.stopping && pair.gen === this.gen && this.pair === pair;
  }

  private async sidecarHealthy(port: number): Promise<boolean> {
    try {
      const res = await request(`http://127.0.0.1:${port}/v1.0/healthz`, { headers: this.tokenHeader(), headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS });
      await res.body.dump();
      return res.statusCode === 204;
    } catch {
      return false;
    }
  }

  /** The token the sidecar requires: the app's env as the run file gives it, over the supervisor's own env. */
  private tokenHeader(): Record<string, string> {
    const token = this.opts.env.DAPR_API_TOKEN ?? process.env.DAPR_API_TOKEN;
    return token ? { 'dapr-api-token': token } : {};
  }

  /**
   * The one exit path of a pair. `pair` is undefined when the pair never got to spawn (bad working directory, fixed
   * port in use). While the replica is stopping, stop() owns the processes and this does nothing.
   */
  private pairEnded(pair: Pair | undefined, which: 'app' | 'daprd', r: ExitReason): void {
    if (pair) {
      if (pair.over) return;
      pair.over = true;
    }
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = undefined;
    if (this.stopping || (pair && pair.gen !== this.gen)) return;
    const wasReady = pair?.readyAt !== undefined;
    const survivor = pair ? (which === 'app' ? pair.sidecar : pair.app) : undefined;
    this.ready = false;
    this.status = 'CrashLoopBackOff';
    this.restarts += 1;
    this.lastExit = {
      process: which,
      code: r.code,
      signal: r.signal,
      ...(r.spawnError ? { error: r.spawnError.message } : {}),
      reason: describeExit(r),
      at: r.at,
    };
    this.emit('crash', this.lastExit);
    void this.afterCrash(pair, which, r, wasReady, survivor?.alive ?? false).catch((err: unknown) => this.bug('restart', err));
  }

  private async afterCrash(pair: Pair | undefined, which: 'app' | 'daprd', r: ExitReason, wasReady: boolean, hadSurvivor: boolean): Promise<void> {
    if (pair) await this.killPair(pair);
    if (this.stopping || (pair && pair.gen !== this.gen)) return;
    if (pair && this.pair === pair) this.pair = undefined;
    const plan = planRestart(this.backoffEntry, r.at, Date.now(), this.policy);
    this.backoffEntry = plan.entry;
    const count = `restart ${this.restarts}`;
    const o = this.opts;
    if (r.spawnError) {
      const when = plan.waitMs === 0 ? 'trying again now' : `CrashLoopBackOff, next try in ${seconds(plan.waitMs)}`;
      const cmd = o.command.join(' ');
      const where = o.source ? `${o.source}: ` : '';
      this.report(`start ${r.spawnError.message}`, `${this.name}: ${where}cannot start \`${cmd}\`: ${r.spawnError.message} (${when}; ${count})`);
    } else {
      const when = plan.waitMs === 0 ? 'restarting it now' : `CrashLoopBackOff, restarting in ${seconds(plan.waitMs)}`;
      const other = hadSurvivor ? (which === 'app' ? '; its daprd was stopped' : '; its app was stopped') : '';
      const line = `${this.name}: ${which} exited (${describeExit(r)})${other} (${when}; ${count})`;
      // A crash after the replica was Ready is news; a pair that keeps failing the same way before Ready is said once.
      if (wasReady) o.logs.system(line);
      else this.report(`${which} ${describeExit(r)}`, line);
    }
    if (plan.waitMs === 0) {
      void this.launch();
      return;
    }
    this.nextStartAt = Date.now() + plan.waitMs;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) void this.launch();
    }, plan.waitMs);
  }

  private report(key: string, line: string): void {
    if (this.opts.report) this.opts.report(key, line);
    else this.opts.logs.system(line);
  }

  /** SIGKILL to both process groups; resolves once both are seen gone (ports given back) or the wait is over. */
  private async killPair(pair: Pair): Promise<void> {
    const procs = [pair.app, pair.sidecar].filter((p): p is Proc => p !== undefined);
    const gone = await Promise.all(procs.map((p) => p.stop('SIGKILL', KILL_WAIT_MS)));
    this.settlePorts(pair, gone.every(Boolean));
  }

  private settlePorts(pair: Pair, allGone: boolean): void {
    if (pair.portsReleased) return;
    if (allGone) {
      pair.portsReleased = true;
      this.releasePorts({ app: pair.appPort, sidecar: pair.sidecarPort, metrics: pair.metricsPort });
      return;
    }
    // Its ports stay held, so no later pair is given them.
    const left = [pair.app, pair.sidecar].filter((p) => p?.alive).map((p) => p!.pid);
    this.opts.logs.system(`${this.name}: process ${left.join(', ')} did not exit after SIGKILL within ${seconds(KILL_WAIT_MS)}`);
  }

  /**
   * Reads the sidecar's in-flight count (status and scale-in choice; never blocks scaling), its processed count and
   * its latency samples (the dashboard's history).
   */
  async refreshInFlight(): Promise<void> {
    const pair = this.pair;
    if (!pair || pair.over || pair.readyAt === undefined) return;
    try {
      const res = await request(`http://127.0.0.1:${pair.sidecarPort}/v1.0/metadata`, { headers: this.tokenHeader(), headersTimeout: 500, bodyTimeout: 500 });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return;
      }
      const body = (await res.body.json()) as { extended?: Record<string, unknown>; qscale?: { inFlight?: number; succeeded?: number; inputBindings?: unknown } };
      const n = body.qscale?.inFlight ?? Number(body.extended?.['qscale.inFlight'] ?? 0);
      this.inFlight = Number.isFinite(n) ? n : 0;
      if (pair === this.pair && typeof body.qscale?.succeeded === 'number') this.processed = body.qscale.succeeded;
      if (pair === this.pair) this.latency.read(pair.gen, body.qscale?.inputBindings);
    } catch {
      // leave the last value
    }
  }

  /**
   * Graceful stop, bounded by the grace period plus a few seconds: SIGTERM to the sidecar (it stops taking messages
   * and finishes in-flight work), then the app. Past the grace period both are killed; leased messages return to the
   * queue when their lease expires. A replica waiting in CrashLoopBackOff or still starting stops at once.
   */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.terminate(false);
    return this.stopping;
  }

  /** Immediate kill -9 of both process groups (the second Ctrl-C, and tests). */
  async kill(): Promise<void> {
    const pair = this.pair;
    if (!this.stopping) this.stopping = this.terminate(true);
    else if (pair) await this.killPair(pair);
    await this.stopping;
  }

  private async terminate(now: boolean): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.restartTimer = undefined;
    this.readyTimer = undefined;
    this.nextStartAt = undefined;
    this.status = 'Terminating';
    this.ready = false;
    this.emit('terminating');
    // A start in progress sees `stopping` after its next await and spawns nothing.
    if (this.launching) await this.launching;
    const pair = this.pair;
    if (pair) {
      if (now || pair.over) await this.killPair(pair);
      else await this.drain(pair);
    }
    this.status = 'Stopped';
    this.emit('stopped');
  }

  private async drain(pair: Pair): Promise<void> {
    const grace = this.opts.graceMs;
    const deadline = Date.now() + grace;
    const sidecar = pair.sidecar;
    if (sidecar && !(await sidecar.stop('SIGTERM', grace))) {
      this.opts.logs.system(`${this.name}: grace period of ${seconds(grace)} over; killing it (its leased messages return to the queue)`);
      await sidecar.stop('SIGKILL', KILL_WAIT_MS);
    }
    if (!(await pair.app.stop('SIGTERM', Math.max(1000, deadline - Date.now())))) await pair.app.stop('SIGKILL', KILL_WAIT_MS);
    this.settlePorts(pair, !pair.app.alive && !(sidecar?.alive ?? false));
  }

  /** A fault in the supervisor's own code: said once, never thrown out of an event handler. */
  private bug(where: string, err: unknown): void {
    this.opts.logs.system(`${this.name}: internal error during ${where}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}

/** The environment an app process gets: the run file's env and the ports it is to use. */
export function appEnv(o: Pick<ReplicaOptions, 'appId' | 'env'>, ports: { app: number; sidecar: number }): NodeJS.ProcessEnv {
  return { ...process.env, ...o.env, APP_ID: o.appId, APP_PORT: String(ports.app), DAPR_HTTP_PORT: String(ports.sidecar), DAPR_GRPC_PORT: '0' };
}

/** The fields of a replica's options its sidecar's command line is made of. */
export type SidecarSpec = Pick<ReplicaOptions, 'appId' | 'cwd' | 'env' | 'resourcesPaths' | 'embedded' | 'dataDir' | 'appMaxConcurrency' | 'graceMs'>;

/**
 * Spawns `qscale sidecar` for an app on these ports. With an app pid it starts at once; without one it is a standby
 * (--standby): its stdin is a pipe on which the supervisor writes `adopt <app pid>`, and its end (the supervisor is
 * gone) makes it exit before it reads anything.
 */
export function spawnSidecar(o: SidecarSpec, ports: { app: number; sidecar: number; metrics: number }, appPid: number | undefined): Proc {
  const args = [
    SIDECAR_MAIN, 'sidecar',
    '--app-id', o.appId,
    '--app-port', String(ports.app),
    '--dapr-http-port', String(ports.sidecar),
    '--metrics-port', String(ports.metrics),
    '--data-dir', o.dataDir,
    '--dapr-graceful-shutdown-seconds', String(Math.max(1, Math.ceil(o.graceMs / 1000))),
  ];
  for (const p of o.resourcesPaths) args.push('--resources-path', p);
  if (o.embedded) args.push('--embedded');
  if (o.appMaxConcurrency !== undefined) args.push('--app-max-concurrency', String(o.appMaxConcurrency));
  if (appPid === undefined) args.push('--standby');
  // The sidecar drains, stops its app and exits when the supervisor dies (src/cli/sidecar/run.ts).
  const env: NodeJS.ProcessEnv = { ...process.env, QSCALE_SUPERVISOR_PID: String(process.pid) };
  if (appPid !== undefined) env.QSCALE_APP_PID = String(appPid);
  else delete env.QSCALE_APP_PID;
  for (const k of ['DAPR_API_TOKEN', 'APP_API_TOKEN']) if (o.env[k] !== undefined) env[k] = o.env[k];
  return new Proc(process.execPath, [...SIDECAR_NODE_FLAGS, ...args], { cwd: o.cwd, env, stdio: [appPid === undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] }, (e) => `cannot start daprd: ${e.message}`);
}

function inUse(appId: string, port: number, field: string): StartError {
  return new StartError('EADDRINUSE', `port ${port} (${field} of ${appId}) is in use by another process; stop what listens there or change ${field} in the run file`);
}

async function checkDir(dir: string): Promise<void> {
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory()) throw new StartError('ENOTDIR', `working directory ${dir} (appDirPath) is not a folder`);
  } catch (err) {
    if (err instanceof StartError) throw err;
    throw new StartError('ENOENT', `working directory ${dir} (appDirPath) does not exist`);
  }
}

export function describeSpawnError(cmd: string, cwd: string, e: NodeJS.ErrnoException): string {
  if (e.code === 'ENOENT') {
    return cmd.includes('/') ? `command ${cmd} not found (no such file, relative to ${cwd})` : `command ${cmd} not found on PATH`;
  }
  if (e.code === 'EACCES') return `command ${cmd} is not executable (permission denied)`;
  return `command ${cmd} could not be started: ${e.message}`;
}

/** True when something accepts TCP connections on the loopback port. */
function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
