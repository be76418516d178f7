/**
 * What `qscale status` shows, as JSON: the same state the supervisor serves on loopback for a dashboard.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ReplicaInfo } from './replica.js';
import type { ScaledObjectSpec } from '../autoscaler/scaledobject.js';
import type { AutoscalerState } from '../autoscaler/state.js';

export interface DecisionRecord {
  /** ms since epoch */
  at: number;
  scaledObject: string;
  kind: 'keda' | 'hpa' | 'supervisor';
  from: number;
  to: number;
  reason: string;
}

export interface HpaLine {
  name: string;
  reference: string;
  /** e.g. "23/5 (avg)" — metric / target per trigger, joined by ", " like kubectl. */
  targets: string;
  minPods: number;
  maxPods: number;
  replicas: number;
  desired: number;
  active: boolean;
  paused: boolean;
  /** What the metric counts, in words. */
  metric: string;
}

/** A condition as KEDA sets it on a ScaledObject's status (Ready, Active, Fallback, Paused). */
export interface ConditionState {
  status: 'True' | 'False' | 'Unknown';
  /** One CamelCase word, KEDA's: ScaledObjectReady, TriggerError, PartialTriggerError, ScalerActive, ... */
  reason: string;
  message: string;
}

/** One trigger of a ScaledObject: its last reading, or why it could not be read. */
export interface TriggerStatus {
  index: number;
  type: string;
  name?: string;
  metricType: 'AverageValue' | 'Value';
  target: number;
  activationTarget: number;
  /** What the metric counts, in words. */
  describes: string;
  /** The metric's last value read (the whole queue, not per replica); undefined until a read succeeded. */
  value?: number;
  /** When `value` was read (ms since epoch). */
  readAt?: number;
  /** Why the last read failed; absent once a read succeeds again. */
  error?: string;
  /** When the current failure began. */
  failingSince?: number;
  /** Failed reads in a row, as KEDA's fallback counts them (only with a fallback configured). */
  failures: number;
}

/** `kubectl get scaledobject`: the target, the bounds, KEDA's conditions and the triggers. */
export interface ScaledObjectStatus {
  name: string;
  scaleTargetName: string;
  appId: string;
  min: number;
  max: number;
  conditions: { ready: ConditionState; active: ConditionState; fallback: ConditionState; paused: ConditionState };
  triggers: TriggerStatus[];
}

export interface QueueState {
  binding: string;
  queue: string;
  ready: number;
  inFlight: number;
  deadLettered: number;
  error?: string;
}

export interface WarmSidecarStatus {
  appId: string;
  /** The name the replica that adopts it will have. */
  name: string;
  pid: number | undefined;
  sidecarPort: number;
  /** The warm app runtime's pid, when the app is a node script and its runtime waits too. */
  appPid?: number;
}

export interface SystemStatus {
  pid: number;
  startedAt: number;
  embedded: boolean;
  dataDir: string;
  producerUrl: string | undefined;
  swaggerUrl: string | undefined;
  replicas: Array<ReplicaInfo & { ageSeconds: number }>;
  /** Standby sidecars started ahead for a scaled app's next replica (not replicas: counted nowhere else). */
  warmSidecars?: WarmSidecarStatus[];
  hpa: HpaLine[];
  scaledObjects: ScaledObjectStatus[];
  queue: QueueState | undefined;
  queues: QueueState[];
  decisions: DecisionRecord[];
  /** What comes next for each ScaledObject: the backlog at the current rate, the cooldown countdown. */
  outlook?: Outlook[];
}

/** What comes next for one ScaledObject, in numbers and in one line each. */
export interface Outlook {
  scaledObject: string;
  backlog?: BacklogOutlook;
  cooldown?: CooldownOutlook;
}

export interface BacklogOutlook {
  /** Ready + in-flight messages of the app's input queues. */
  messages: number;
  /** Messages processed per second over the last `overSeconds`; undefined until two samples were taken. */
  perSecond?: number;
  overSeconds?: number;
  /** messages / perSecond; undefined when nothing is processed. */
  etaSeconds?: number;
  text: string;
}

export interface CooldownOutlook {
  /** The replica count KEDA scales to (0, or idleReplicaCount). */
  to: number;
  /** When the KEDA poll that scales in is due (ms since epoch); undefined while something holds the scale-in back. */
  dueAt?: number;
  inSeconds?: number;
  text: string;
}

