/**
 * What a simulator chart shows, as plain rows: the queue (ready, in flight) and the replicas (desired, serving) as
 * step series, one marker per scaling decision, and the numbered legend of those decisions. Both outputs (SVG and
 * HTML) draw these rows, and the HTML page embeds them as they are.
 */
import type { Decision } from '../../autoscaler/state.js';
import { clock } from '../format.js';
import type { Sample, SimulationResult, Summary } from '../model.js';

export interface ChartRunInput {
  /** The ScaledObject's name. */
  name: string;
  /** The file or folder it was read from. */
  source: string;
  /** Its settings in one line ("min 0, max 10, pollingInterval 30s, ..."). */
  settings: string;
  /** A simulation run with `samples` recorded. */
  result: SimulationResult;
}

export interface ChartInput {
  runs: readonly ChartRunInput[];
  /** The load and model flags, as the command line had them. */
  load: string;
  durationMs: number;
}

/** One point of a step series; `t` in ms from the start. */
export interface SeriesPoint {
  t: number;
  value: number;
  /** Which line: "ready", "in flight", "desired", "actual (serving)"; prefixed "A "/"B " when comparing. */
  key: string;
}

export interface SeriesStyle {
  key: string;
  color: string;
  /** Stroke dash array; empty for a solid line. */
  dash: number[];
}

export interface DecisionMark {
  /** Which run: 0, or 1 for the --compare one. */
  run: number;
  /** "1", "2", ... or "A1", "B1", ... when comparing. */
  label: string;
  /** ms from the start */
  t: number;
  kind: Decision['kind'];
  from: number;
  to: number;
  reason: string;
  /** The marker's tooltip: label, time and reason. */
  tip: string;
  shape: 'triangle-up' | 'triangle-down' | 'circle';
  color: string;
}

export interface LegendLine {
  /** px from the left and the top of the legend (a wrapped line is indented) */
  x: number;
  y: number;
  text: string;
  heading: boolean;
}

export interface ChartData {
  /** Two runs, A and B. */
  compare: boolean;
  title: string;
  subtitle: string[];
  durationMs: number;
  /** The time axis' ends in ms: a little before 0, so markers at the start are not cut. */
  timeDomain: [number, number];
  /** d3 time format of the time axis, and its title with the unit. */
  timeFormat: string;
  timeTitle: string;
  queueMax: number;
  replicasMax: number;
  queue: SeriesPoint[];
  replicas: SeriesPoint[];
  queueStyles: SeriesStyle[];
  replicaStyles: SeriesStyle[];
  decisions: DecisionMark[];
  legend: LegendLine[];
  legendHeight: number;
}

/** Points per run and series above which the queue series keep only each slice's extremes. */
export const MAX_POINTS = 2000;
const LINE_HEIGHT = 15;
/** Characters per legend line before it wraps: about the chart's width in 11px text. */
const WRAP = 150;
const WRAP_BOLD = 125;
const INDENT = 24;

const SINGLE = {
  queue: [
    { name: 'ready', color: '#4c78a8', dash: [] },
    { name: 'in flight', color: '#f58518', dash: [] },
  ],
  replicas: [
    { name: 'desired', color: '#54a24b', dash: [6, 3] },
    { name: 'actual (serving)', color: '#e45756', dash: [] },
  ],
  marker: '#222222',
};
const RUN_COLORS = ['#1f77b4', '#d62728'];

