/**
 * The simulator chart as a Vega-Lite spec: two panels on one time axis — messages (ready, in flight) above,
 * replicas (desired, actual) below with a numbered marker per scaling decision — and the numbered legend under them.
 * The rows come from named data sets (`queue`, `replicas`, `decisions`, `legend`), filled when the view is built,
 * so the HTML page embeds them once.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ChartData } from './data.js';

export const DATASETS = ['queue', 'replicas', 'decisions', 'legend'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** What a decision marker is called in the SVG (aria-roledescription), so it can carry a <title>. */
export const DECISION_ROLE = 'scaling decision';
export const WIDTH = 760;
export const PANEL_HEIGHT = 190;

export function chartSpec(d: ChartData): TopLevelSpec {
  const x = {
    field: 't',
    type: 'temporal' as const,
    scale: { type: 'utc' as const, domain: d.timeDomain, nice: false },
    axis: { format: d.timeFormat, title: d.timeTitle, labelFlush: true, tickCount: 10 },
  };
  const xBare = { field: 't', type: 'temporal' as const };
  // One legend for both channels: Vega-Lite merges them as they share field, title and legend.
  const legend = { orient: 'top' as const, direction: 'horizontal' as const, symbolType: 'stroke', symbolStrokeWidth: 2, title: null };
  const stroke = (styles: ChartData['queueStyles']) => ({
    color: {
      field: 'key', type: 'nominal' as const, legend,
      scale: { domain: styles.map((s) => s.key), range: styles.map((s) => s.color) },
    },
    strokeDash: {
      field: 'key', type: 'nominal' as const, legend,
      scale: { domain: styles.map((s) => s.key), range: styles.map((s) => s.dash) },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: d.title, subtitle: d.subtitle, anchor: 'start', fontSize: 15, subtitleFontSize: 11 },
    background: 'white',
    padding: 12,
    config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 240 } },
    // Wheel to zoom and drag to pan the shared time axis, on either panel, in the HTML page (an SVG ignores it).
    params: [{ name: 'zoom', select: { type: 'interval', encodings: ['x'] }, bind: 'scales', views: ['queue', 'replicas'] }],
    resolve: { scale: { x: 'shared', color: 'independent', strokeDash: 'independent' }, legend: { color: 'independent' } },
    vconcat: [
      {
        name: 'queue',
        width: WIDTH,
        height: PANEL_HEIGHT,
        data: { name: 'queue' },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2, ariaRoleDescription: 'queue depth' },
        encoding: {
          x: { ...x, axis: { ...x.axis, title: null, labels: true } },
          y: {
            field: 'value', type: 'quantitative',
            scale: { domain: [0, d.queueMax], nice: true },
            axis: { title: 'queue depth (messages)', format: 'd', tickMinStep: 1 },
          },
          ...stroke(d.queueStyles),
        },
      },
      {
        width: WIDTH,
        height: PANEL_HEIGHT,
        layer: [
          {
            name: 'replicas',
            data: { name: 'replicas' },
            mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2, ariaRoleDescription: 'replicas' },
            encoding: {
              x,
              y: {
                field: 'value', type: 'quantitative',
                scale: { domain: [0, d.replicasMax], nice: false, zero: true },
                axis: { title: 'replicas (pods)', format: 'd', tickMinStep: 1 },
              },
              ...stroke(d.replicaStyles),
            },
          },
          {
            name: 'decisions',
            data: { name: 'decisions' },
            mark: { type: 'point', filled: true, size: 90, opacity: 1, stroke: 'white', strokeWidth: 1, ariaRoleDescription: DECISION_ROLE },
            encoding: {
              x: xBare,
              y: { field: 'to', type: 'quantitative' },
              shape: { field: 'shape', type: 'nominal', scale: null },
              fill: { field: 'color', type: 'nominal', scale: null },
              description: { field: 'tip' },
              tooltip: { field: 'tip' },
            },
          },
          // Numbers above the markers; when comparing, A's to the left and B's to the right, so they never cover
          // each other where both runs decide alike.
          ...[...new Set(d.decisions.map((m) => m.run))].map((run) => ({
            name: `decision_labels_${run}`,
            data: { name: 'decisions' },
            transform: [{ filter: `datum.run === ${run}` }],
            mark: {
              type: 'text' as const, dy: -11, fontSize: 10, fontWeight: 'bold' as const, aria: false,
              ...(d.compare ? { align: run === 0 ? 'right' as const : 'left' as const, dx: run === 0 ? -2 : 2 } : {}),
            },
            encoding: {
              x: xBare,
              y: { field: 'to', type: 'quantitative' as const },
              text: { field: 'label' },
              fill: { field: 'color', type: 'nominal' as const, scale: null },
            },
          })),
        ],
      },
      {
        width: WIDTH,
        height: Math.max(d.legendHeight, 15),
        data: { name: 'legend' },
        view: { stroke: null },
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: null },
          y: { field: 'y', type: 'quantitative', scale: null },
          text: { field: 'text' },
        },
        layer: [false, true].map((heading) => ({
          name: heading ? 'legend_headings' : 'legend',
          transform: [{ filter: heading ? 'datum.heading' : '!datum.heading' }],
          mark: { type: 'text' as const, align: 'left' as const, baseline: 'top' as const, fontSize: 11, fontWeight: heading ? 'bold' as const : 'normal' as const, aria: false },
        })),
      },
    ],
  };
}
