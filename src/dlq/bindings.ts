/**
 * The queue bindings whose dead letters `qscale dlq` reads: every input binding of the run file's apps (the queues
 * the system consumes, where dead letters arise), or, for a folder without a run file, every binding component in it
 * that is an input binding. Read as `qscale up` reads the folder, so names, queues and secrets are the same.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadResources } from '../components/resources.js';
import { bindingDirection } from '../components/resources.js';
import { findBackend } from '../backends/registry.js';
import type { ResolvedComponent } from '../backends/types.js';
import { loadSystem, planError, type SystemPlan } from '../supervisor/plan.js';

export interface DlqBinding {
  /** The component's name: what --binding and the API's `binding` name. */
  name: string;
  type: string;
  /** The queue it reads. */
  queue: string;
  component: ResolvedComponent;
}

/** Each input binding once (an app's scoped view of a component and another app's are the same queue). */
export function bindingsOfPlan(plan: Pick<SystemPlan, 'apps'>): DlqBinding[] {
  const out: DlqBinding[] = [];
  for (const app of plan.apps) {
    for (const q of app.inputs) {
      if (out.some((b) => b.name === q.component.name && b.queue === q.queue && b.type === q.component.type)) continue;
      out.push({ name: q.component.name, type: q.component.type, queue: q.queue, component: q.component });
    }
  }
  return out;
}

/** PATH as `qscale dlq` takes it: a run file (its folder holds the resources) or a folder. */
export async function resolveSystemPath(p: string, runFile: string | undefined): Promise<{ folder: string; runFile: string | undefined }> {
  const stat = await fs.stat(p).catch(() => undefined);
  if (stat?.isFile()) return { folder: path.dirname(p), runFile: runFile ?? p };
  return { folder: p, runFile };
}

/**
 * The system's queue bindings, read as `qscale up` reads the folder (the machine itself is not checked: commands and
 * ports do not matter here). A folder `up` would refuse is refused with the same lines.
 */
export async function systemBindings(folder: string, opts: { runFile?: string; embedded: boolean; dataDir: string }): Promise<DlqBinding[]> {
  const plan = await loadSystem(folder, { runFile: opts.runFile, embedded: opts.embedded, dataDir: opts.dataDir, requireRunFile: false, checkHost: false });
  const refused = planError(plan);
  if (refused) throw refused;
  if (plan.runFile) return bindingsOfPlan(plan);
  // A folder of resources alone: its input bindings, unscoped.
  const res = await loadResources([folder]);
  const out: DlqBinding[] = [];
  for (const c of res.components) {
    const def = findBackend(c.type);
    if (!def || !bindingDirection(c.metadata).input) continue;
    out.push({ name: c.name, type: c.type, queue: def.queueName(c), component: c });
  }
  return out;
}
