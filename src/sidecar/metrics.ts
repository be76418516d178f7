/**
 * The sidecar's metrics endpoint, as daprd's: its own port (--metrics-port, 9090), every GET path answering with
 * the metrics in Prometheus' text format, and each API request counted under daprd's HTTP server metrics.
 *
 * A port that cannot be bound does not stop the sidecar (daprd would exit): the API and the deliveries matter more
 * than the metrics, so the failure is printed once, with the way out, and the sidecar runs without /metrics.
 */
import http from 'node:http';
import type { Reply } from './http/router.js';
import type { DaprMetrics } from '../metrics/dapr.js';
import type { Logger } from '../util/log.js';

/** daprd's --metrics-port default. */
export const DEFAULT_METRICS_PORT = 9090;

export interface MetricsServerOptions {
  /** 0 picks a free port (the line printed at start names it). */
  port: number;
  listenAddress: string;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Counts a request once its answer is out: method, path (of a served route only), status and latency. */
export function countApiRequests(metrics: DaprMetrics, method: string, url: string, reply: Reply): void {
  const started = performance.now();
  reply.raw.once('finish', () => metrics.httpServerRequest(method, reply.routed ? url : '', reply.raw.statusCode, performance.now() - started));
}

/** Serves `metrics` on its own port; undefined (after one line saying why and what to do) when the port cannot be bound. */
export async function startMetricsServer(metrics: DaprMetrics, o: MetricsServerOptions, logger: Logger): Promise<MetricsServer | undefined> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end(`${req.method} is not allowed on the metrics endpoint: use GET\n`);
      return;
    }
    metrics.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot collect the metrics: ${(err as Error).message}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.listenAddress, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.message;
    logger.warn(`metrics: cannot listen on ${o.listenAddress}:${o.port} (--metrics-port): ${why}; running without a metrics endpoint: give a free --metrics-port, or --enable-metrics=false to go without`);
    return undefined;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  logger.info(`metrics server started on ${o.listenAddress}:${port}/`);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
