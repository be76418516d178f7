/**
 * What a sidecar needs to run, whether started by `qscale sidecar` (flags like daprd's) or in-process by a test or a
 * benchmark. Defaults follow daprd where one exists.
 */
import type { Backend, BackendContext, ResolvedComponent } from '../backends/types.js';
import type { Logger } from '../util/log.js';

/** daprd's --max-body-size default: 4 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Like a pod's terminationGracePeriodSeconds (daprd's own default is 5 s, Kubernetes' is 30 s). */
export const DEFAULT_GRACE_MS = 30_000;
export const DEFAULT_HTTP_PORT = 3500;
export const DEFAULT_LISTEN = '127.0.0.1';

/**
 * How long a client of the HTTP API may take (docs/sidecar.md, "Timeouts"). daprd bounds only the headers (Go's
 * ReadHeaderTimeout, 10 s); qscale also bounds the whole request, so a client that trickles its body cannot hold a
 * connection forever. The time the sidecar takes to answer is not counted.
 */
export interface HttpTimeouts {
  /** Request line and headers, from the first byte of the connection or request: daprd's 10 s. */
  headersMs: number;
  /** Headers and body together. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveMs: number;
}
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 60_000, keepAliveMs: 72_000 };

/**
 * An output binding call the backend has not settled by then answers 500 instead of holding the caller. Backends
 * bound their own sends by the component's initTimeout and name the broker and its address; this bound, a second
 * later, is the backstop for one that does not.
 */
export function outputBindingTimeoutMs(component: { initTimeoutMs: number }): number {
  return component.initTimeoutMs + 1000;
}

/** Builds a backend for a component; the registry's createBackend in production. */
export type BackendFactory = (
  component: ResolvedComponent,
  ctx: BackendContext,
  opts: { embedded: boolean },
) => Backend | Promise<Backend>;

export interface SidecarOptions {
  appId: string;
  /** The app's HTTP port. Without it nothing is delivered (input bindings are not read), as with daprd. */
  appPort?: number;
  /** Where the app listens (daprd's --app-channel-address). */
  appChannelAddress?: string;
  /** The sidecar's HTTP API port; 0 picks a free one (startSidecar returns it). */
  httpPort?: number;
  listenAddress?: string;
  /** Folders or files of Kubernetes YAML. Ignored when `components` is given. */
  resourcesPaths?: readonly string[];
  /** Components already resolved (tests, benchmarks): skips the loader. */
  components?: readonly ResolvedComponent[];
  /** Upper bound on concurrent calls to the app over all input bindings; undefined = unlimited. */
  appMaxConcurrency?: number;
  gracePeriodMs?: number;
  /** Serve every queue binding from the embedded SQLite queue, keeping queue names. */
  embedded?: boolean;
  dataDir?: string;
  /** Serve daprd's metrics on this port and address (daprd's --metrics-port, --metrics-listen-address); unset: none. */
  metrics?: { port: number; listenAddress: string } | undefined;
  /** Largest request body read; 0 = no limit (daprd's --max-body-size 0). A longer body is cut here, as daprd does. */
  maxBodyBytes?: number;
  /** How long the OPTIONS probe waits for the app (daprd's --app-binding-options-timeout, 3 s). */
  appBindingOptionsTimeoutMs?: number;
  /**
   * Also deliver what qscale's backends read from the broker that the real Dapr component never passes to the app
   * (Service Bus MessageId, DeliveryCount, ...). Off by default: an app that depends on them breaks on a cluster.
   */
  brokerHeaders?: boolean;
  /** Overrides part of DEFAULT_HTTP_TIMEOUTS (tests, embedding). */
  httpTimeouts?: Partial<HttpTimeouts>;
  /** Bound on one output binding call; by default outputBindingTimeoutMs(component). */
  outputBindingTimeoutMs?: number;
  /** DAPR_API_TOKEN: required on every API call except the health endpoints. */
  daprApiToken?: string;
  /** APP_API_TOKEN: sent to the app as the dapr-api-token header. */
  appApiToken?: string;
  logger?: Logger;
  /** Replaces the registry (a test that needs a backend the registry does not list). */
  createBackend?: BackendFactory;
  /**
   * Start as a standby: components loaded and the API up, but the app is not dialled and no input binding or
   * subscription is read until handle.adopt() (`qscale up` keeps one ready for a deployment's next replica).
   */
  standby?: boolean;
  /** Called once the sidecar stopped because of POST /v1.0/shutdown (the CLI exits the process). */
  onShutdown?: (result: DrainResult) => void;
}

export interface DrainResult {
  /** True when every in-flight delivery finished within the grace period. */
  drained: boolean;
}

export interface SidecarHandle {
  /** The HTTP API port actually bound. */
  port: number;
  /** Graceful stop: stop reading, finish in-flight deliveries within the grace period, close backends. */
  close(): Promise<DrainResult>;
  /**
   * A standby starts what a sidecar starts once its API is up: dials the app, then reads input bindings and
   * subscriptions. True the first time; false when not a standby, already adopted, or stopping.
   */
  adopt(): boolean;
}
