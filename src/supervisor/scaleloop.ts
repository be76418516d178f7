/**
 * The real clock driving the autoscaler's pure functions for one ScaledObject: the KEDA step every
 * pollingInterval, the HPA step every sync period, and the KEDA step at once when work lands on an empty queue at
 * 0 replicas (pollingInterval stays the upper bound). Each decision goes to the target and, with its reason, to
 * the status.
 *
 * Every reading of a trigger goes through read(): bounded in time, one at a time per trigger, its failure printed
 * once per cause (and its recovery once), and kept for status as KEDA's Ready condition. A scale request that fails
 * is printed and tried again at the next step: the loop itself never stops on an error.
 */
import { createAutoscaler, type Autoscaler, type ScalingConfig } from '../autoscaler/index.js';
import type { AutoscalerState, Observation, StepResult } from '../autoscaler/state.js';
import type { Scaler } from '../autoscaler/scaler.js';
import { fmt } from '../autoscaler/state.js';
import { errorMessage } from '../errors.js';
import { withTimeout } from '../util/timeout.js';
import { sleep } from '../util/abort.js';
import { describeTrigger } from './plan.js';
import { kedaMetrics, type KedaMetrics, type ScaledObjectMetrics } from '../metrics/keda.js';
import type { ConditionState, DecisionRecord, HpaLine, ScaledObjectStatus, TriggerStatus } from './state.js';

const ZERO_PROBE_MS = 1000;
/** KEDA's default bound on a scaler's HTTP call (KEDA_HTTP_DEFAULT_TIMEOUT). */
export const DEFAULT_READ_TIMEOUT_MS = 3000;

/** What the loop scales: a Deployment, or anything with its replica counts and scaleTo. */
export interface ScaleTarget {
  readonly appId: string;
  /** The count last asked for. */
  readonly desiredReplicas: number;
  /** Replicas that exist and are not terminating. */
  readonly current: number;
  readonly readyCount: number;
  scaleTo(n: number): Promise<void>;
}

export interface ScaleLoopOptions {
  syncPeriodMs: number;
  downscaleStabilizationMs: number;
  instantActivation: boolean;
  record(d: DecisionRecord): void;
  /** A line the user must see: a trigger failing, failing differently or reading again; a failed scale request. */
  report(line: string): void;
  /** Bound on one trigger read (default DEFAULT_READ_TIMEOUT_MS). */
  readTimeoutMs?: number;
  /** Where reads, errors and replica counts go under KEDA's metric names (default: the process's, served at /metrics). */
  metrics?: KedaMetrics;
}

interface TriggerReading {
  value?: number;
  readAt?: number;
  /** Replicas when `value` was read: kubectl's per-replica average divides by these. */
  replicasAtRead?: number;
  attemptAt?: number;
  error?: string;
  failingSince?: number;
  pending?: Promise<Observation>;
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
  private readonly readings: TriggerReading[];
  private readonly readTimeoutMs: number;
  private stepError: string | undefined;
  private scaleSeq = 0;
  private scaleError: string | undefined;
  private fallbackOn = false;
  private metrics: ScaledObjectMetrics | undefined;

  constructor(
    readonly config: ScalingConfig,
    readonly deployment: ScaleTarget,
    readonly scalers: Scaler[],
    private readonly opts: ScaleLoopOptions,
  ) {
    this.name = config.spec.name;
    this.appId = deployment.appId;
    this.readings = scalers.map(() => ({}));
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  }