export function chartData(input: ChartInput): ChartData {
  const compare = input.runs.length > 1;
  const prefix = (i: number) => (compare ? `${String.fromCharCode(65 + i)} ` : '');
  const queue: SeriesPoint[] = [];
  const replicas: SeriesPoint[] = [];
  const queueStyles: SeriesStyle[] = [];
  const replicaStyles: SeriesStyle[] = [];
  const decisions: DecisionMark[] = [];
  const legend: LegendLine[] = [];
  const line = (text: string, heading = false, x = 0) => legend.push({ x, y: legend.length * LINE_HEIGHT, text, heading });
  const end = input.durationMs;

  const heading = (text: string) => wrap(text, WRAP_BOLD).forEach((l, k) => line(l, true, k === 0 ? 0 : INDENT));
  heading(compare ? 'Scaling decisions (hover a marker for its reason)' : `Scaling decisions (hover a marker for its reason): ${outcome(input.runs[0]!.result.summary)}`);
  input.runs.forEach((run, i) => {
    const p = prefix(i);
    const color = (k: number) => (compare ? RUN_COLORS[i]! : [...SINGLE.queue, ...SINGLE.replicas][k]!.color);
    SINGLE.queue.forEach((s, k) => queueStyles.push({ key: p + s.name, color: color(k), dash: compare && k === 1 ? [2, 2] : s.dash }));
    SINGLE.replicas.forEach((s, k) => replicaStyles.push({ key: p + s.name, color: color(2 + k), dash: s.dash }));
    const samples = withEnd(run.result.samples ?? [], end);
    for (const s of thin(samples, MAX_POINTS)) {
      queue.push({ t: s.t * 1000, value: s.queue, key: p + 'ready' }, { t: s.t * 1000, value: s.inFlight, key: p + 'in flight' });
    }
    for (const s of steps(samples)) {
      // Actual first, so the dashed desired line is drawn over it where they agree.
      replicas.push({ t: s.t * 1000, value: s.replicas, key: p + 'actual (serving)' }, { t: s.t * 1000, value: s.desired, key: p + 'desired' });
    }
    if (compare) heading(`${p.trim()}: ${run.name} (${run.source}): ${outcome(run.result.summary)}`);
    run.result.decisions.forEach((d, n) => {
      const label = `${p.trim()}${n + 1}`;
      const text = `${label}. ${clock(d.at / 1000)} ${d.kind === 'keda' ? 'KEDA' : 'HPA'}: ${d.reason}`;
      decisions.push({
        run: i,
        label, t: d.at, kind: d.kind, from: d.from, to: d.to, reason: d.reason, tip: text,
        shape: d.to > d.from ? 'triangle-up' : d.to < d.from ? 'triangle-down' : 'circle',
        color: compare ? RUN_COLORS[i]! : SINGLE.marker,
      });
      wrap(text, WRAP).forEach((l, k) => line(l, false, k === 0 ? 0 : INDENT));
    });
    if (run.result.decisions.length === 0) line(`${p}no scaling decision in ${clock(end / 1000)}`);
  });

  const hours = end >= 3_600_000;
  const first = input.runs[0]!;
  return {
    compare,
    title: compare
      ? `qscale simulate: ${input.runs.map((r, i) => `${prefix(i).trim()} = ${r.name}`).join(' vs ')}`
      : `qscale simulate: ${first.name} (${first.source})`,
    subtitle: [input.load, ...input.runs.map((r, i) => (compare ? `${prefix(i).trim()} = ${r.source}: ${r.settings}` : r.settings))]
      .flatMap((l) => wrap(l, WRAP)),
    durationMs: end,
    timeDomain: [-Math.round(end * 0.03), end],
    timeFormat: hours ? '%H:%M' : '%M:%S',
    timeTitle: hours ? 'simulated time (h:min)' : 'simulated time (min:s)',
    queueMax: Math.max(1, ...queue.map((q) => q.value)),
    replicasMax: Math.max(1, ...replicas.map((r) => r.value), ...decisions.map((d) => d.to)) + 1,
    queue,
    replicas,
    queueStyles,
    replicaStyles,
    decisions,
    legend,
    legendHeight: legend.length * LINE_HEIGHT,
  };
}

function outcome(s: Summary): string {
  const drained = s.drainSeconds === null ? 'work left at the end' : `drained at ${clock(s.drainSeconds)}`;
  return `${s.messages} messages, ${drained}, peak ${s.peakReplicas} replicas, ${s.replicaSeconds} replica-seconds, longest wait ${s.maxWaitSeconds}s`;
}

/** The samples, closed by one at the end of the run so the last step reaches the edge. */
function withEnd(samples: readonly Sample[], endMs: number): Sample[] {
  const last = samples[samples.length - 1];
  if (!last || last.t * 1000 >= endMs) return [...samples];
  return [...samples, { ...last, t: endMs / 1000 }];
}

/** Only the samples where the replica counts change (they step rarely; the queue moves with every message). */
function steps(samples: readonly Sample[]): Sample[] {
  return samples.filter((s, i) => {
    const prev = samples[i - 1];
    return !prev || i === samples.length - 1 || prev.desired !== s.desired || prev.replicas !== s.replicas;
  });
}

/**
 * At most about `max` samples: cut into slices of time, keep each slice's first sample and those with the highest
 * and lowest queue and in-flight counts, so peaks survive at any zoom a static chart has.
 */
export function thin(samples: readonly Sample[], max: number): Sample[] {
  if (samples.length <= max) return [...samples];
  const per = Math.ceil(samples.length / Math.floor(max / 5));
  const keep = new Set<number>([samples.length - 1]);
  for (let start = 0; start < samples.length; start += per) {
    const stop = Math.min(samples.length, start + per);
    keep.add(start);
    for (const field of ['queue', 'inFlight'] as const) {
      let lo = start;
      let hi = start;
      for (let i = start; i < stop; i++) {
        if (samples[i]![field] < samples[lo]![field]) lo = i;
        if (samples[i]![field] > samples[hi]![field]) hi = i;
      }
      keep.add(lo).add(hi);
    }
  }
  return [...keep].sort((a, b) => a - b).map((i) => samples[i]!);
}

/** Words to lines of at most `width` characters. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  if (current !== '') lines.push(current);
  return lines;
}
