/**
 * The simulator chart as a file: SVG drawn by Vega in Node, or an HTML page that draws the same spec with Vega in
 * the browser (Vega inlined, the rows embedded as JSON: it works offline, from a file, with hover and zoom).
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { FlagError } from '../load.js';
import type { ChartData } from './data.js';
import { chartFormat } from './format.js';
import { chartSpec, DATASETS, DECISION_ROLE } from './spec.js';

/**
 * The Vega spec of the chart and what Vega-Lite warned about while compiling it (a spec mistake of qscale's, which
 * the tests assert away, instead of lines on the user's terminal).
 */
export function compileChart(data: ChartData): { spec: vega.Spec; warnings: string[] } {
  const warnings: string[] = [];
  const logger: vega.LoggerInterface = {
    level(_?: number) { return logger as never; },
    error(...args: readonly unknown[]) { warnings.push(args.join(' ')); return logger; },
    warn(...args: readonly unknown[]) { warnings.push(args.join(' ')); return logger; },
    info() { return logger; },
    debug() { return logger; },
  };
  return { spec: compile(chartSpec(data), { logger }).spec, warnings };
}

function vegaSpec(data: ChartData): vega.Spec {
  return compileChart(data).spec;
}

function rows(data: ChartData, name: (typeof DATASETS)[number]): readonly object[] {
  return data[name];
}

export async function renderSvg(data: ChartData): Promise<string> {
  const view = new vega.View(vega.parse(vegaSpec(data)), { renderer: 'none' });
  try {
    for (const name of DATASETS) view.data(name, rows(data, name));
    return withTitles(await view.toSVG(), data.decisions.length);
  } finally {
    view.finalize();
  }
}

/**
 * Vega writes a mark's description as aria-label, which screen readers read but a mouse never shows: each decision
 * marker also gets it as a <title>, the SVG tooltip.
 */
function withTitles(svg: string, expected: number): string {
  let n = 0;
  const out = svg.replace(
    new RegExp(`<path aria-label="([^"]*)"([^>]*aria-roledescription="${DECISION_ROLE}"[^>]*?)/>`, 'g'),
    (_all, label: string, rest: string) => {
      n++;
      return `<path aria-label="${label}"${rest}><title>${label}</title></path>`;
    },
  );
  if (n !== expected) throw new Error(`chart: ${expected} decision markers expected in Vega's SVG, found ${n}`);
  return out;
}

const require = createRequire(import.meta.url);

async function vegaBundle(): Promise<{ version: string; code: string }> {
  const dir = path.dirname(require.resolve('vega/vega-schema.json'));
  const code = await fs.readFile(path.join(dir, 'vega.min.js'), 'utf8');
  return { version: (vega as { version?: string }).version ?? '', code };
}

/** JSON safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export async function renderHtml(data: ChartData): Promise<string> {
  const { version, code } = await vegaBundle();
  const spec = vegaSpec(data);
  // Zoom and pan on the time axis: a drag or the wheel on either panel; double-click resets.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(data.title)}</title>
<style>
  body { font-family: sans-serif; margin: 16px; color: #222; }
  #chart { min-height: 400px; }
  p.hint { font-size: 12px; color: #666; }
  #error { color: #b00020; }
</style>
</head>
<body>
<div id="chart" role="figure" aria-label="${escapeHtml(data.title)}"></div>
<p class="hint">Hover a marker for its decision and reason. Scroll on a panel to zoom the time axis, drag to pan, double-click to reset.</p>
<p id="error"></p>
<script type="application/json" id="qscale-chart-data">${scriptJson(data)}</script>
<script type="application/json" id="qscale-chart-spec">${scriptJson(spec)}</script>
<script>/* Vega ${escapeHtml(version)}, BSD-3-Clause license */
${code}
</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById('qscale-chart-data').textContent);
  var spec = JSON.parse(document.getElementById('qscale-chart-spec').textContent);
  var view = new vega.View(vega.parse(spec), { renderer: 'svg', container: '#chart', hover: true });
  ${JSON.stringify(DATASETS)}.forEach(function (name) { view.data(name, data[name]); });
  window.qscaleChart = view;
  view.runAsync().catch(function (err) { document.getElementById('error').textContent = 'chart: ' + err; });
})();
</script>
</body>
</html>
`;
}

/** Renders and writes the chart; a path that cannot be written is a FlagError naming it and the reason. */
export async function writeChart(file: string, data: ChartData): Promise<void> {
  const format = chartFormat(file);
  const text = format === 'svg' ? await renderSvg(data) : await renderHtml(data);
  try {
    await fs.writeFile(file, text);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? `no folder ${path.dirname(path.resolve(file))}` :
      e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' :
      e.code === 'EISDIR' ? 'it is a folder' :
      e.code === 'ENOTDIR' ? `a part of ${path.dirname(file)} is not a folder` :
      (e.message ?? String(err));
    throw new FlagError('--chart', file, `cannot write the chart: ${why}`);
  }
}
