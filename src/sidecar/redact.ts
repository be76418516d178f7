/**
 * Broker errors sometimes echo what they were given (a connection string, a URL with a password). Before an error
 * about a component reaches a log line or the API, every secret of that component is cut out of it — by the one
 * redactor (components/redact.ts), fed by the component type's declared sensitive fields.
 */
import type { ResolvedComponent } from '../backends/types.js';
import { findBackend } from '../backends/registry.js';
import { redactorFor } from '../components/redact.js';

export function redactSecrets(text: string, component: Pick<ResolvedComponent, 'metadata'> & Partial<Pick<ResolvedComponent, 'type'>>): string {
  const fields = component.type === undefined ? undefined : findBackend(component.type)?.metadata.fields;
  return redactorFor(fields, component.metadata).text(text);
}
