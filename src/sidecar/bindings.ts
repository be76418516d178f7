/**
 * What the sidecar reads from a binding component's generic metadata (valid for every binding type): direction,
 * route and how many handler calls may run at once.
 */
import { ConfigError } from '../errors.js';
import type { ResolvedComponent } from '../backends/types.js';

export interface BindingPlan {
  name: string;
  type: string;
  input: boolean;
  output: boolean;
  /** True when `direction` names input: daprd then skips the OPTIONS probe. */
  inputDeclared: boolean;
  /** The app path messages are POSTed to, with its leading slash. */
  route: string;
  /** maxConcurrentHandlers (default 1, as Dapr's Service Bus binding). */
  maxConcurrentHandlers: number;
}

function lookup(metadata: Readonly<Record<string, string>>, name: string): { key: string; value: string } | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(metadata)) {
    if (key.toLowerCase() === lower) return { key, value };
  }
  return undefined;
}

export function planBinding(c: ResolvedComponent): BindingPlan {
  const subject = `component ${c.name} (${c.type})`;
  let input = true;
  let output = true;
  let inputDeclared = false;
  const direction = lookup(c.metadata, 'direction');
  if (direction && direction.value.trim() !== '') {
    const parts = direction.value.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
    const bad = parts.find((p) => p !== 'input' && p !== 'output');
    if (bad !== undefined || parts.length === 0) {
      throw new ConfigError(`${subject}: metadata 'direction' must be input, output or "input, output", got '${direction.value}'`, {
        ...c.where(direction.key),
        field: direction.key,
      });
    }
    input = parts.includes('input');
    output = parts.includes('output');
    inputDeclared = input;
  }
  const routeEntry = lookup(c.metadata, 'route');
  const routeText = routeEntry?.value.trim() || c.name;
  const route = routeText.startsWith('/') ? routeText : `/${routeText}`;

  let maxConcurrentHandlers = 1;
  const mch = lookup(c.metadata, 'maxConcurrentHandlers');
  if (mch && mch.value.trim() !== '') {
    const n = Number(mch.value.trim());
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(`${subject}: metadata '${mch.key}' must be an integer >= 1, got '${mch.value}'`, {
        ...c.where(mch.key),
        field: mch.key,
      });
    }
    maxConcurrentHandlers = n;
  }
  return { name: c.name, type: c.type, input, output, inputDeclared, route, maxConcurrentHandlers };
}
