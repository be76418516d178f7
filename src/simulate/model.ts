/**
 * The autoscaler's own functions (createAutoscaler) on a virtual clock, over a model of one queue and its consumer
 * replicas. Event-driven: time jumps from one event to the next, so a day of load runs in about a second.
 *
 * Model: messages arrive per the loads; each ready replica works on up to `concurrency` messages at once, each for
 * `work`; a started replica is ready after `startup`; a stopped replica takes no new work, finishes what it holds,
 * then leaves. The metric every trigger reads is ready + in-flight messages (Service Bus' ActiveMessageCount).
 * KEDA polls every pollingInterval — and, with instant activation, as soon as a message lands on an empty queue at
 * 0 replicas, as qscale's local loop does; the HPA syncs every sync period and reads the metric fresh (KEDA's
 * metrics server asks the scaler each time unless every trigger sets useCachedMetrics).
 */
import { createAutoscaler, type AutoscalerSpec } from '../autoscaler/autoscaler.js';
import type { AutoscalerState, Decision, StepResult, TriggerTarget } from '../autoscaler/state.js';
import { Agenda, type Timed } from './heap.js';
import type { Load } from './load.js';

export interface SimulationOptions {
  loads: readonly Load[];
  workMs: number;
  concurrency: number;
  startupMs: number;
  syncPeriodMs: number;
  /** Overrides the ScaledObject's pollingInterval. */
  pollingIntervalMs?: number;
  /** The HPA's downscale stabilization window. */
  stabilizationMs: number;
  durationMs: number;
  instantActivation: boolean;
  /** True when every trigger sets useCachedMetrics: the HPA then reads the last poll's metric. */
  cachedMetrics?: boolean;
  /** Also record `samples`: the state at every instant it changed (for charts; a day of load makes many). */
  samples?: boolean;
}

export interface TimelineRow {
  /** seconds */
  t: number;
  queue: number;
  inFlight: number;
  desired: number;
  /** Replicas serving (ready, not stopping). */
  replicas: number;
  reason: string;
}

/** The queue and the replicas at one instant, recorded whenever one of them changed. */
export interface Sample {
  /** seconds */
  t: number;
  queue: number;
  inFlight: number;
  desired: number;
  /** Replicas serving (ready, not stopping). */
  replicas: number;
}

export interface Summary {
  /** When the last message finished, in seconds from the start; null when work remained at the end. */
  drainSeconds: number | null;
  peakReplicas: number;
  /** Replica-seconds of every replica that existed (starting, serving, stopping): what the load cost. */
  replicaSeconds: number;
  /** The longest a message waited in the queue before a replica took it. */
  maxWaitSeconds: number;
  messages: number;
  processed: number;
  decisions: number;
}

export interface SimulationResult {
  timeline: TimelineRow[];
  summary: Summary;
  decisions: Decision[];
  /** Only when options.samples is set; the first is t=0. */
  samples?: Sample[];
}

const enum Kind {
  Arrival = 0,
  Done = 1,
  Ready = 2,
  Poll = 3,
  Sync = 4,
}

interface Event extends Timed {
  kind: Kind;
  /** Arrival: the load index; Done / Ready: the replica id. */
  ref: number;
}

interface Replica {
  id: number;
  state: 'starting' | 'ready' | 'stopping' | 'gone';
  busy: number;
  since: number;
}

