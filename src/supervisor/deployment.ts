/**
 * The replicas of one app, like a Deployment's ReplicaSet: scaleTo(n) starts or stops replicas. Which replica goes on
 * scale-in is chosen like the ReplicaSet controller does (not ready before ready, newer before older), with one
 * addition the cluster cannot make: a replica with less in-flight work goes first.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { RunFileApp } from './runfile.js';
import { Replica, type ReplicaInfo } from './replica.js';
import type { LogSink } from './logs.js';
import { freePort, portFree } from './ports.js';

export interface DeploymentOptions {
  app: RunFileApp;
  embedded: boolean;
  dataDir: string;
  graceMs: number;
  logs: LogSink;
  /** Use the run file's appPort / daprHTTPPort for the first replica when free (the producer's public address). */
  fixedPorts: boolean;
}

export class Deployment {
  readonly appId: string;
  private readonly replicas = new Map<string, Replica>();
  private readonly terminating = new Set<Replica>();
  /** Like a ReplicaSet's pod-template-hash: stable per app and command. */
  private readonly hash: string;
  private desired = 0;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DeploymentOptions) {
    this.appId = opts.app.appId;
    this.hash = createHash('sha256').update(JSON.stringify([opts.app.appId, opts.app.command])).digest('hex').slice(0, 10);
  }

  get desiredReplicas(): number {
    return this.desired;
  }

  /** Replicas that are not terminating (what the HPA counts as current). */
  get current(): number {
    return this.replicas.size;
  }

  get readyCount(): number {
    let n = 0;
    for (const r of this.replicas.values()) if (r.ready) n++;
    return n;
  }

  list(): ReplicaInfo[] {
    return [...this.replicas.values(), ...this.terminating].map((r) => r.info());
  }

  all(): Replica[] {
    return [...this.replicas.values()];
  }

  /** Resolves once started replicas are spawned and stopped ones have begun draining (not finished). */
  scaleTo(n: number): Promise<void> {
    this.desired = n;
    this.reconciling = this.reconciling.then(() => this.reconcile());
    return this.reconciling;
  }

  private async reconcile(): Promise<void> {
    const target = this.desired;
    while (this.replicas.size < target) await this.startOne();
    if (this.replicas.size > target) {
      const victims = this.pickVictims(this.replicas.size - target);
      for (const r of victims) {
        this.replicas.delete(r.name);
        this.terminating.add(r);
        void r.stop().finally(() => this.terminating.delete(r));
      }
    }
  }

  private pickVictims(count: number): Replica[] {
    const rs = [...this.replicas.values()];
    rs.sort((a, b) => {
      if (a.ready !== b.ready) return a.ready ? 1 : -1;
      if (a.inFlight !== b.inFlight) return a.inFlight - b.inFlight;
      return b.startedAt - a.startedAt;
    });
    return rs.slice(0, count);
  }

  private async startOne(): Promise<void> {
    const app = this.opts.app;
    const first = this.replicas.size === 0 && this.terminating.size === 0;
    const appPort = this.opts.fixedPorts && first && app.appPort && (await portFree(app.appPort)) ? app.appPort : await freePort();
    const sidecarPort = this.opts.fixedPorts && first && app.daprHttpPort && (await portFree(app.daprHttpPort)) ? app.daprHttpPort : await freePort();
    const name = `${app.appId}-${this.hash}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const r = new Replica({
      name,
      appId: app.appId,
      command: app.command,
      cwd: app.appDir,
      env: app.env,
      appPort,
      sidecarPort,
      resourcesPaths: app.resourcesPaths,
      embedded: this.opts.embedded,
      dataDir: this.opts.dataDir,
      appMaxConcurrency: app.appMaxConcurrency,
      graceMs: this.opts.graceMs,
      logs: this.opts.logs,
    });
    this.replicas.set(name, r);
    r.start();
  }

  async refreshInFlight(): Promise<void> {
    await Promise.all([...this.replicas.values(), ...this.terminating].map((r) => r.refreshInFlight()));
  }

  /** Graceful stop of every replica (in parallel). */
  async stopAll(): Promise<void> {
    this.desired = 0;
    await this.reconciling;
    const all = [...this.replicas.values(), ...this.terminating];
    this.replicas.clear();
    await Promise.all(all.map((r) => r.stop()));
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.replicas.values(), ...this.terminating].map((r) => r.kill()));
  }
}
