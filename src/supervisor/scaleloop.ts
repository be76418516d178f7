/**
 * The real clock driving the autoscaler's pure functions for one ScaledObject: the KEDA step every
 * pollingInterval, the HPA step every sync period, and the KEDA step at once when work lands on an empty queue at
 * 0 replicas (pollingInterval stays the upper bound). Each decision goes to the Deployment and, with its reason, to
 * the status.
 */
import { createAutoscaler, type Autoscaler, type ScalingConfig } from '../autoscaler/index.js';
import type { AutoscalerState, Observation, StepResult } from '../autoscaler/state.js';
import type { Scaler } from '../autoscaler/scaler.js';
import { fmt } from '../autoscaler/state.js';
import { errorMessage } from '../errors.js';
import type { Deployment } from './deployment.js';
import type { DecisionRecord, HpaLine } from './state.js';

const ZERO_PROBE_MS = 1000;

export interface ScaleLoopOptions {
  syncPeriodMs: number;
  downscaleStabilizationMs: number;
  instantActivation: boolean;
  record(d: DecisionRecord): void;
}

export class ScaleLoop {
  readonly name: string;
  readonly appId: string;
  private autoscaler: Autoscaler | undefined;
  private state: AutoscalerState | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private unwatch: Array<() => void> = [];
  /** Steps run one at a time: both read and replace the same state. */
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastValues: Array<number | undefined>;
  private lastError: string | undefined;

  constructor(
    readonly config: ScalingConfig,
    readonly deployment: Deployment,
    readonly scalers: Scaler[],
    private readonly opts: ScaleLoopOptions,
  ) {
    this.name = config.spec.name;
    this.appId = deployment.appId;
    this.lastValues = scalers.map(() => undefined);
  }

  /** The replicas to start with: a paused ScaledObject's pinned count, else the Deployment's own count. */
  initialReplicas(deploymentReplicas: number | undefined): number {
    const spec = this.config.spec;
    if (spec.pausedReplicas !== undefined) return spec.pausedReplicas;
    return deploymentReplicas ?? spec.minReplicaCount;
  }

  start(): void {
    const spec = this.config.spec;
    const now = Date.now();
    this.autoscaler = createAutoscaler(
      spec,
      {
        triggers: this.scalers.map((s, i) => ({
          label: this.config.triggers[i]?.type === 'azure-servicebus' || /queue|rabbit|redis|nats|postgres/.test(this.config.triggers[i]?.type ?? '') ? 'queue' : 'metric',
          metricType: s.metricType,
          target: s.target,
          activationTarget: s.activationTarget,
        })),
        syncPeriodSeconds: this.opts.syncPeriodMs / 1000,
        downscaleStabilizationSeconds: this.opts.downscaleStabilizationMs / 1000,
        initialReplicas: this.deployment.desiredReplicas,
      },
      now,
    );
    this.state = this.autoscaler.initial;
    if (this.opts.instantActivation) {
      for (const s of this.scalers) {
        if (s.watchArrivals) {
          this.unwatch.push(s.watchArrivals(() => {
            if (this.state && this.state.replicas === 0) this.enqueue(() => this.poll('a message landed on an empty queue'));
          }));
        }
      }
      // A trigger that cannot tell when work lands is read every second while the target is at zero, so
      // activation still comes within a second (pollingInterval stays the upper bound).
      if (this.scalers.some((s) => !s.watchArrivals) && this.autoscaler.pollingIntervalSeconds > ZERO_PROBE_MS / 1000) {
        const probe = setInterval(() => {
          if (this.state && this.state.replicas === 0) this.enqueue(() => this.poll('read while at zero replicas'));
        }, ZERO_PROBE_MS);
        this.unwatch.push(() => clearInterval(probe));
      }
    }
    this.enqueue(() => this.poll());
    this.schedulePoll();
    this.scheduleSync();
  }

  private schedulePoll(): void {
    if (this.stopped || !this.autoscaler) return;
    this.pollTimer = setTimeout(() => {
      this.enqueue(() => this.poll());
      this.schedulePoll();
    }, this.autoscaler.pollingIntervalSeconds * 1000);
  }

  private scheduleSync(): void {
    if (this.stopped) return;
    this.syncTimer = setTimeout(() => {
      this.enqueue(() => this.sync());
      this.scheduleSync();
    }, this.opts.syncPeriodMs);
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).catch((err) => {
      this.lastError = errorMessage(err);
    });
  }

  private async observe(): Promise<Observation[]> {
    return Promise.all(
      this.scalers.map(async (s, i): Promise<Observation> => {
        try {
          const { value } = await s.metricAndActivity();
          this.lastValues[i] = value;
          return { value };
        } catch (err) {
          this.lastValues[i] = undefined;
          return { error: errorMessage(err) };
        }
      }),
    );
  }

  private async poll(why?: string): Promise<void> {
    if (this.stopped || !this.autoscaler || !this.state) return;
    const obs = await this.observe();
    this.apply(this.autoscaler.poll(this.state, obs, Date.now()), why);
  }

  private async sync(): Promise<void> {
    if (this.stopped || !this.autoscaler || !this.state) return;
    // KEDA's metrics server reads the scalers for each HPA request unless useCachedMetrics is set.
    const cached = this.config.spec.triggers.every((t) => t.useCachedMetrics);
    const observations = cached ? undefined : await this.observe();
    const observed = { replicas: this.deployment.current, ready: this.deployment.readyCount };
    this.apply(this.autoscaler.sync(this.state, Date.now(), { observations, observed }));
  }

  private apply(result: StepResult, why?: string): void {
    this.state = result.state;
    if (result.decision) {
      const d = result.decision;
      this.opts.record({ at: d.at, scaledObject: this.name, kind: d.kind, from: d.from, to: d.to, reason: why ? `${d.reason} (${why})` : d.reason });
    }
    if (result.desiredReplicas !== this.deployment.desiredReplicas) void this.deployment.scaleTo(result.desiredReplicas);
  }

  /** Waits for the step in progress, then runs no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    for (const u of this.unwatch) u();
    await this.chain;
    await Promise.all(this.scalers.map((s) => s.close().catch(() => undefined)));
  }

  /** `kubectl get hpa`'s line: TARGETS is the metric per replica for AverageValue ("23/5 (avg)"). */
  hpaLine(): HpaLine {
    const spec = this.config.spec;
    const replicas = this.deployment.current;
    const targets = this.scalers.map((s, i) => {
      const v = this.lastValues[i];
      if (s.metricType === 'AverageValue') {
        const per = v === undefined ? '<unknown>' : fmt(Math.round((v / Math.max(1, replicas)) * 1000) / 1000);
        return `${per}/${fmt(s.target)} (avg)`;
      }
      return `${v === undefined ? '<unknown>' : fmt(v)}/${fmt(s.target)}`;
    });
    return {
      name: spec.hpaName,
      reference: `Deployment/${spec.target}`,
      targets: targets.join(', '),
      minPods: Math.max(1, spec.minReplicaCount),
      maxPods: spec.maxReplicaCount,
      replicas,
      desired: this.state?.replicas ?? this.deployment.desiredReplicas,
      active: this.state?.active ?? false,
      paused: spec.paused,
      metric: this.scalers.map((s) => s.describes).join('; ') + (this.lastError ? ` (last error: ${this.lastError})` : ''),
    };
  }
}
