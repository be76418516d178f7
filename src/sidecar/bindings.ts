/**
 * What the sidecar reads from a binding component's generic metadata (valid for every binding type), as daprd reads
 * it: direction, route and how many handler calls may run at once.
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { ResolvedComponent } from '../backends/types.js';
import { bindingDirection } from '../components/resources.js';

export interface BindingPlan {
  name: string;
  type: string;
  input: boolean;
  output: boolean;
  /** True when `direction` names input: daprd then skips the OPTIONS probe. */
  inputDeclared: boolean;
  /** The app path messages are POSTed to, with its leading slash. */
  route: string;
  /** The app path the OPTIONS probe asks. */
  probeRoute: string;
  /** maxConcurrentHandlers (default 1, as Dapr's Service Bus binding). */
  maxConcurrentHandlers: number;
  /** Metadata daprd would not read as written, one line each, to log once. */
  notes: string[];
}

function lookup(metadata: Readonly<Record<string, string>>, name: string): { key: string; value: string } | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(metadata)) {
    if (key.toLowerCase() === lower) return { key, value };
  }
  return undefined;
}

/** daprd's app channel cleans the method path (Go's path.Clean) and puts a slash in front. */
export function appPath(route: string): string {
  const cleaned = path.posix.normalize(route);
  const trimmed = cleaned === '.' || cleaned === './' ? '' : cleaned.length > 1 ? cleaned.replace(/\/$/, '') : cleaned;
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

export function planBinding(c: ResolvedComponent): BindingPlan {
  const subject = `component ${c.name} (${c.type})`;
  const { input, output, inputDeclared } = bindingDirection(c.metadata);
  // daprd reads exactly `route` (not Route), and probes the route as written while it delivers to the component
  // name when the route is empty.
  const route = c.metadata.route;
  const probeRoute = appPath(route ?? c.name);
  const deliveryRoute = appPath(route === undefined || route === '' ? c.name : route);
  const notes: string[] = [];
  const misspelt = Object.keys(c.metadata).find((k) => k !== 'route' && k.toLowerCase() === 'route');
  if (misspelt !== undefined && route === undefined) {
    const w = c.where(misspelt);
    notes.push(`${w.file}:${w.line}: ${subject}: metadata '${misspelt}' is not read: daprd reads the name 'route' exactly, so messages go to POST ${deliveryRoute}, as on a cluster`);
  }

  let maxConcurrentHandlers = 1;
  const mch = lookup(c.metadata, 'maxConcurrentHandlers');
  if (mch && mch.value.trim() !== '') {
    const n = Number(mch.value.trim());
    if (!Number.isInteger(n) || n < 0) {
      throw new ConfigError(`${subject}: metadata '${mch.key}' must be an integer >= 0 (0 = no limit), got '${mch.value}'`, {
        ...c.where(mch.key),
        field: mch.key,
      });
    }
    // 0 is Dapr's "no limit on handlers": what bounds them then is maxActiveMessages (default 1), the messages the
    // component holds at once.
    maxConcurrentHandlers = n === 0 ? activeMessages(c) : n;
  }
  return { name: c.name, type: c.type, input, output, inputDeclared, route: deliveryRoute, probeRoute, maxConcurrentHandlers, notes };
}

/** maxActiveMessages as Dapr's Service Bus component reads it (default 1); a value that is not a whole number >= 1 is 1. */
function activeMessages(c: Pick<ResolvedComponent, 'metadata'>): number {
  const v = lookup(c.metadata, 'maxActiveMessages');
  const n = v ? Number(v.value.trim()) : NaN;
  return Number.isInteger(n) && n >= 1 ? n : 1;
}
