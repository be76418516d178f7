import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import vm from 'node:vm';
import * as vega from 'vega';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parseManifests } from '../../src/components/manifests.js';
import { parseScaledObjects } from '../../src/autoscaler/scaledobject.js';
import { simulate, triggerTargets, parseLoad, type SimulationOptions, type SimulationResult, type TimelineRow } from '../../src/simulate/index.js';
import { clock } from '../../src/simulate/format.js';
import { chartData, thin, type ChartData, type ChartInput } from '../../src/simulate/chart/data.js';
import { chartFormat } from '../../src/simulate/chart/format.js';
import { compileChart, renderHtml, renderSvg, writeChart } from '../../src/simulate/chart/render.js';
import { PANEL_HEIGHT, WIDTH } from '../../src/simulate/chart/spec.js';
import { CLI_ERRORS } from '../../src/cli/codes.js';
import { QscaleError } from '../../src/errors.js';
import { SEED_SCALEDOBJECT } from '../autoscaler/fixtures.js';

const run = promisify(execFile);
const MAIN = path.resolve('dist/src/cli/main.js');

const OPTIONS: SimulationOptions = {
  loads: [parseLoad('0s:50')],
  workMs: 5000,
  concurrency: 1,
  startupMs: 1000,
  syncPeriodMs: 15_000,
  stabilizationMs: 300_000,
  durationMs: 7 * 60_000,
  instantActivation: true,
  samples: true,
};

/** The seed with a behavior: scales down within a minute, so its run differs from the seed's at a glance. */
const QUICK = SEED_SCALEDOBJECT.replace('bindingconsumer-scaler', 'quick-scaler').replace('  minReplicaCount: 0\n', `  minReplicaCount: 0
  pollingInterval: 15
  cooldownPeriod: 60
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 60
`);

async function simulated(yaml: string, extra: Partial<SimulationOptions> = {}) {
  const spec = parseScaledObjects(parseManifests(yaml, 'scaling.yaml')).scaledObjects[0]!;
  const result = simulate(spec, await triggerTargets(spec), { ...OPTIONS, ...extra });
  return { name: spec.name, source: 'scaling.yaml', settings: `max ${spec.maxReplicaCount}`, result };
}

async function seedInput(): Promise<ChartInput> {
  return { runs: [await simulated(SEED_SCALEDOBJECT)], load: 'load 0s:50', durationMs: OPTIONS.durationMs };
}

type Node = Record<string, unknown>;
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', preserveOrder: true, trimValues: false });

/** Every element of a parsed document (preserveOrder form), depth first, with its attributes and children. */
function elements(nodes: Node[], out: Array<{ tag: string; attrs: Record<string, string>; children: Node[] }> = []) {
  for (const n of nodes) {
    const tag = Object.keys(n).find((k) => k !== ':@');
    if (!tag || tag === '#text') continue;
    const children = n[tag] as Node[];
    out.push({ tag, attrs: (n[':@'] ?? {}) as Record<string, string>, children });
    elements(children, out);
  }
  return out;
}

function textOf(children: Node[]): string {
  return children.map((c) => String(c['#text'] ?? '')).join('');
}

function parseSvg(svg: string) {
  const valid = XMLValidator.validate(svg);
  assert.equal(valid, true, `not well-formed XML: ${JSON.stringify(valid)}`);
  return elements(parser.parse(svg) as Node[]);
}

function markers(svg: string) {
  return parseSvg(svg).filter((e) => e.tag === 'path' && e.attrs['@aria-roledescription'] === 'scaling decision');
}

