import { promises as fs } from 'node:fs';
import { listYamlFiles, parseManifests, type Manifest } from '../../components/manifests.js';
import { parseScaledObjects, type ScaledObjectSpec } from '../../autoscaler/scaledobject.js';
import { ConfigError } from '../../errors.js';
import {
  durationFlag, formatSummary, formatTimeline, parseLoad, positiveIntFlag, simulate, triggerTargets, FlagError,
  type SimulationOptions,
} from '../../simulate/index.js';
import type { SimulateFlags } from './index.js';

export function simulationOptions(flags: SimulateFlags): SimulationOptions {
  if (flags.load.length === 0) throw new FlagError('--load', '', "give at least one, e.g. --load 0s:50 or --load 10s-70s:5/s");
  return {
    loads: flags.load.map(parseLoad),
    workMs: durationFlag('--work', flags.work),
    concurrency: positiveIntFlag('--concurrency', flags.concurrency),
    startupMs: durationFlag('--startup', flags.startup, { allowZero: true }),
    syncPeriodMs: durationFlag('--sync-period', flags.syncPeriod),
    pollingIntervalMs: flags.pollingInterval === undefined ? undefined : durationFlag('--polling-interval', flags.pollingInterval),
    stabilizationMs: durationFlag('--stabilization', flags.stabilization, { allowZero: true }),
    durationMs: durationFlag('--duration', flags.duration),
    instantActivation: flags.instantActivation,
  };
}

export function pickScaledObject(all: readonly ScaledObjectSpec[], path: string, name: string | undefined): ScaledObjectSpec {
  if (all.length === 0) throw new ConfigError(`no ScaledObject in ${path}`, { file: path });
  if (name !== undefined) {
    const so = all.find((s) => s.name === name);
    if (!so) throw new FlagError('--scaled-object', name, `no such ScaledObject in ${path} (there: ${all.map((s) => s.name).join(', ')})`);
    return so;
  }
  if (all.length > 1) throw new FlagError('--scaled-object', '', `${path} holds ${all.length} ScaledObjects (${all.map((s) => s.name).join(', ')}): name one`);
  return all[0]!;
}

/**
 * The documents of a file, or of the folder's files that hold a ScaledObject: a folder also holds the run file
 * (dapr.yaml) and kinds the simulator does not read, which need not parse as Kubernetes YAML here.
 */
export async function scaledObjectManifests(path: string): Promise<Manifest[]> {
  const stat = await fs.stat(path).catch(() => undefined);
  const files = await listYamlFiles([path]);
  const out: Manifest[] = [];
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8');
    if (stat?.isDirectory() && !/^\s*kind:\s*["']?ScaledObject\b/m.test(text)) continue;
    out.push(...parseManifests(text, file));
  }
  return out;
}

export async function runSimulate(path: string, flags: SimulateFlags): Promise<void> {
  const options = simulationOptions(flags);
  const { scaledObjects, notices } = parseScaledObjects(await scaledObjectManifests(path));
  const spec = pickScaledObject(scaledObjects, path, flags.scaledObject);
  const triggers = await triggerTargets(spec);
  options.cachedMetrics = spec.triggers.every((t) => t.useCachedMetrics);
  const result = simulate(spec, triggers, options);
  if (flags.json) {
    const { timeline, summary } = result;
    process.stdout.write(JSON.stringify({ timeline, summary }, null, 2) + '\n');
    return;
  }
  for (const n of notices) process.stderr.write(`note: ${n}\n`);
  const t = triggers.map((x) => `${x.metricType} target ${x.target}, activation ${x.activationTarget}`).join('; ');
  process.stdout.write(
    `ScaledObject ${spec.name} → ${spec.target}: min ${spec.minReplicaCount}, max ${spec.maxReplicaCount}, ` +
      `pollingInterval ${options.pollingIntervalMs !== undefined ? options.pollingIntervalMs / 1000 : spec.pollingInterval}s, cooldownPeriod ${spec.cooldownPeriod}s, ` +
      `HPA behavior ${spec.behavior ? 'set' : 'unset (legacy path)'}; ${t}\n\n`,
  );
  process.stdout.write(formatTimeline(result.timeline) + '\n\n' + formatSummary(result.summary) + '\n');
}
