/**
 * `qscale simulate`: the autoscaler's own functions on a virtual clock over a model of a queue and its replicas.
 */
export { simulate } from './model.js';
export type { SimulationOptions, SimulationResult, Summary, TimelineRow } from './model.js';
export { parseLoad, parseDurationMs, durationFlag, positiveIntFlag, FlagError } from './load.js';
export type { Load } from './load.js';
export { triggerTargets } from './targets.js';
export { formatTimeline, formatSummary } from './format.js';