/** The replicas panel's line for `key`, as the pixel points of its path. */
function replicaLine(svg: string, key: string): Array<[number, number]> {
  const line = parseSvg(svg).find((e) => e.tag === 'path' && e.attrs['@aria-roledescription'] === 'replicas' && e.attrs['@aria-label']!.endsWith(`key: ${key}`));
  assert.ok(line, `no replicas line '${key}' in the SVG`);
  return [...line.attrs['@d']!.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** The value a step line drawn in pixels shows at time t (seconds), through the chart's own axes. */
function valueAt(points: Array<[number, number]>, t: number, data: ChartData): number {
  const [d0, d1] = data.timeDomain;
  const x = ((t * 1000 - d0) / (d1 - d0)) * WIDTH;
  let y: number | undefined;
  for (let i = 0; i + 1 < points.length; i++) {
    const [x0, y0] = points[i]!;
    const [x1, y1] = points[i + 1]!;
    if (y0 === y1 && x0 <= x && x < x1) y = y0;
  }
  assert.ok(y !== undefined, `the line has no step over t=${t}s`);
  return (1 - y / PANEL_HEIGHT) * data.replicasMax;
}

/** What the simulation's own timeline says at time t (seconds): its last row at or before t. */
function timelineAt(rows: readonly TimelineRow[], t: number): TimelineRow | undefined {
  let last: TimelineRow | undefined;
  for (const r of rows) if (r.t <= t) last = r;
  return last;
}

function tip(d: SimulationResult['decisions'][number], label: string): string {
  return `${label}. ${clock(d.at / 1000)} ${d.kind === 'keda' ? 'KEDA' : 'HPA'}: ${d.reason}`;
}

describe('simulate chart', { timeout: 120_000 }, () => {
  test('simulate chart - the SVG is well-formed XML with one marker per decision, its reason in a <title>, in order', async () => {
    const input = await seedInput();
    const decisions = input.runs[0]!.result.decisions;
    assert.equal(decisions.length, 8, 'the seed run decides 8 times (docs/simulate.md)');
    const found = markers(await renderSvg(chartData(input)));
    assert.equal(found.length, decisions.length);
    found.forEach((m, i) => {
      const title = m.children.find((c) => 'title' in c);
      assert.ok(title, `marker ${i + 1} has no <title>`);
      assert.equal(textOf(title.title as Node[]), tip(decisions[i]!, String(i + 1)));
    });
  });

  test('simulate chart - each marker stands at its decision: the time it was made and the replicas it set', async () => {
    const input = await seedInput();
    const data = chartData(input);
    const found = markers(await renderSvg(data));
    const [d0, d1] = data.timeDomain;
    input.runs[0]!.result.decisions.forEach((d, i) => {
      const [, x, y] = /translate\((-?[\d.]+),(-?[\d.]+)\)/.exec(found[i]!.attrs['@transform']!)!.map(Number) as [number, number, number];
      assert.ok(Math.abs(x - ((d.at - d0) / (d1 - d0)) * WIDTH) < 0.5, `marker ${i + 1} at x=${x}, decision at ${d.at}ms`);
      assert.ok(Math.abs((1 - y / PANEL_HEIGHT) * data.replicasMax - d.to) < 0.01, `marker ${i + 1} at y=${y}, decision sets ${d.to}`);
    });
  });

  test('simulate chart - the desired and actual replica lines show the simulated timeline, second by second', async () => {
    const input = await seedInput();
    const data = chartData(input);
    const svg = await renderSvg(data);
    const actual = replicaLine(svg, 'actual (serving)');
    const desired = replicaLine(svg, 'desired');
    const timeline = input.runs[0]!.result.timeline;
    const steps: number[] = [];
    let starting = 0;
    for (let t = 0.5; t < OPTIONS.durationMs / 1000; t += 1) {
      const row = timelineAt(timeline, t);
      const want = { actual: row?.replicas ?? 0, desired: row?.desired ?? 0 };
      assert.equal(Math.round(valueAt(actual, t, data) * 100) / 100, want.actual, `actual replicas at ${t}s`);
      assert.equal(Math.round(valueAt(desired, t, data) * 100) / 100, want.desired, `desired replicas at ${t}s`);
      if (steps.at(-1) !== want.actual) steps.push(want.actual);
      if (want.desired > want.actual) starting++;
    }
    assert.equal(starting, 3, 'desired leads actual by the 1 s startup at each of the 3 scale-ups');
    assert.deepEqual(steps, [0, 4, 8, 10, 9, 5, 1, 0], 'the samples cover the rise and the fall');
  });

  test('simulate chart - the HTML page embeds the chart rows, draws them with Vega inlined, and loads nothing', async () => {
    const input = await seedInput();
    const data = chartData(input);
    const html = await renderHtml(data);
    const island = /<script type="application\/json" id="qscale-chart-data">([^<]*)<\/script>/.exec(html);
    assert.ok(island, 'no embedded chart data');
    const embedded = JSON.parse(island[1]!) as ChartData;
    assert.deepEqual(embedded, JSON.parse(JSON.stringify(data)));
    assert.deepEqual(embedded.decisions.map((d) => d.tip), input.runs[0]!.result.decisions.map((d, i) => tip(d, String(i + 1))));
    const spec = JSON.parse(/<script type="application\/json" id="qscale-chart-spec">([^<]*)<\/script>/.exec(html)![1]!) as { data: Array<{ name: string; values?: unknown }> };
    for (const name of ['queue', 'replicas', 'decisions', 'legend']) {
      const set = spec.data.find((d) => d.name === name);
      assert.ok(set && set.values === undefined, `the spec reads '${name}' from the embedded rows`);
    }
    assert.match(html, /<script>\/\* Vega [\d.]+, BSD-3-Clause license \*\/\n!function/);
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img[^>]+src=/);

    // The page's own script, run against Node's Vega with no DOM: it draws every decision of the embedded rows.
    const boot = [...html.matchAll(/<script>\n([\s\S]*?)<\/script>/g)].at(-1)![1]!;
    const islands: Record<string, string> = {
      'qscale-chart-data': island[1]!,
      'qscale-chart-spec': /id="qscale-chart-spec">([^<]*)</.exec(html)![1]!,
    };
    const window: { qscaleChart?: vega.View } = {};
    const browserVega = { ...vega, View: function (runtime: vega.Runtime) { return new vega.View(runtime, { renderer: 'none' }); } };
    vm.runInNewContext(boot, { window, vega: browserVega, document: { getElementById: (id: string) => ({ textContent: islands[id] }) } });
    const view = window.qscaleChart!;
    try {
      const drawn = parseSvg(await view.toSVG()).filter((e) => e.attrs['@aria-roledescription'] === 'scaling decision');
      assert.deepEqual(drawn.map((e) => e.attrs['@aria-label']), data.decisions.map((d) => d.tip));
      assert.ok(parseSvg(await view.toSVG()).some((e) => e.attrs['@aria-label']?.endsWith('key: in flight')), 'the queue is drawn');
    } finally {
      view.finalize();
    }
  });

  test('simulate chart - two runs on one chart: A and B markers, each from its own run', async () => {
    const runs = [await simulated(SEED_SCALEDOBJECT), await simulated(QUICK)];
    const data = chartData({ runs, load: 'load 0s:50', durationMs: OPTIONS.durationMs });
    const found = markers(await renderSvg(data));
    const want = runs.flatMap((r, i) => r.result.decisions.map((d, n) => tip(d, `${'AB'[i]}${n + 1}`)));
    assert.deepEqual(found.map((m) => textOf(m.children.find((c) => 'title' in c)!.title as Node[])), want);
    assert.ok(runs[1]!.result.summary.replicaSeconds < runs[0]!.result.summary.replicaSeconds, 'the runs differ');
    assert.deepEqual(data.replicaStyles.map((s) => s.key), ['A desired', 'A actual (serving)', 'B desired', 'B actual (serving)']);
  });

  test('simulate chart - Vega-Lite compiles the chart without a warning, alone and compared', async () => {
    const runs = [await simulated(SEED_SCALEDOBJECT), await simulated(QUICK)];
    const none = await simulated(SEED_SCALEDOBJECT, { loads: [] });
    for (const input of [{ runs: [runs[0]!] }, { runs }, { runs: [none] }]) {
      assert.deepEqual(compileChart(chartData({ ...input, load: '', durationMs: OPTIONS.durationMs })).warnings, []);
    }
    assert.match(chartData({ runs: [none], load: '', durationMs: OPTIONS.durationMs }).legend.at(-1)!.text, /no scaling decision in 07:00/);
  });

  test('simulate chart - thinning a long run keeps each slice\'s peak and the last sample', () => {
    const samples = Array.from({ length: 100_000 }, (_, i) => ({ t: i, queue: i === 54_321 ? 999 : i % 7, inFlight: i % 3, desired: 1, replicas: 1 }));
    const kept = thin(samples, 2000);
    assert.ok(kept.length <= 2000, `${kept.length} samples kept`);
    assert.ok(kept.some((s) => s.queue === 999), 'the spike survives');
    assert.equal(kept.at(-1)!.t, 99_999);
    assert.deepEqual(kept.map((s) => s.t), [...kept.map((s) => s.t)].sort((a, b) => a - b));
  });

  test('simulate chart - a file name that is neither .svg nor .html is refused with ERR_FLAG', () => {
    for (const name of ['out.png', 'out', 'chart.svg.txt']) {
      assert.throws(() => chartFormat(name), (err: unknown) =>
        err instanceof QscaleError && err.code === 'ERR_FLAG' && err.message.startsWith(`--chart '${name}': cannot tell the format from`));
    }
    assert.equal(chartFormat('OUT.SVG'), 'svg');
    assert.equal(chartFormat('docs/x.htm'), 'html');
  });

  test('simulate chart - a path that cannot be written is refused with ERR_FLAG, naming it and why', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-chart-'));
    try {
      const data = chartData(await seedInput());
      const file = path.join(dir, 'a-file');
      writeFileSync(file, '');
      const cases: Array<[string, RegExp]> = [
        [path.join(dir, 'missing', 'out.svg'), /cannot write the chart: no folder .*missing$/],
        [path.join(file, 'out.html'), /cannot write the chart: a part of .* is not a folder$/],
        [path.join(dir, 'folder.svg'), /cannot write the chart: it is a folder$/],
      ];
      mkdirSync(path.join(dir, 'folder.svg'));
      for (const [target, why] of cases) {
        await assert.rejects(writeChart(target, data), (err: unknown) =>
          err instanceof QscaleError && err.code === 'ERR_FLAG' && err.message.startsWith(`--chart '${target}': `) && why.test(err.message));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('simulate chart - the command writes the chart, says so last, and fails with the catalog exit code (real process)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-chart-'));
    try {
      const so = path.join(dir, 'consumer-scaling.yaml');
      const other = path.join(dir, 'quick.yaml');
      writeFileSync(so, SEED_SCALEDOBJECT);
      writeFileSync(other, QUICK);
      const svg = path.join(dir, 'out.svg');
      const { stdout } = await run(process.execPath, [MAIN, 'simulate', so, '--load', '0s:50', '--duration', '7m', '--chart', svg]);
      assert.match(stdout, /\nchart: .*out\.svg \(8 decisions marked\)\n$/);
      assert.equal(markers(readFileSync(svg, 'utf8')).length, 8);

      const html = path.join(dir, 'out.html');
      const both = await run(process.execPath, [MAIN, 'simulate', so, '--compare', other, '--load', '0s:50', '--duration', '7m', '--chart', html, '--json']);
      const out = JSON.parse(both.stdout) as { runs: Array<{ scaledObject: string; summary: { decisions: number } }> };
      assert.deepEqual(out.runs.map((r) => r.scaledObject), ['bindingconsumer-scaler', 'quick-scaler']);
      assert.equal(both.stderr, `chart: ${html} (A: 8 decisions marked, B: ${out.runs[1]!.summary.decisions} decisions marked)\n`);
      assert.match(readFileSync(html, 'utf8'), /id="qscale-chart-data">\{"compare":true/);

      const exit = CLI_ERRORS.ERR_FLAG.exit;
      for (const [target, message] of [
        [path.join(dir, 'out.png'), /^qscale: --chart '.*out\.png': cannot tell the format from '\.png': end it in \.svg \(an image\) or \.html/],
        [path.join(dir, 'nowhere', 'out.svg'), /^qscale: --chart '.*out\.svg': cannot write the chart: no folder .*nowhere\n$/],
      ] as const) {
        await assert.rejects(run(process.execPath, [MAIN, 'simulate', so, '--load', '0s:50', '--chart', target]), (err: { code?: number; stdout?: string; stderr?: string }) => {
          assert.equal(err.code, exit);
          assert.match(err.stderr ?? '', message);
          assert.equal(err.stderr!.split('\n').length, 2, 'one line');
          assert.equal(err.stdout, '', 'nothing printed before the failure');
          return true;
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('simulate chart - the chart in docs/simulate.md is what its command draws today', async () => {
    const doc = readFileSync('docs/simulate.md', 'utf8');
    const command = /^\$ qscale simulate (.*) --chart (docs\/images\/\S+\.svg)$/m.exec(doc);
    assert.ok(command, 'docs/simulate.md writes the command that drew its chart');
    assert.match(doc, new RegExp(`\\]\\(${command[2]!.replace('docs/', '')}\\)`), 'and shows the chart it wrote');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-chart-'));
    try {
      const fresh = path.join(dir, 'fresh.svg');
      await run(process.execPath, [MAIN, 'simulate', ...command[1]!.split(' '), '--chart', fresh]);
      const titles = (svg: string) => markers(svg).map((m) => textOf(m.children.find((c) => 'title' in c)!.title as Node[]));
      const committed = titles(readFileSync(command[2]!, 'utf8'));
      assert.equal(committed.length, 8);
      assert.deepEqual(titles(readFileSync(fresh, 'utf8')), committed, `regenerate it: qscale simulate ${command[1]} --chart ${command[2]}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
