/**
 * The dashboard on the supervisor's loopback address: the page (GET /), its assets (GET /dashboard/<file>, uPlot
 * from node_modules: nothing comes from the network), the samples it draws (GET /history), the replicas' last log
 * lines (GET /logs) and the produce form's way to the producer (POST /MessageProducer, produce.ts). The page reads
 * GET /status for everything else, and its dead-letter panel GET /dlq with POST /dlq/requeue and /dlq/purge (served
 * beside it by the supervisor's control server, src/dlq/http.ts).
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { HISTORY_CAPACITY, RATE_WINDOW_MS, SAMPLE_PERIOD_MS, type History } from '../supervisor/history.js';
import { LATENCY_WINDOW_MS } from '../supervisor/latency.js';
import { registerProduceProxy, type ProducerTarget } from './produce.js';

export interface DashboardSource extends ProducerTarget {
  history: History;
  /** The last log lines of each replica listed now, by replica name. */
  logs(): Record<string, string[]>;
}

/** The page's own files: the sources are served as they are (no build step), from the package's src/ folder. */
const STATIC_DIR = fileURLToPath(new URL('../../../src/dashboard/static/', import.meta.url));
const resolve = createRequire(import.meta.url).resolve;

const ASSETS: Record<string, { file: () => string; type: string }> = {
  'app.js': { file: () => path.join(STATIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: () => path.join(STATIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  'uPlot.esm.js': { file: () => resolve('uplot/dist/uPlot.esm.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: () => resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** Everything from this origin, nothing inline, nothing from elsewhere. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function registerDashboard(server: FastifyInstance, source: DashboardSource): void {
  const sendFile = async (file: string, type: string, reply: FastifyReply): Promise<FastifyReply> => {
    let body: Buffer;
    try {
      body = await fs.readFile(file);
    } catch (err) {
      return reply.code(500).send({ errorCode: 'ERR_DASHBOARD_ASSET', message: `the dashboard's file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): reinstall qscale` });
    }
    return reply.header('content-type', type).header('cache-control', 'no-cache').header('content-security-policy', CSP).send(body);
  };

  server.get('/', async (_req, reply) => sendFile(path.join(STATIC_DIR, 'index.html'), 'text/html; charset=utf-8', reply));

  server.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
    const asset = ASSETS[req.params.file];
    if (!asset) return reply.code(404).send({ errorCode: 'ERR_NOT_FOUND', message: `no dashboard file '${req.params.file}' (files: ${Object.keys(ASSETS).join(', ')})` });
    let file: string;
    try {
      file = asset.file();
    } catch {
      return reply.code(500).send({ errorCode: 'ERR_DASHBOARD_ASSET', message: `the dashboard's chart library (npm package uplot) is not installed: run npm install` });
    }
    return sendFile(file, asset.type, reply);
  });

  server.get<{ Querystring: { since?: string } }>('/history', async (req, reply) => {
    const raw = req.query.since;
    const since = raw === undefined || raw === '' ? -Infinity : Number(raw);
    if (Number.isNaN(since)) {
      return reply.code(400).send({ errorCode: 'ERR_BAD_REQUEST', message: `query parameter since: '${raw}' is not a time (milliseconds since 1970, as a sample's "at")` });
    }
    return {
      periodMs: SAMPLE_PERIOD_MS,
      capacity: HISTORY_CAPACITY,
      rateWindowMs: RATE_WINDOW_MS,
      latencyWindowMs: LATENCY_WINDOW_MS,
      now: Date.now(),
      samples: source.history.since(since),
    };
  });

  server.get('/logs', async () => ({ replicas: source.logs() }));

  registerProduceProxy(server, source);
}
