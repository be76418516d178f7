/** What the HTTP API needs from the running sidecar; kept narrow so the routes are testable on their own. */
import type { Logger } from '../../util/log.js';
import type { LoadedBinding } from '../backends.js';

export type Health = { ready: true } | { ready: false; reason: string };

export interface ApiContext {
  appId: string;
  daprApiToken: string | undefined;
  maxBodyBytes: number;
  logger: Logger;
  /** Components usable as output bindings, by name. */
  outputs: ReadonlyMap<string, LoadedBinding>;
  componentsLoaded(): boolean;
  health(): Health;
  /** The body of GET /v1.0/metadata. */
  metadata(): object;
  /** Starts a graceful stop (after the 204 went out). */
  shutdown(): void;
}