  /** The autoscaler's memory after the last step (status reads the cooldown from it); undefined before start. */
  get autoscalerState(): Readonly<AutoscalerState> | undefined {
    return this.state;
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
    this.metrics = (this.opts.metrics ?? kedaMetrics).track({
      name: this.name,
      triggers: this.scalers.map((s, i) => ({ index: this.config.triggers[i]?.index ?? i, type: this.config.triggers[i]?.type ?? '', name: this.config.triggers[i]?.name, metricName: s.metricName })),
      snapshot: () => {
        const h = this.hpaLine();
        return { hpaName: h.name, desiredReplicas: h.desired, currentReplicas: h.replicas, minReplicas: h.minPods, maxReplicas: h.maxPods, paused: spec.paused || spec.pausedReplicas !== undefined };
      },
    });
    const polling = this.autoscaler.pollingIntervalSeconds;
    if (this.opts.instantActivation) {
      for (const s of this.scalers) {
        if (s.watchArrivals) {
          this.unwatch.push(s.watchArrivals(() => {
            if (this.state && this.state.replicas === 0) this.enqueue(() => this.poll(`read at once: work arrived at 0 replicas, ahead of the ${polling}s pollingInterval`));
          }));
        }
      }
      // A trigger that cannot tell when work lands is read every second while the target is at zero, so
      // activation still comes within a second (pollingInterval stays the upper bound).
      if (this.scalers.some((s) => !s.watchArrivals) && polling > ZERO_PROBE_MS / 1000) {
        const probe = setInterval(() => {
          if (this.state && this.state.replicas === 0) this.enqueue(() => this.poll(`read by the ${ZERO_PROBE_MS / 1000}s probe at 0 replicas, ahead of the ${polling}s pollingInterval`));
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

  /** Runs `step` after the one in progress; an error is printed once per cause and the next step still runs. */
  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).then(
      () => {
        this.stepError = undefined;
      },
      (err: unknown) => {
        const msg = errorMessage(err);
        if (msg !== this.stepError) this.opts.report(`ScaledObject ${this.name}: a scaling step failed: ${msg}; the next step runs as usual`);
        this.stepError = msg;
      },
    );
  }

  /** One read of trigger i, bounded; a read already in progress is shared rather than doubled. */
  private read(i: number): Promise<Observation> {
    const r = this.readings[i]!;
    if (r.pending) return r.pending;
    const scaler = this.scalers[i]!;
    const p = (async (): Promise<Observation> => {
      r.attemptAt = Date.now();
      const started = performance.now();
      try {
        const { value, active } = await withTimeout(scaler.metricAndActivity(), this.readTimeoutMs, `no answer within ${this.readTimeoutMs} ms`);
        this.metrics?.readOk(i, value, active, (performance.now() - started) / 1000);
        this.readOk(i, value);
        return { value };
      } catch (err) {
        const msg = this.cause(i, err);
        this.metrics?.readFailed(i, (performance.now() - started) / 1000);
        this.readFailed(i, msg);
        return { error: msg };
      }
    })();
    r.pending = p;
    void p.finally(() => {
      if (r.pending === p) r.pending = undefined;
    });
    return p;
  }

  /** The error's message without the trigger's own name in front (the line names it already). */
  private cause(i: number, err: unknown): string {
    const msg = errorMessage(err);
    const subject = this.config.triggers[i]?.subject;
    return subject && msg.startsWith(`${subject}: `) ? msg.slice(subject.length + 2) : msg;
  }

  private triggerName(i: number): string {
    const t = this.config.triggers[i];
    return t ? describeTrigger(t) : `trigger ${i}`;
  }

  private readOk(i: number, value: number): void {
    const r = this.readings[i]!;
    if (r.error !== undefined) {
      const secs = Math.round((Date.now() - (r.failingSince ?? Date.now())) / 1000);
      this.opts.report(`ScaledObject ${this.name} ${this.triggerName(i)}: reads again (value ${fmt(value)}) after failing for ${secs}s; scaling on it resumes`);
    }
    r.value = value;
    r.readAt = Date.now();
    r.replicasAtRead = this.deployment.current;
    r.error = undefined;
    r.failingSince = undefined;
  }

  private readFailed(i: number, msg: string): void {
    const r = this.readings[i]!;
    if (msg !== r.error) {
      const t = this.config.triggers[i];
      const at = t?.where('type');
      const fix = at?.file ? ` (the trigger: ${at.file}${at.line ? `:${at.line}` : ''})` : '';
      const fb = this.config.spec.fallback;
      const then = fb
        ? `after ${fb.failureThreshold} failed reads in a row its fallback of ${fb.replicas} replicas applies`
        : 'no scaling on it until it reads again (status: READY False)';
      this.opts.report(r.error === undefined
        ? `ScaledObject ${this.name} ${this.triggerName(i)}: cannot read the metric: ${msg}; ${then}${fix}`
        : `ScaledObject ${this.name} ${this.triggerName(i)}: still cannot read the metric, now: ${msg}`);
    }
    if (r.error === undefined) r.failingSince = Date.now();
    r.error = msg;
  }

  private async observe(): Promise<Observation[]> {
    return Promise.all(this.scalers.map((_, i) => this.read(i)));
  }

  private async poll(why?: string): Promise<void> {
    if (this.stopped || !this.autoscaler || !this.state) return;
    const obs = await this.observe();
    if (this.stopped) return;
    this.apply(this.autoscaler.poll(this.state, obs, Date.now()), why);
  }

  private async sync(): Promise<void> {
    if (this.stopped || !this.autoscaler || !this.state) return;
    // KEDA's metrics server reads the scalers for each HPA request unless useCachedMetrics is set.
    const cached = this.config.spec.triggers.every((t) => t.useCachedMetrics);
    const observations = cached ? undefined : await this.observe();
    if (this.stopped) return;
    const observed = { replicas: this.deployment.current, ready: this.deployment.readyCount };
    this.apply(this.autoscaler.sync(this.state, Date.now(), { observations, observed }));
  }

  private apply(result: StepResult, why?: string): void {
    this.state = result.state;
    if (result.decision) {
      const d = result.decision;
      this.opts.record({ at: d.at, scaledObject: this.name, kind: d.kind, from: d.from, to: d.to, reason: why ? `${d.reason} (${why})` : d.reason });
    }
    this.reportFallback();
    this.scale(result.desiredReplicas);
  }

  private fallbackActive(): boolean {
    const fb = this.config.spec.fallback;
    return !!fb && (this.state?.failures ?? []).some((f) => f > fb.failureThreshold);
  }

  private reportFallback(): void {
    const on = this.fallbackActive();
    if (on === this.fallbackOn) return;
    this.fallbackOn = on;
    const fb = this.config.spec.fallback!;
    this.opts.report(on
      ? `ScaledObject ${this.name}: fallback on: a trigger failed more than failureThreshold ${fb.failureThreshold} times in a row; scaling as if ${fb.replicas} replicas were needed (fallback.behavior ${fb.behavior})`
      : `ScaledObject ${this.name}: fallback off: every trigger reads again`);
  }

  /**
   * Asks the target for n replicas when that is new, or when the last request failed (tried again at every step
   * until it succeeds). A failure is printed once per cause, never left as an unhandled rejection.
   */
  private scale(n: number): void {
    if (n === this.deployment.desiredReplicas && this.scaleError === undefined) return;
    const seq = ++this.scaleSeq;
    let p: Promise<void>;
    try {
      p = Promise.resolve(this.deployment.scaleTo(n));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => {
        if (seq !== this.scaleSeq) return;
        if (this.scaleError !== undefined) this.opts.report(`ScaledObject ${this.name}: ${this.appId} scaled to ${n} replicas (the earlier request had failed)`);
        this.scaleError = undefined;
      },
      (err: unknown) => {
        if (seq !== this.scaleSeq) return;
        const msg = errorMessage(err);
        if (msg !== this.scaleError) this.opts.report(`ScaledObject ${this.name}: scaling ${this.appId} to ${n} replicas failed: ${msg}; tried again at the next step`);
        this.scaleError = msg;
      },
    );
  }

  /**
   * Reads the triggers for status when the last attempt is older than maxAgeMs, waiting at most boundMs: status
   * shows the value now, not the one of the last step (which may be a whole pollingInterval old).
   */
  async refresh(maxAgeMs = 1000, boundMs = 1500): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    await Promise.all(this.scalers.map(async (_, i) => {
      const r = this.readings[i]!;
      if (r.attemptAt !== undefined && now - r.attemptAt < maxAgeMs && !r.pending) return;
      await withTimeout(this.read(i), boundMs, 'status read').catch(() => undefined);
    }));
  }

  /** Waits for the step in progress (bounded), then runs no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    for (const u of this.unwatch) u();
    this.unwatch = [];
    this.metrics?.untrack();
    // A ref'd timer: stopping must not let the process exit early while a step is still being waited for.
    const bound = new AbortController();
    await Promise.race([this.chain, sleep(this.readTimeoutMs + 1000, bound.signal)]);
    bound.abort();
    await Promise.all(this.scalers.map((s) => withTimeout(s.close(), 2000, 'scaler close').catch(() => undefined)));
  }

  /** `kubectl get hpa`'s line: TARGETS is the metric per replica for AverageValue ("23/5 (avg)"). */
  hpaLine(): HpaLine {
    const spec = this.config.spec;
    const replicas = this.deployment.current;
    const targets = this.scalers.map((s, i) => {
      const r = this.readings[i]!;
      const v = r.error === undefined ? r.value : undefined;
      if (s.metricType === 'AverageValue') {
        const per = v === undefined ? '<unknown>' : fmt(Math.round((v / Math.max(1, r.replicasAtRead ?? replicas)) * 1000) / 1000);
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
      metric: this.scalers.map((s) => s.describes).join('; '),
    };
  }

  /** `kubectl get scaledobject` with KEDA's conditions, and each trigger's last value or error. */
  status(): ScaledObjectStatus {
    const spec = this.config.spec;
    const triggers: TriggerStatus[] = this.scalers.map((s, i) => {
      const t = this.config.triggers[i];
      const r = this.readings[i]!;
      return {
        index: t?.index ?? i,
        type: t?.type ?? '',
        ...(t?.name ? { name: t.name } : {}),
        metricType: s.metricType,
        target: s.target,
        activationTarget: s.activationTarget,
        describes: s.describes,
        ...(r.value !== undefined ? { value: r.value, readAt: r.readAt } : {}),
        ...(r.error !== undefined ? { error: r.error, failingSince: r.failingSince } : {}),
        failures: this.state?.failures[i] ?? 0,
      };
    });
    const errors = triggers.filter((t) => t.error !== undefined).map((t) => `${describeTrigger(t)}: ${t.error}`).join('; ');
    const readOnce = this.readings.some((r) => r.attemptAt !== undefined && !r.pending) || this.state?.lastPollAt !== undefined;
    const polled = this.state?.lastPollAt !== undefined;
    const active = this.state?.active ?? false;
    const fb = spec.fallback;
    // As KEDA's executor sets them after each poll (pkg/scaling/executor RequestScale).
    let ready: ConditionState;
    if (!readOnce) ready = { status: 'Unknown', reason: 'Pending', message: 'the triggers have not been read yet' };
    else if (errors === '') ready = { status: 'True', reason: 'ScaledObjectReady', message: 'ScaledObject is defined correctly and is ready for scaling' };
    else if (active) ready = { status: 'Unknown', reason: 'PartialTriggerError', message: `Some triggers defined in ScaledObject are not working correctly: ${errors}` };
    else if (fb && fb.replicas !== 0) ready = { status: 'True', reason: 'ScaledObjectReady', message: `ScaledObject will fall back to ${fb.replicas} replicas after failureThreshold ${fb.failureThreshold}: ${errors}` };
    else ready = { status: 'False', reason: 'TriggerError', message: `Triggers defined in ScaledObject are not working correctly: ${errors}` };
    const activeCond: ConditionState = !polled
      ? { status: 'Unknown', reason: 'Pending', message: 'not polled yet' }
      : active
        ? { status: 'True', reason: 'ScalerActive', message: 'Scaling is performed because triggers are active' }
        : { status: 'False', reason: 'ScalerNotActive', message: 'Scaling is not performed because triggers are not active' };
    const fallback: ConditionState = this.fallbackActive()
      ? { status: 'True', reason: 'FallbackExists', message: 'At least one trigger is falling back on this scaled object' }
      : { status: 'False', reason: 'NoFallbackFound', message: 'No fallbacks are active on this scaled object' };
    const isPaused = spec.paused || spec.pausedReplicas !== undefined;
    const paused: ConditionState = isPaused
      ? { status: 'True', reason: 'ScaledObjectPaused', message: 'ScaledObject is paused' }
      : { status: 'False', reason: 'ScaledObjectUnpaused', message: 'ScaledObject is not paused' };
    return {
      name: this.name,
      scaleTargetName: spec.target,
      appId: this.appId,
      min: spec.minReplicaCount,
      max: spec.maxReplicaCount,
      conditions: { ready, active: activeCond, fallback, paused },
      triggers,
    };
  }
}
