/**
 * A sidecar's metrics under daprd's names and labels (dapr/dapr pkg/diagnostics, v1.18: component_monitoring.go,
 * http_monitoring.go), as daprd's Prometheus exporter writes them: the view name with `/` as `_` under `dapr_`,
 * counts as counters, latencies as histograms in milliseconds over daprd's default buckets.
 *
 * Labels come from component names, operations, methods, route paths and status codes only, never from a message,
 * so the number of series stays bounded however many messages pass.
 */
import { FastCounter, FastHistogram, METRICS_CONTENT_TYPE, Registry, registerBuildInfo } from './registry.js';

/** daprd's default latency buckets, in ms (pkg/config MetricSpec.GetLatencyDistribution). */
export const DAPR_LATENCY_BUCKETS_MS = [
  1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300, 400, 500, 650, 800, 1_000, 2_000, 5_000, 10_000,
  20_000, 50_000, 100_000,
];

const HTTP_VERBS = new Set(['GET', 'PUT', 'POST', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);

export class DaprMetrics {
  readonly registry = new Registry();
  private readonly outputCount: FastCounter;
  private readonly outputLatency: FastHistogram;
  private readonly inputCount: FastCounter;
  private readonly inputLatency: FastHistogram;
  private readonly httpCount: FastCounter;
  private readonly httpLatency: FastHistogram;

  /** `namespace` is daprd's NAMESPACE variable, empty outside Kubernetes. */
  constructor(readonly appId: string, readonly namespace: string = process.env.NAMESPACE ?? '') {
    const r = this.registry;
    registerBuildInfo(r);
    const buckets = DAPR_LATENCY_BUCKETS_MS;
    const outputLabels = ['app_id', 'component', 'namespace', 'operation', 'success'];
    this.outputCount = new FastCounter({ name: 'dapr_component_output_binding_count', help: 'The number of operations invoked on the output binding component.', labelNames: outputLabels }, r);
    this.outputLatency = new FastHistogram({ name: 'dapr_component_output_binding_latencies', help: 'The latency of the response from the output binding component.', labelNames: outputLabels, buckets }, r);
    const inputLabels = ['app_id', 'component', 'namespace', 'success'];
    this.inputCount = new FastCounter({ name: 'dapr_component_input_binding_count', help: 'The number of incoming events arriving from the input binding component.', labelNames: inputLabels }, r);
    this.inputLatency = new FastHistogram({ name: 'dapr_component_input_binding_latencies', help: 'The triggered app event processing latency.', labelNames: inputLabels, buckets }, r);
    const httpLabels = ['app_id', 'method', 'path', 'status'];
    this.httpCount = new FastCounter({ name: 'dapr_http_server_request_count', help: 'Count of HTTP requests processed by the server.', labelNames: httpLabels }, r);
    this.httpLatency = new FastHistogram({ name: 'dapr_http_server_latency', help: 'HTTP request end-to-end latency in server.', labelNames: httpLabels, buckets }, r);
  }

  /** One call of an output binding (POST /v1.0/bindings/{name} that got past decoding its body), as daprd counts it. */
  outputBinding(component: string, operation: string, success: boolean, ms: number): void {
    const s = String(success);
    this.outputCount.of(this.appId, component, this.namespace, operation, s).value++;
    // daprd records a latency only when it is above zero.
    if (ms > 0) this.outputLatency.of(this.appId, component, this.namespace, operation, s).observe(ms);
  }

  /** One message handed to the app by an input binding: success when the app accepted it. */
  inputBinding(component: string, success: boolean, ms: number): void {
    const s = String(success);
    this.inputCount.of(this.appId, component, this.namespace, s).value++;
    if (ms > 0) this.inputLatency.of(this.appId, component, this.namespace, s).observe(ms);
  }

  /**
   * One request answered by the HTTP API. `path` is the request's path without its query (daprd's default, with
   * increasedCardinality on), or '' for a path no route serves, so a scan of random URLs adds no series.
   */
  httpServerRequest(method: string, path: string, status: number, ms: number): void {
    const m = HTTP_VERBS.has(method) ? method : 'UNKNOWN';
    const p = normalizePath(path);
    const s = String(status);
    this.httpCount.of(this.appId, m, p, s).value++;
    // daprd's HTTP middleware records whole milliseconds.
    this.httpLatency.of(this.appId, m, p, s).observe(Math.floor(ms));
  }

  readonly contentType = METRICS_CONTENT_TYPE;

  /** The text a scrape gets, in Prometheus' text format (contentType). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** daprd's NormalizeHTTPPath: no doubled slashes, one leading slash ('' stays ''). */
function normalizePath(p: string): string {
  if (p === '') return p;
  const q = p.indexOf('?');
  let out = (q === -1 ? p : p.slice(0, q)).replace(/\/{2,}/g, '/');
  if (!out.startsWith('/')) out = `/${out}`;
  return out;
}