export function simulate(spec: AutoscalerSpec, triggers: readonly TriggerTarget[], o: SimulationOptions): SimulationResult {
  const auto = createAutoscaler(
    spec,
    {
      triggers: [...triggers],
      syncPeriodSeconds: o.syncPeriodMs / 1000,
      pollingIntervalSeconds: o.pollingIntervalMs !== undefined ? o.pollingIntervalMs / 1000 : undefined,
      downscaleStabilizationSeconds: o.stabilizationMs / 1000,
    },
    0,
  );
  const pollMs = auto.pollingIntervalSeconds * 1000;
  const agenda = new Agenda<Event>();
  let seq = 0;
  const at = (t: number, kind: Kind, ref = 0) => agenda.push({ at: t, order: kind, seq: seq++, kind, ref });

  // Queue of arrival times (ms), consumed from `head`; compacted now and then.
  let queue: number[] = [];
  let head = 0;
  const queued = () => queue.length - head;
  let inFlight = 0;
  let arrived = 0;
  let processed = 0;
  let lastDone: number | null = null;
  let maxWait = 0;

  const replicas = new Map<number, Replica>();
  let nextId = 1;
  /** One entry per free slot of a ready replica (stale entries of stopped replicas are skipped). */
  const free: number[] = [];
  let existing = 0;
  let peak = 0;
  let replicaMs = 0;
  let lastT = 0;

  let state: AutoscalerState = auto.initial;
  const decisions: Decision[] = [];
  const timeline: TimelineRow[] = [];
  let pendingReasons: string[] = [];
  let lastRow: TimelineRow | undefined;
  const samples: Sample[] | undefined = o.samples ? [{ t: 0, queue: 0, inFlight: 0, desired: state.replicas, replicas: 0 }] : undefined;

  const count = { starting: 0, ready: 0, stopping: 0, gone: 0 };
  const serving = () => count.ready;
  const active = () => count.ready + count.starting;
  const move = (r: Replica, to: Replica['state']) => {
    count[r.state]--;
    count[to]++;
    r.state = to;
  };

  const leave = (r: Replica) => {
    move(r, 'gone');
    replicas.delete(r.id);
    existing--;
  };

  const dispatch = (t: number) => {
    while (queued() > 0 && free.length > 0) {
      const id = free.pop()!;
      const r = replicas.get(id);
      if (!r || r.state !== 'ready') continue;
      const arrivedAt = queue[head++]!;
      maxWait = Math.max(maxWait, t - arrivedAt);
      r.busy++;
      inFlight++;
      at(t + o.workMs, Kind.Done, id);
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };

  const reconcile = (t: number, desired: number) => {
    let n = active();
    while (n < desired) {
      const r: Replica = { id: nextId++, state: 'starting', busy: 0, since: t };
      count.starting++;
      replicas.set(r.id, r);
      existing++;
      peak = Math.max(peak, existing);
      at(t + o.startupMs, Kind.Ready, r.id);
      n++;
    }
    if (n > desired) {
      // As a ReplicaSet picks pods to delete: not yet ready first, then the least busy, newest first.
      const victims = [...replicas.values()]
        .filter((r) => r.state === 'starting' || r.state === 'ready')
        .sort((a, b) => rank(a) - rank(b) || a.busy - b.busy || b.since - a.since)
        .slice(0, n - desired);
      for (const r of victims) {
        if (r.state === 'starting' || r.busy === 0) leave(r);
        else move(r, 'stopping');
      }
    }
  };

  const apply = (t: number, r: StepResult) => {
    state = r.state;
    if (r.decision) {
      decisions.push(r.decision);
      pendingReasons.push(`${r.decision.kind === 'keda' ? 'KEDA' : 'HPA'}: ${r.decision.reason}`);
    }
    reconcile(t, r.desiredReplicas);
  };

  const metric = () => queued() + inFlight;
  const observations = () => triggers.map(() => ({ value: metric() }));

  // Loads become arrival events; a rate load schedules its next arrival as each one lands.
  o.loads.forEach((l, i) => {
    if (l.from < o.durationMs) at(l.from, Kind.Arrival, i);
  });
  const nextArrival = new Map<number, number>();
  at(0, Kind.Poll);
  at(0, Kind.Sync);

  const emit = (t: number, before: { queue: number; inFlight: number; desired: number; replicas: number }) => {
    const row: TimelineRow = { t: t / 1000, queue: queued(), inFlight, desired: state.replicas, replicas: serving(), reason: '' };
    if (samples) record(samples, row);
    const wasEmpty = before.queue + before.inFlight === 0;
    const isEmpty = row.queue + row.inFlight === 0;
    const reasons = pendingReasons;
    pendingReasons = [];
    if (wasEmpty && !isEmpty) reasons.unshift(`work arrived: ${row.queue + row.inFlight} message${row.queue + row.inFlight === 1 ? '' : 's'}`);
    if (!wasEmpty && isEmpty) reasons.push('queue drained');
    if (row.replicas !== before.replicas) reasons.push(`${row.replicas} replica${row.replicas === 1 ? '' : 's'} serving`);
    if (reasons.length === 0 && row.desired === before.desired) return;
    row.reason = reasons.join('; ');
    if (lastRow && lastRow.t === row.t) timeline.pop();
    timeline.push(row);
    lastRow = row;
  };

  while (agenda.size > 0) {
    const t = agenda.peek()!.at;
    if (t > o.durationMs) break;
    replicaMs += existing * (t - lastT);
    lastT = t;
    const before = { queue: queued(), inFlight, desired: state.replicas, replicas: serving() };
    while (agenda.size > 0 && agenda.peek()!.at === t) {
      const e = agenda.pop()!;
      switch (e.kind) {
        case Kind.Arrival: {
          const l = o.loads[e.ref]!;
          const emptyBefore = queued() + inFlight === 0;
          let n = 1;
          if (l.rate !== undefined) {
            const k = nextArrival.get(e.ref) ?? 0;
            nextArrival.set(e.ref, k + 1);
            const next = l.from + ((k + 1) * 1000) / l.rate;
            if (next < l.to! && next <= o.durationMs) at(next, Kind.Arrival, e.ref);
          } else if (l.to !== undefined) {
            const k = nextArrival.get(e.ref) ?? 0;
            nextArrival.set(e.ref, k + 1);
            const next = l.from + ((k + 1) * (l.to - l.from)) / l.count!;
            if (k + 1 < l.count! && next <= o.durationMs) at(next, Kind.Arrival, e.ref);
          } else {
            n = l.count!;
          }
          for (let i = 0; i < n; i++) queue.push(t);
          arrived += n;
          dispatch(t);
          if (o.instantActivation && emptyBefore && n > 0 && state.replicas === 0) apply(t, auto.poll(state, observations(), t));
          break;
        }
        case Kind.Done: {
          const r = replicas.get(e.ref);
          inFlight--;
          processed++;
          lastDone = t;
          if (r) {
            r.busy--;
            if (r.state === 'stopping' && r.busy === 0) leave(r);
            else if (r.state === 'ready') free.push(r.id);
          }
          dispatch(t);
          break;
        }
        case Kind.Ready: {
          const r = replicas.get(e.ref);
          if (r && r.state === 'starting') {
            move(r, 'ready');
            for (let i = 0; i < o.concurrency; i++) free.push(r.id);
            dispatch(t);
          }
          break;
        }
        case Kind.Poll:
          apply(t, auto.poll(state, observations(), t));
          at(t + pollMs, Kind.Poll);
          break;
        case Kind.Sync:
          apply(t, auto.sync(state, t, {
            observations: o.cachedMetrics ? undefined : observations(),
            observed: { replicas: active(), ready: serving() },
          }));
          at(t + o.syncPeriodMs, Kind.Sync);
          break;
      }
    }
    emit(t, before);
  }
  replicaMs += existing * (o.durationMs - lastT);

  const drained = queued() + inFlight === 0;
  return {
    timeline,
    decisions,
    ...(samples ? { samples } : {}),
    summary: {
      drainSeconds: drained ? (lastDone ?? 0) / 1000 : null,
      peakReplicas: peak,
      replicaSeconds: Math.round(replicaMs / 1000),
      maxWaitSeconds: maxWait / 1000,
      messages: arrived,
      processed,
      decisions: decisions.length,
    },
  };
}

function record(samples: Sample[], row: TimelineRow): void {
  const last = samples[samples.length - 1]!;
  if (last.queue === row.queue && last.inFlight === row.inFlight && last.desired === row.desired && last.replicas === row.replicas) return;
  const s: Sample = { t: row.t, queue: row.queue, inFlight: row.inFlight, desired: row.desired, replicas: row.replicas };
  if (last.t === s.t) samples[samples.length - 1] = s;
  else samples.push(s);
}

function rank(r: Replica): number {
  return r.state === 'starting' ? 0 : 1;
}
