import { promises as fs } from 'node:fs';
import { listYamlFiles, parseManifests, type Manifest } from '../../components/manifests.js';
import { parseScaledObjects, type ScaledObjectSpec } from '../../autoscaler/scaledobject.js';
import type { TriggerTarget } from '../../autoscaler/state.js';
import { ConfigError } from '../../errors.js';
import { chartFormat } from '../../simulate/chart/format.js';
import {
  durationFlag, formatSummary, formatTimeline, parseLoad, positiveIntFlag, simulate, triggerTargets, FlagError,
  type SimulationOptions, type SimulationResult,
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
    if (!so) throw new FlagError('--scaled-object', name, `no such ScaledObject in ${path} (there: ${names(all)})`);
    return so;
  }
  if (all.length > 1) throw new FlagError('--scaled-object', '', `${path} holds ${all.length} ScaledObjects (${names(all)}): name one`);
  return all[0]!;
}

/** The ScaledObject of --compare: the one named by --scaled-object when it is there too, else its only one. */
export function pickComparison(all: readonly ScaledObjectSpec[], path: string, name: string | undefined): ScaledObjectSpec {
  if (all.length === 0) throw new ConfigError(`no ScaledObject in ${path}`, { file: path });
  const named = all.find((s) => s.name === name);
  if (named) return named;
  if (all.length > 1) throw new FlagError('--compare', path, `holds ${all.length} ScaledObjects (${names(all)}): give a file with one, or name it with --scaled-object`);
  return all[0]!;
}

function names(all: readonly ScaledObjectSpec[]): string {
  return all.map((s) => s.name).join(', ');
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

interface Run {
  source: string;
  spec: ScaledObjectSpec;
  notices: string[];
  triggers: TriggerTarget[];
  result: SimulationResult;
}

async function runOne(source: string, options: SimulationOptions, pick: (all: readonly ScaledObjectSpec[]) => ScaledObjectSpec): Promise<Run> {
  const { scaledObjects, notices } = parseScaledObjects(await scaledObjectManifests(source));
  const spec = pick(scaledObjects);
  const triggers = await triggerTargets(spec);
  const result = simulate(spec, triggers, { ...options, cachedMetrics: spec.triggers.every((t) => t.useCachedMetrics) });
  return { source, spec, notices, triggers, result };
}

/** The ScaledObject's settings that decide the curve, in one line. */
function settings(run: Run, options: SimulationOptions): string {
  const { spec } = run;
  const t = run.triggers.map((x) => `${x.metricType} target ${x.target}, activation ${x.activationTarget}`).join('; ');
  const polling = options.pollingIntervalMs !== undefined ? options.pollingIntervalMs / 1000 : spec.pollingInterval;
  return `min ${spec.minReplicaCount}, max ${spec.maxReplicaCount}, pollingInterval ${polling}s, cooldownPeriod ${spec.cooldownPeriod}s, ` +
    `HPA behavior ${spec.behavior ? 'set' : 'unset (legacy path)'}; ${t}`;
}

function modelLine(flags: SimulateFlags): string {
  return `load ${flags.load.join(' + ')}; work ${flags.work} per message, ${flags.concurrency} at a time per replica, startup ${flags.startup}; ` +
    `HPA sync period ${flags.syncPeriod}, downscale stabilization ${flags.stabilization}${flags.instantActivation ? '' : '; no instant activation'}`;
}

export async function runSimulate(path: string, flags: SimulateFlags): Promise<void> {
  const options = simulationOptions(flags);
  if (flags.chart !== undefined) {
    chartFormat(flags.chart);
    options.samples = true;
  }
  const runs = [await runOne(path, options, (all) => pickScaledObject(all, path, flags.scaledObject))];
  if (flags.compare !== undefined) {
    const other = flags.compare;
    runs.push(await runOne(other, options, (all) => pickComparison(all, other, flags.scaledObject)));
  }
  const compare = runs.length > 1;
  const key = (i: number) => (compare ? `${String.fromCharCode(65 + i)}: ` : '');

  if (flags.chart !== undefined) {
    const { chartData } = await import('../../simulate/chart/data.js');
    const { writeChart } = await import('../../simulate/chart/render.js');
    await writeChart(flags.chart, chartData({
      runs: runs.map((r) => ({ name: r.spec.name, source: r.source, settings: settings(r, options), result: r.result })),
      load: modelLine(flags),
      durationMs: options.durationMs,
    }));
  }
  const chartNote = flags.chart === undefined ? '' :
    `chart: ${flags.chart} (${runs.map((r, i) => `${key(i)}${r.result.decisions.length} decision${r.result.decisions.length === 1 ? '' : 's'} marked`).join(', ')})\n`;

  if (flags.json) {
    const out = compare
      ? { runs: runs.map((r) => ({ scaledObject: r.spec.name, source: r.source, timeline: r.result.timeline, summary: r.result.summary })) }
      : { timeline: runs[0]!.result.timeline, summary: runs[0]!.result.summary };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    process.stderr.write(chartNote);
    return;
  }
  const text = runs.map((r, i) => {
    for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
    return `${key(i)}ScaledObject ${r.spec.name} → ${r.spec.target}: ${settings(r, options)}\n\n` +
      formatTimeline(r.result.timeline) + '\n\n' + formatSummary(r.result.summary) + '\n';
  });
  process.stdout.write(text.join('\n') + (chartNote === '' ? '' : '\n' + chartNote));
}
