/**
 * Each trigger's target and activation value, read the way the real trigger reads them: through the broker's own
 * TriggerDefinition when the registry has one, else from KEDA's documented field names and defaults. No
 * credentials are needed: only the queue parameters are parsed.
 */
import { ConfigError } from '../errors.js';
import type { ResolvedTrigger, TriggerDefinition } from '../autoscaler/scaler.js';
import type { ScaledObjectSpec, TriggerSpec } from '../autoscaler/scaledobject.js';
import type { TriggerTarget } from '../autoscaler/state.js';

/** KEDA scalers' target and activation fields, first name wins (pkg/scalers/*_scaler.go). */
const KEDA_FIELDS: Record<string, { target: string[]; defaultTarget?: number; activation: string }> = {
  'azure-servicebus': { target: ['messageCount', 'queueLength'], defaultTarget: 5, activation: 'activationMessageCount' },
  'azure-queue': { target: ['queueLength'], defaultTarget: 5, activation: 'activationQueueLength' },
  'aws-sqs-queue': { target: ['queueLength'], defaultTarget: 5, activation: 'activationQueueLength' },
  kafka: { target: ['lagThreshold'], defaultTarget: 10, activation: 'activationLagThreshold' },
  'nats-jetstream': { target: ['lagThreshold'], defaultTarget: 10, activation: 'activationLagThreshold' },
  postgresql: { target: ['targetQueryValue'], activation: 'activationTargetQueryValue' },
  rabbitmq: { target: ['value', 'queueLength'], defaultTarget: 20, activation: 'activationValue' },
  redis: { target: ['listLength'], defaultTarget: 5, activation: 'activationListLength' },
  'redis-streams': { target: ['pendingEntriesCount', 'streamLength', 'lagCount'], defaultTarget: 5, activation: 'activationLagCount' },
  'qscale-embedded': { target: ['messageCount'], defaultTarget: 5, activation: 'activationMessageCount' },
};

type FindTrigger = (type: string) => TriggerDefinition | undefined;

async function loadRegistry(): Promise<FindTrigger | undefined> {
  try {
    const mod = (await import('../backends/registry.js')) as { findTrigger?: FindTrigger };
    return mod.findTrigger;
  } catch {
    // The simulator needs no broker code: KEDA's field table below is enough.
    return undefined;
  }
}

function asResolved(spec: ScaledObjectSpec, t: TriggerSpec): ResolvedTrigger {
  const base = ['spec', 'triggers', t.index] as const;
  return {
    index: t.index,
    type: t.type,
    name: t.name,
    metricType: t.metricType,
    metadata: t.metadata,
    subject: `trigger ${t.index} (${t.type}) of ScaledObject ${spec.name}`,
    where: (field?: string) => spec.where(field === undefined ? [...base] : [...base, 'metadata', field]),
  };
}

function fromTable(spec: ScaledObjectSpec, t: TriggerSpec): { target: number; activationTarget: number } {
  const r = asResolved(spec, t);
  const fields = KEDA_FIELDS[t.type];
  if (!fields) {
    throw new ConfigError(
      `${r.subject}: the simulator does not know the target of trigger type '${t.type}' (known: ${Object.keys(KEDA_FIELDS).sort().join(', ')})`,
      { ...r.where('type'), field: 'type' },
    );
  }
  const num = (name: string): number | undefined => {
    const raw = t.metadata[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${r.subject}: metadata ${name} must be a number, got '${raw}'`, { ...r.where(name), field: name });
    return n;
  };
  const name = fields.target.find((f) => t.metadata[f] !== undefined);
  const target = name !== undefined ? num(name)! : fields.defaultTarget;
  if (target === undefined) {
    throw new ConfigError(`${r.subject}: missing required metadata '${fields.target[0]}'`, { ...r.where(), field: fields.target[0] });
  }
  if (!(target > 0)) throw new ConfigError(`${r.subject}: the target must be more than 0, got ${target}`, { ...r.where(name), field: name });
  return { target, activationTarget: num(fields.activation) ?? 0 };
}

/** Targets for every trigger of `spec`, in order. Throws ConfigError naming the trigger, file:line and field. */
export async function triggerTargets(spec: ScaledObjectSpec): Promise<TriggerTarget[]> {
  const find = await loadRegistry();
  return spec.triggers.map((t) => {
    const def = find?.(t.type);
    const params = def ? def.parseQueueParams(asResolved(spec, t)) : fromTable(spec, t);
    return {
      label: spec.triggers.length > 1 ? `queue (${t.name ?? `trigger ${t.index}`})` : 'queue',
      metricType: t.metricType,
      target: params.target,
      activationTarget: params.activationTarget,
    };
  });
}
