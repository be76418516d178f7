/**
 * What `qscale status` shows, as JSON: the same state the supervisor serves on loopback for a dashboard.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ReplicaInfo } from './replica.js';

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

export interface SystemStatus {
  pid: number;
  startedAt: number;
  embedded: boolean;
  dataDir: string;
  producerUrl: string | undefined;
  swaggerUrl: string | undefined;
  replicas: Array<ReplicaInfo & { ageSeconds: number }>;
  hpa: HpaLine[];
  scaledObjects: ScaledObjectStatus[];
  queue: QueueState | undefined;
  queues: QueueState[];
  decisions: DecisionRecord[];
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
  await fs.writeFile(supervisorFilePath(dataDir), JSON.stringify(content, null, 2));
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