/** "32s", "2m10s", "1h05m". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "backlog 40 messages, ~32s at 1.25 msg/s": the backlog over the rate measured over the last `overMs`. */
export function backlogOutlook(messages: number, rate: { perSecond: number; overMs: number } | undefined): BacklogOutlook {
  const n = `backlog ${messages} message${messages === 1 ? '' : 's'}`;
  if (!rate) return { messages, text: messages === 0 ? 'no backlog' : `${n}; the processing rate is not measured yet` };
  const perSecond = Math.round(rate.perSecond * 100) / 100;
  const overSeconds = Math.round(rate.overMs / 1000);
  if (messages === 0) return { messages, perSecond, overSeconds, text: `no backlog (${perSecond} msg/s over the last ${overSeconds}s)` };
  if (rate.perSecond <= 0) return { messages, perSecond: 0, overSeconds, text: `${n}; none processed in the last ${overSeconds}s, so no estimate` };
  const etaSeconds = messages / rate.perSecond;
  return { messages, perSecond, overSeconds, etaSeconds, text: `${n}, ~${formatSeconds(etaSeconds)} at ${perSecond} msg/s` };
}

/** The ScaledObject settings and the autoscaler memory the countdown reads (KEDA's executor, as keda.ts follows it). */
export interface CooldownInput {
  spec: Pick<ScaledObjectSpec, 'pollingInterval' | 'cooldownPeriod' | 'initialCooldownPeriod' | 'minReplicaCount' | 'idleReplicaCount' | 'fallback' | 'paused' | 'pausedReplicas' | 'pausedScaleIn'>;
  state: Pick<AutoscalerState, 'replicas' | 'active' | 'createdAt' | 'lastActiveTime' | 'lastPollAt' | 'metrics'>;
}

/**
 * When KEDA scales the target in to 0 (or idleReplicaCount) if the triggers stay inactive: the first poll after the
 * cooldownPeriod since the last poll that found a trigger active (initialCooldownPeriod since the start when none
 * ever did). Undefined when no such scale-in is ahead: the target is active, already there, or paused.
 */
export function cooldownOutlook({ spec, state }: CooldownInput, now: number): CooldownOutlook | undefined {
  if (spec.paused || spec.pausedReplicas !== undefined || state.lastPollAt === undefined || state.active) return undefined;
  const from = state.replicas;
  const idle = spec.idleReplicaCount;
  if (!((idle !== undefined && from > idle) || (from > 0 && spec.minReplicaCount === 0))) return undefined;
  const to = idle ?? spec.minReplicaCount;
  const target = `scale to ${to}${idle !== undefined ? ' (idleReplicaCount)' : ''}`;
  const failing = state.metrics.some((m) => 'error' in m);
  if (failing && !spec.fallback) return { to, text: `no ${target} while a trigger cannot be read` };
  if (failing && spec.fallback && spec.fallback.replicas !== 0) return { to, text: `no ${target} while a trigger falls back to ${spec.fallback.replicas} replicas` };
  if (spec.pausedScaleIn) return { to, text: `no ${target}: scale-in is paused (autoscaling.keda.sh/paused-scale-in)` };
  const [since, period, what] = state.lastActiveTime === undefined
    ? [state.createdAt, spec.initialCooldownPeriod, 'initialCooldownPeriod']
    : [state.lastActiveTime, spec.cooldownPeriod, 'cooldownPeriod'];
  const due = since + period * 1000;
  // KEDA scales in at the first poll strictly after the cooldown ends; polls come every pollingInterval.
  const every = Math.max(1, spec.pollingInterval) * 1000;
  const dueAt = state.lastPollAt + Math.max(1, Math.floor((due - state.lastPollAt) / every) + 1) * every;
  const inSeconds = Math.max(0, (dueAt - now) / 1000);
  const idleFor = formatSeconds((now - since) / 1000);
  const when = dueAt <= now ? 'at the next poll' : `in ${formatSeconds(inSeconds)}`;
  const why = state.lastActiveTime === undefined ? `inactive since start, ${what} ${period}s` : `inactive for ${idleFor} of ${what} ${period}s`;
  return { to, dueAt, inSeconds, text: `${target} ${when} (${why})` };
}

export interface SupervisorFile {
  pid: number;
  controlUrl: string;
  producerUrl: string | undefined;
  startedAt: number;
  folder: string;
}

export function supervisorFilePath(dataDir: string): string {
  return path.join(dataDir, 'supervisor.json');
}

export async function writeSupervisorFile(dataDir: string, content: SupervisorFile): Promise<void> {
  await fs.mkdir(dataDir, { recursive: true });
  // Written aside and renamed over: a reader (qscale status, produce) never sees half a file while it is rewritten.
  const file = supervisorFilePath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(content, null, 2));
  await fs.rename(tmp, file);
}

export async function readSupervisorFile(dataDir: string): Promise<SupervisorFile | undefined> {
  try {
    return JSON.parse(await fs.readFile(supervisorFilePath(dataDir), 'utf8')) as SupervisorFile;
  } catch {
    return undefined;
  }
}

export async function removeSupervisorFile(dataDir: string, pid: number): Promise<void> {
  const cur = await readSupervisorFile(dataDir);
  if (cur && cur.pid === pid) await fs.rm(supervisorFilePath(dataDir), { force: true });
}
