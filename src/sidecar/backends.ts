/**
 * Turns components into initialised backends, each init bounded by the component's initTimeout. A failure stops
 * the sidecar with an error naming the component and its type, unless the component says ignoreErrors. A component
 * whose `direction` names neither input nor output is not created at all, as daprd loads nothing for it.
 */
import { QscaleError } from '../errors.js';
import type { Backend, ResolvedComponent } from '../backends/types.js';
import type { Logger } from '../util/log.js';
import type { BackendFactory } from './options.js';
import { planBinding, type BindingPlan } from './bindings.js';
import { withTimeout } from '../util/timeout.js';
import { describeCause } from './outage.js';

export interface LoadedBinding {
  plan: BindingPlan;
  component: ResolvedComponent;
  backend: Backend;
  /** True when the embedded queue serves it (--embedded, or the embedded type itself): what it delivers is what was sent. */
  servedEmbedded: boolean;
}

export interface LoadedComponents {
  bindings: LoadedBinding[];
  /** Components loaded as neither an input nor an output binding (their direction names neither). */
  inert: ResolvedComponent[];
}

export async function loadBindings(
  components: readonly ResolvedComponent[],
  create: BackendFactory,
  ctx: {
    logger: Logger;
    dataDir: string;
    embedded: boolean;
    /** Throws when the component's type does not exist: checked even for a component that is not created. */
    checkType?: (component: ResolvedComponent) => void;
    /** Types the embedded queue serves as themselves. */
    embeddedTypes?: readonly string[];
  },
): Promise<LoadedComponents> {
  const loaded: LoadedBinding[] = [];
  const inert: ResolvedComponent[] = [];
  for (const component of components) {
    const subject = `component ${component.name} (${component.type})`;
    let backend: Backend | undefined;
    try {
      const plan = planBinding(component);
      for (const note of plan.notes) ctx.logger.warn(note);
      if (!plan.input && !plan.output) {
        ctx.checkType?.(component);
        inert.push(component);
        continue;
      }
      backend = await create(component, { logger: ctx.logger.child({ component: component.name }), dataDir: ctx.dataDir }, { embedded: ctx.embedded });
      await withTimeout(backend.init(), component.initTimeoutMs, `init timed out after ${component.initTimeoutMs} ms (initTimeout)`);
      const servedEmbedded = ctx.embedded || (ctx.embeddedTypes ?? []).includes(component.type);
      loaded.push({ plan, component, backend, servedEmbedded });
      ctx.logger.info(`loaded component ${component.name} (${component.type})`);
    } catch (err) {
      if (backend) await backend.close().catch(() => undefined);
      const reason = describeCause(err, component);
      // A config error already names file:line and the component; anything else gets both added.
      const message = err instanceof QscaleError && err.code === 'ERR_CONFIG' ? reason : `${component.file}:${component.line}: ${subject}: init failed: ${reason}`;
      if (component.ignoreErrors) {
        ctx.logger.warn(`${message} (ignoreErrors: going on without it)`);
        continue;
      }
      await Promise.all(loaded.map((l) => l.backend.close().catch(() => undefined)));
      throw new QscaleError('ERR_COMPONENT_INIT', message);
    }
  }
  return { bindings: loaded, inert };
}
