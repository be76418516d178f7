/**
 * Turns components into initialised backends, each init bounded by the component's initTimeout. A failure stops
 * the sidecar with an error naming the component and its type, unless the component says ignoreErrors.
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
}

export async function loadBindings(
  components: readonly ResolvedComponent[],
  create: BackendFactory,
  ctx: { logger: Logger; dataDir: string; embedded: boolean },
): Promise<LoadedBinding[]> {
  const loaded: LoadedBinding[] = [];
  for (const component of components) {
    const subject = `component ${component.name} (${component.type})`;
    let backend: Backend | undefined;
    try {
      const plan = planBinding(component);
      backend = await create(component, { logger: ctx.logger.child({ component: component.name }), dataDir: ctx.dataDir }, { embedded: ctx.embedded });
      await withTimeout(backend.init(), component.initTimeoutMs, `init timed out after ${component.initTimeoutMs} ms (initTimeout)`);
      loaded.push({ plan, component, backend });
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
  return loaded;
}
