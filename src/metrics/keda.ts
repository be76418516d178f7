/**
 * The supervisor's metrics under KEDA's names and labels (kedacore/keda pkg/metricscollector/prommetrics.go, v2.20),
 * plus the HPA's replica counts under kube-state-metrics' names: what a Grafana board built for KEDA on a cluster
 * reads, from the scale loops of `qscale up` (docs/metrics.md lists each one and what it counts here).
 *
 * Reads, errors and activity are recorded by the loop as they happen; replica counts and the paused flag are read
 * from each tracked ScaledObject at scrape time, so they are what status shows at that moment.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { METRICS_CONTENT_TYPE, registerBuildInfo } from './registry.js';

/** KEDA's namespace for a ScaledObject without one. */
const DEFAULT_NAMESPACE = 'default';

/** KEDA names a trigger without `name` after its scaler's Go type. */
const SCALER_TYPES: Record<string, string> = {
  'azure-servicebus': 'azureServiceBusScaler',
  rabbitmq: 'rabbitMQScaler',
  'redis-streams': 'redisStreamsScaler',
  'redis-cluster-streams': 'redisStreamsScaler',
  postgresql: 'postgreSQLScaler',
  'nats-jetstream': 'natsJetStreamScaler',
};

/** The `scaler` label KEDA gives a trigger: its name when it has one, else its scaler's type ("rabbitMQScaler"). */
export function scalerLabel(trigger: { type: string; name?: string | undefined }): string {
  if (trigger.name) return trigger.name;
  return SCALER_TYPES[trigger.type] ?? `${trigger.type.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())}Scaler`;
}

export interface TrackedTrigger {
  index: number;
  type: string;
  name?: string | undefined;
  /** KEDA's external metric name, e.g. "s0-rabbitmq-jobs". */
  metricName: string;
}

/** What a ScaledObject and its HPA are at this moment, read at each scrape. */
export interface ScaledObjectSnapshot {
  hpaName: string;
  desiredReplicas: number;
  currentReplicas: number;
  minReplicas: number;
  maxReplicas: number;
  paused: boolean;
}

export interface TrackedScaledObject {
  name: string;
  namespace?: string | undefined;
  triggers: readonly TrackedTrigger[];
  snapshot(): ScaledObjectSnapshot;
}

/** The recorder one scale loop holds. */
export interface ScaledObjectMetrics {
  /** Trigger `i` (its position in the ScaledObject) read `value`, active or not, in `seconds`. */
  readOk(i: number, value: number, active: boolean, seconds: number): void;
  /** Trigger `i` failed to read after `seconds`: one error for the trigger and one for its ScaledObject. */
  readFailed(i: number, seconds: number): void;
  /** The ScaledObject is gone: its trigger, replica and paused series go with it, as KEDA drops a deleted one's. */
  untrack(): void;
}

const TRIGGER_LABELS = ['namespace', 'metric', 'scaledObject', 'scaler', 'triggerIndex', 'type'] as const;
const SO_LABELS = ['namespace', 'scaledObject'] as const;
const HPA_LABELS = ['namespace', 'horizontalpodautoscaler'] as const;

export class KedaMetrics {
  readonly registry = new Registry();
  private readonly tracked = new Set<TrackedScaledObject>();
  private readonly value: Gauge<(typeof TRIGGER_LABELS)[number]>;
  private readonly latency: Gauge<(typeof TRIGGER_LABELS)[number]>;
  private readonly active: Gauge<(typeof TRIGGER_LABELS)[number]>;
  private readonly detailErrors: Counter<(typeof TRIGGER_LABELS)[number]>;
  private readonly soErrors: Counter<(typeof SO_LABELS)[number]>;
  private readonly triggerRegistered: Gauge<'type'>;
  private readonly resourceRegistered: Gauge<'type' | 'namespace'>;

