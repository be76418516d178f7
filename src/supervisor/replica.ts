/**
 * A replica is what a pod is with the Dapr injector: the app process and its sidecar process, started together,
 * stopped together. Scale-in stops the sidecar first (it stops taking messages and finishes in-flight work), then
 * the app, so nothing is lost and nothing drained in time is done twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { LogSink } from './logs.js';

export type ReplicaStatus = 'Pending' | 'Running' | 'Terminating' | 'CrashLoopBackOff' | 'Stopped';

export interface ReplicaOptions {
  name: string;
  appId: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  appPort: number;
  sidecarPort: number;
  resourcesPaths: string[];
  embedded: boolean;
  dataDir: string;
  appMaxConcurrency: number | undefined;
  /** Like terminationGracePeriodSeconds: how long a stopping replica may take to drain. */
  graceMs: number;
  logs: LogSink;
}

export interface ReplicaInfo {
  name: string;
  appId: string;
  status: ReplicaStatus;
  ready: boolean;
  restarts: number;
  startedAt: number;
  appPort: number;
  sidecarPort: number;
  inFlight: number;
  pids: { app: number | undefined; sidecar: number | undefined };
}

const SIDECAR_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export class Replica extends EventEmitter {
  readonly name: string;
  readonly appId: string;
  status: ReplicaStatus = 'Pending';
  ready = false;
  restarts = 0;
  startedAt = Date.now();
  inFlight = 0;
  private app: ChildProcess | undefined;
  private sidecar: ChildProcess | undefined;
  private stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readyPoll: NodeJS.Timeout | undefined;

  constructor(readonly opts: ReplicaOptions) {
    super();
    this.name = opts.name;
    this.appId = opts.appId;
  }

  info(): ReplicaInfo {
    return {
      name: this.name,
      appId: this.appId,
      status: this.status,
      ready: this.ready,
      restarts: this.restarts,
      startedAt: this.startedAt,
      appPort: this.opts.appPort,
      sidecarPort: this.opts.sidecarPort,
      inFlight: this.inFlight,
      pids: this.pids(),
    };
  }

  start(): void {
    const o = this.opts;
    this.status = 'Pending';
    this.ready = false;
    this.startedAt = Date.now();
    const [cmd, ...args] = o.command;
    const appEnv = {
      ...process.env,
      ...o.env,
      APP_ID: o.appId,
      APP_PORT: String(o.appPort),
      DAPR_HTTP_PORT: String(o.sidecarPort),
      DAPR_GRPC_PORT: '0',
    };
    this.app = spawn(cmd!, args, { cwd: o.cwd, env: appEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    o.logs.attach(this.app, `${this.name}`);
    const sidecarArgs = [
      SIDECAR_MAIN, 'sidecar',
      '--app-id', o.appId,
      '--app-port', String(o.appPort),
      '--dapr-http-port', String(o.sidecarPort),
      '--data-dir', o.dataDir,
      '--dapr-graceful-shutdown-seconds', String(Math.max(1, Math.ceil(o.graceMs / 1000))),
    ];
    for (const p of o.resourcesPaths) sidecarArgs.push('--resources-path', p);
    if (o.embedded) sidecarArgs.push('--embedded');
    if (o.appMaxConcurrency !== undefined) sidecarArgs.push('--app-max-concurrency', String(o.appMaxConcurrency));
    const sidecarEnv: NodeJS.ProcessEnv = { ...process.env, QSCALE_SUPERVISOR_PID: String(process.pid), QSCALE_APP_PID: String(this.app.pid ?? '') };
    for (const k of ['DAPR_API_TOKEN', 'APP_API_TOKEN']) if (o.env[k] !== undefined) sidecarEnv[k] = o.env[k];
    this.sidecar = spawn(process.execPath, sidecarArgs, { cwd: o.cwd, env: sidecarEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    o.logs.attach(this.sidecar, `${this.name} daprd`);
    const onExit = (which: string) => (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.stopping) return;
      o.logs.system(`${this.name}: ${which} exited (${signal ?? `code ${code}`}); restarting the replica`);
      void this.crashed();
    };
    this.app.once('exit', onExit('app'));
    this.sidecar.once('exit', onExit('daprd'));
    this.pollReady();
  }

  /** Ready = the sidecar's /v1.0/healthz answers 204: components loaded and app reachable. */
  private pollReady(): void {
    const tick = async (): Promise<void> => {
      if (this.stopping || this.status === 'CrashLoopBackOff') return;
      try {
        const res = await request(`http://127.0.0.1:${this.opts.sidecarPort}/v1.0/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await res.body.dump();
        if (res.statusCode === 204) {
          this.ready = true;
          this.status = 'Running';
          this.emit('ready');
          return;
        }
      } catch {
        // not listening yet
      }
      this.readyPoll = setTimeout(() => void tick(), 25);
    };
    void tick();
  }

  /** Reads the sidecar's in-flight count (status only; never blocks scaling). */
  async refreshInFlight(): Promise<void> {
    if (!this.ready || this.stopping) return;
    try {
      const res = await request(`http://127.0.0.1:${this.opts.sidecarPort}/v1.0/metadata`, { headersTimeout: 500, bodyTimeout: 500 });
      const body = (await res.body.json()) as { extended?: Record<string, unknown>; qscale?: { inFlight?: number } };
      const n = body.qscale?.inFlight ?? Number(body.extended?.['qscale.inFlight'] ?? 0);
      this.inFlight = Number.isFinite(n) ? n : 0;
    } catch {
      // leave the last value
    }
  }

  private async crashed(): Promise<void> {
    this.ready = false;
    this.status = 'CrashLoopBackOff';
    await Promise.all([killAndWait(this.app, 'SIGKILL', 0), killAndWait(this.sidecar, 'SIGKILL', 0)]);
    if (this.stopping) return;
    this.restarts += 1;
    // Like the kubelet: 1 s, 2 s, 4 s ... capped at 30 s.
    const backoff = Math.min(30_000, 1000 * 2 ** Math.min(this.restarts - 1, 5));
    this.restartTimer = setTimeout(() => {
      if (!this.stopping) this.start();
    }, backoff);
  }

  /**
   * Graceful stop: SIGTERM to the sidecar (stop taking messages, finish and ack in-flight work), wait for it up to
   * the grace period, then stop the app. Past the grace period both are killed; leased messages return to the queue
   * when their lease expires.
   */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.restartTimer) clearTimeout(this.restartTimer);
      if (this.readyPoll) clearTimeout(this.readyPoll);
      this.status = 'Terminating';
      this.ready = false;
      this.emit('terminating');
      const deadline = Date.now() + this.opts.graceMs;
      const drained = await killAndWait(this.sidecar, 'SIGTERM', this.opts.graceMs);
      if (!drained) {
        this.opts.logs.system(`${this.name}: grace period of ${this.opts.graceMs / 1000}s over; killing it (its leased messages return to the queue)`);
        await killAndWait(this.sidecar, 'SIGKILL', 2000);
      }
      const left = Math.max(1000, deadline - Date.now());
      if (!(await killAndWait(this.app, 'SIGTERM', left))) await killAndWait(this.app, 'SIGKILL', 2000);
      this.status = 'Stopped';
      this.emit('stopped');
    })();
    return this.stopping;
  }

  /** Immediate kill -9 of both processes (tests and the final Ctrl-C twice). */
  async kill(): Promise<void> {
    this.stopping ??= Promise.resolve();
    await Promise.all([killAndWait(this.app, 'SIGKILL', 2000), killAndWait(this.sidecar, 'SIGKILL', 2000)]);
    this.status = 'Stopped';
  }

  /** PIDs, for tests that kill a replica's processes from outside. */
  pids(): { app: number | undefined; sidecar: number | undefined } {
    return { app: this.app?.pid, sidecar: this.sidecar?.pid };
  }
}

/** Sends a signal and waits for the exit, up to timeoutMs. True when the process is gone. */
export function killAndWait(child: ChildProcess | undefined, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  });
}
