/**
 * A sidecar's metrics under daprd's names and labels (dapr/dapr pkg/diagnostics, v1.18: component_monitoring.go,
 * http_monitoring.go), as daprd's Prometheus exporter writes them: the view name with `/` as `_` under `dapr_`,
 * counts as counters, latencies as histograms in milliseconds over daprd's default buckets.
 *
 * Labels come from component names, operations, methods, route paths and status codes only, never from a message,
 * so the number of series stays bounded however many messages pass.
 */
import { FastCounter, FastHistogram, LazyRegistry, METRICS_CONTENT_TYPE, registerBuildInfo, type CounterSeries, type HistogramSeries } from './registry.js';

/** daprd's default latency buckets, in ms (pkg/config MetricSpec.GetLatencyDistribution). */
export const DAPR_LATENCY_BUCKETS_MS = [
  1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300, 400, 500, 650, 800, 1_000, 2_000, 5_000, 10_000,
  20_000, 50_000, 100_000,
];

const HTTP_VERBS = new Set(['GET', 'PUT', 'POST', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);

interface InputSeries {
  count: CounterSeries;
  /** Made at the first observation above 0 ms, as a histogram series was before. */
  latency: HistogramSeries | undefined;
}

export class DaprMetrics {
  /** prom-client is loaded at the first scrape, not when a sidecar starts. */
  readonly registry = new LazyRegistry();
  private readonly outputCount: FastCounter;
  private readonly outputLatency: FastHistogram;
  private readonly inputCount: FastCounter;
  private readonly inputLatency: FastHistogram;
  /** Per input binding: its [success, failure] series, made at the first delivery of each outcome. */
  private readonly inputSeries = new Map<string, [InputSeries | undefined, InputSeries | undefined]>();
  private readonly httpCount: FastCounter;
  private readonly pubsub: PubSubMetrics;
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
    this.pubsub = pubsubMetrics(r);
  }

  /** One publish past its envelope (POST /v1.0/publish), success or not, with the broker's time. */
  pubsubEgress(component: string, topic: string, success: boolean, ms: number): void {
    const labels = [this.appId, component, this.namespace, String(success), topic];
    this.pubsub.egressCount.of(...labels).value++;
    if (ms > 0) this.pubsub.egressLatency.of(...labels).observe(ms);
  }

  /** One bulk publish call: `published` entries the broker took (counted only when above zero). */
  pubsubBulkEgress(component: string, topic: string, success: boolean, published: number, ms: number): void {
    const labels = [this.appId, component, this.namespace, String(success), topic];
    this.pubsub.bulkEgressCount.of(...labels).value++;
    if (published > 0) this.pubsub.bulkEgressEvents.of(this.appId, component, this.namespace, 'true', topic).value += published;
    if (ms > 0) this.pubsub.bulkEgressLatency.of(...labels).observe(ms);
  }

  /**
   * One event handed to (or settled without) the app: process_status success, retry or drop; status is the app's
   * own word where daprd records one (a DROP the app asked for is process_status drop, status success).
   */
  pubsubIngress(component: string, processStatus: 'success' | 'retry' | 'drop', status: string, topic: string, ms: number): void {
    const labels = [this.appId, component, this.namespace, processStatus, status === '' ? processStatus : status, topic];
    this.pubsub.ingressCount.of(...labels).value++;
    if (ms > 0) this.pubsub.ingressLatency.of(...labels).observe(ms);
  }

  /** One bulk delivery to the app, and its entries by outcome. */
  pubsubBulkIngress(component: string, topic: string, ms: number, entries: Readonly<Record<'success' | 'retry' | 'drop', number>>): void {
    this.pubsub.bulkIngressCount.of(this.appId, component, this.namespace, topic).value++;
    if (ms > 0) this.pubsub.bulkIngressLatency.of(this.appId, component, this.namespace, topic).observe(ms);
    for (const [status, n] of Object.entries(entries)) {
      if (n > 0) this.pubsub.bulkIngressEvents.of(this.appId, component, this.namespace, status, topic).value += n;
    }
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
    // Per message: the two series of an outcome are looked up once per binding, not built from labels each time.
    let pair = this.inputSeries.get(component);
    if (pair === undefined) this.inputSeries.set(component, (pair = [undefined, undefined]));
    const i = success ? 0 : 1;
    const s = (pair[i] ??= { count: this.inputCount.of(this.appId, component, this.namespace, String(success)), latency: undefined });
    s.count.value++;
    if (ms > 0) (s.latency ??= this.inputLatency.of(this.appId, component, this.namespace, String(success))).observe(ms);
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

type PubSubMetrics = ReturnType<typeof pubsubMetrics>;

/** daprd's pub/sub views (component_monitoring.go): names, help and labels as its Prometheus exporter writes them. */
function pubsubMetrics(r: LazyRegistry) {
  const buckets = DAPR_LATENCY_BUCKETS_MS;
  const ingress = ['app_id', 'component', 'namespace', 'process_status', 'status', 'topic'];
  const bulkIngress = ['app_id', 'component', 'namespace', 'topic'];
  const bulkIngressEvents = ['app_id', 'component', 'namespace', 'process_status', 'topic'];
  const egress = ['app_id', 'component', 'namespace', 'success', 'topic'];
  return {
    ingressCount: new FastCounter({ name: 'dapr_component_pubsub_ingress_count', help: 'The number of incoming messages arriving from the pub/sub component.', labelNames: ingress }, r),
    ingressLatency: new FastHistogram({ name: 'dapr_component_pubsub_ingress_latencies', help: 'The consuming app event processing latency.', labelNames: ingress, buckets }, r),
    bulkIngressCount: new FastCounter({ name: 'dapr_component_pubsub_ingress_bulk_count', help: 'The number of incoming bulk subscribe calls arriving from the bulk pub/sub component.', labelNames: bulkIngress }, r),
    bulkIngressEvents: new FastCounter({ name: 'dapr_component_pubsub_ingress_bulk_event_count', help: 'Total number of incoming messages arriving from the bulk pub/sub component via Bulk Subscribe.', labelNames: bulkIngressEvents }, r),
    bulkIngressLatency: new FastHistogram({ name: 'dapr_component_pubsub_ingress_bulk_latencies', help: 'The consuming app event processing latency for the bulk pub/sub component.', labelNames: bulkIngress, buckets }, r),
    egressCount: new FastCounter({ name: 'dapr_component_pubsub_egress_count', help: 'The number of outgoing messages published to the pub/sub component.', labelNames: egress }, r),
    egressLatency: new FastHistogram({ name: 'dapr_component_pubsub_egress_latencies', help: 'The latency of the response from the pub/sub component.', labelNames: egress, buckets }, r),
    bulkEgressCount: new FastCounter({ name: 'dapr_component_pubsub_egress_bulk_count', help: 'The number of bulk publish calls to the pub/sub component.', labelNames: egress }, r),
    bulkEgressEvents: new FastCounter({ name: 'dapr_component_pubsub_egress_bulk_event_count', help: 'The number of outgoing messages to the pub/sub component published through bulk publish API.', labelNames: egress }, r),
    bulkEgressLatency: new FastHistogram({ name: 'dapr_component_pubsub_egress_bulk_latencies', help: 'The latency of the response for the bulk publish call from the pub/sub component.', labelNames: egress, buckets }, r),
  };
}

/** daprd's NormalizeHTTPPath: no doubled slashes, one leading slash ('' stays ''). */
function normalizePath(p: string): string {
  if (p === '') return p;
  const q = p.indexOf('?');
  let out = (q === -1 ? p : p.slice(0, q)).replace(/\/{2,}/g, '/');
  if (!out.startsWith('/')) out = `/${out}`;
  return out;
}
