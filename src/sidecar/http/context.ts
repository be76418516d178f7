/** What the HTTP API needs from the running sidecar; kept narrow so the routes are testable on their own. */
import type { Logger } from '../../util/log.js';
import type { LoadedBinding } from '../backends.js';
import type { Outage } from '../outage.js';
import type { HttpTimeouts } from '../options.js';
import type { DaprMetrics } from '../../metrics/dapr.js';

export type Health = { ready: true } | { ready: false; reason: string };

export interface ApiContext {
  appId: string;
  daprApiToken: string | undefined;
  maxBodyBytes: number;
  timeouts: HttpTimeouts;
  /** Bound on one call to this output binding. */
  outputBindingTimeoutMs(binding: LoadedBinding): number;
  logger: Logger;
  /** Components usable as output bindings, by name. */
  outputs: ReadonlyMap<string, LoadedBinding>;
  /** The outage report of an output binding, by name: fed by each call's outcome. */
  outputOutage(name: string): Outage | undefined;
  componentsLoaded(): boolean;
  health(): Health;
  /** The body of GET /v1.0/metadata. */
  metadata(): object;
  /** Starts a graceful stop (after the 204 went out). */
  shutdown(): void;
  /** Where requests and output binding calls are counted under daprd's metric names; unset when metrics are off. */
  metrics?: DaprMetrics | undefined;
}