  constructor() {
    const registers = [this.registry];
    registerBuildInfo(this.registry);
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> => new Gauge({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> => new Counter({ name, help, labelNames, registers });
    this.value = gauge('keda_scaler_metrics_value', "The current value for each scaler's metric that would be used by the HPA in computing the target average.", TRIGGER_LABELS);
    this.latency = gauge('keda_scaler_metrics_latency_seconds', 'The latency of retrieving current metric from each scaler, in seconds.', TRIGGER_LABELS);
    this.active = gauge('keda_scaler_active', 'Indicates whether a scaler is active (1), or not (0).', TRIGGER_LABELS);
    this.detailErrors = counter('keda_scaler_detail_errors_total', 'The total number of errors encountered for each scaler.', TRIGGER_LABELS);
    this.soErrors = counter('keda_scaled_object_errors_total', 'The number of errors that have occurred for each ScaledObject.', SO_LABELS);
    this.triggerRegistered = gauge('keda_trigger_registered_total', 'Total number of triggers per trigger type registered.', ['type'] as const);
    this.resourceRegistered = gauge(
      'keda_resource_registered_total',
      'Total number of KEDA custom resources per namespace for each custom resource type (CRD) registered.',
      ['type', 'namespace'] as const,
    );
    const tracked = this.tracked;
    const fromSnapshots = (
      name: string,
      help: string,
      labelNames: readonly string[],
      read: (so: TrackedScaledObject, s: ScaledObjectSnapshot, ns: string) => [Record<string, string>, number],
    ): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect(this: Gauge) {
          this.reset();
          for (const so of tracked) {
            const [labels, v] = read(so, so.snapshot(), so.namespace ?? DEFAULT_NAMESPACE);
            this.set(labels, v);
          }
        },
      });
    };
    fromSnapshots('keda_scaled_object_paused', 'Indicates whether a ScaledObject is paused (1), or not (0).', SO_LABELS,
      (so, s, namespace) => [{ namespace, scaledObject: so.name }, s.paused ? 1 : 0]);
    fromSnapshots('kube_horizontalpodautoscaler_status_desired_replicas', 'Desired number of replicas of pods managed by this autoscaler.', HPA_LABELS,
      (_so, s, namespace) => [{ namespace, horizontalpodautoscaler: s.hpaName }, s.desiredReplicas]);
    fromSnapshots('kube_horizontalpodautoscaler_status_current_replicas', 'Current number of replicas of pods managed by this autoscaler.', HPA_LABELS,
      (_so, s, namespace) => [{ namespace, horizontalpodautoscaler: s.hpaName }, s.currentReplicas]);
    fromSnapshots('kube_horizontalpodautoscaler_spec_min_replicas', 'Lower limit for the number of pods that can be set by the autoscaler, default 1.', HPA_LABELS,
      (_so, s, namespace) => [{ namespace, horizontalpodautoscaler: s.hpaName }, s.minReplicas]);
    fromSnapshots('kube_horizontalpodautoscaler_spec_max_replicas', 'Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.', HPA_LABELS,
      (_so, s, namespace) => [{ namespace, horizontalpodautoscaler: s.hpaName }, s.maxReplicas]);
  }

  /**
   * Starts recording for a ScaledObject. Its error counters start at 0 (KEDA creates them on the first read), so a
   * rate() over them works before the first error.
   */
  track(so: TrackedScaledObject): ScaledObjectMetrics {
    const namespace = so.namespace ?? DEFAULT_NAMESPACE;
    const labels = so.triggers.map((t) => ({
      namespace,
      metric: t.metricName,
      scaledObject: so.name,
      scaler: scalerLabel(t),
      triggerIndex: String(t.index),
      type: 'scaledobject',
    }));
    const value = labels.map((l) => this.value.labels(l));
    const latency = labels.map((l) => this.latency.labels(l));
    const active = labels.map((l) => this.active.labels(l));
    const errors = labels.map((l) => this.detailErrors.labels(l));
    const soErrors = this.soErrors.labels({ namespace, scaledObject: so.name });
    for (const e of errors) e.inc(0);
    soErrors.inc(0);
    this.tracked.add(so);
    this.resourceRegistered.inc({ type: 'scaled_object', namespace });
    for (const t of so.triggers) this.triggerRegistered.inc({ type: t.type });
    let tracking = true;
    return {
      readOk: (i, v, isActive, seconds) => {
        value[i]?.set(v);
        active[i]?.set(isActive ? 1 : 0);
        latency[i]?.set(seconds);
      },
      readFailed: (i, seconds) => {
        latency[i]?.set(seconds);
        errors[i]?.inc();
        soErrors.inc();
      },
      untrack: () => {
        if (!tracking) return;
        tracking = false;
        this.tracked.delete(so);
        for (const l of labels) for (const m of [this.value, this.latency, this.active, this.detailErrors]) m.remove(l);
        this.resourceRegistered.dec({ type: 'scaled_object', namespace });
        for (const t of so.triggers) this.triggerRegistered.dec({ type: t.type });
      },
    };
  }

  readonly contentType = METRICS_CONTENT_TYPE;

  /** The text a scrape gets, in Prometheus' text format (contentType). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The supervisor's: one per process, as KEDA's operator has one registry; served at GET /metrics of the control server. */
export const kedaMetrics = new KedaMetrics();
