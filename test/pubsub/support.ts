/**
 * Helpers for pub/sub sidecar tests: a resources folder with an embedded pub/sub component and Subscriptions, an app
 * on node:http that answers GET /dapr/subscribe and each delivery as the test says, and the sidecar in-process.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startSidecar, type SidecarHandle, type SidecarOptions } from '../../src/sidecar/index.js';
import { componentYaml, quiet, tempDir } from '../sidecar/support.js';

export interface Delivery {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as JSON (the CloudEvent), when it is JSON. */
  json?: Record<string, unknown>;
}

export interface Answer {
  status: number;
  body?: string;
}

export interface PubSubApp {
  port: number;
  /** Every POST the app got (not GET /dapr/subscribe). */
  got: Delivery[];
  /** At most how many deliveries were in the app at once. */
  maxConcurrent: number;
  close(): Promise<void>;
}

/** An app that answers GET /dapr/subscribe with `subscriptions` (404 when undefined) and each POST with `answer`. */
export async function startPubSubApp(
  subscriptions: unknown,
  answer: (d: Delivery) => Answer | Promise<Answer> = () => ({ status: 200 }),
): Promise<PubSubApp> {
  const got: Delivery[] = [];
  let inside = 0;
  const app: PubSubApp = { port: 0, got, maxConcurrent: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'GET' && req.url === '/dapr/subscribe') {
        if (subscriptions === undefined) res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(typeof subscriptions === 'string' ? subscriptions : JSON.stringify(subscriptions));
        return;
      }
      const d: Delivery = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      try {
        d.json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // not JSON
      }
      got.push(d);
      inside++;
      app.maxConcurrent = Math.max(app.maxConcurrent, inside);
      void Promise.resolve(answer(d)).then((a) => {
        inside--;
        res.writeHead(a.status, a.body === undefined ? {} : { 'content-type': 'application/json' }).end(a.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  app.port = typeof addr === 'object' && addr ? addr.port : 0;
  app.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return app;
}

/** A Component YAML of the embedded pub/sub (or `type`), with metadata name → value. */
export function pubsubYaml(name: string, metadata: Record<string, string> = {}, type = 'pubsub.qscale.embedded'): string {
  return componentYaml(name, metadata, type);
}

/** A folder with these files (name → YAML text). */
export function resources(files: Record<string, string>): string {
  const dir = tempDir('qscale-pubsub-');
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, f), text);
  return dir;
}

/** The sidecar of `appId` over the folder, its data in the folder's .qscale. */
export function sidecarOn(dir: string, appId: string, opts: Partial<SidecarOptions> = {}): Promise<SidecarHandle> {
  return startSidecar({
    appId,
    httpPort: 0,
    resourcesPaths: [dir],
    dataDir: path.join(dir, '.qscale'),
    logger: quiet,
    gracePeriodMs: 10_000,
    ...opts,
  });
}

export async function publish(port: number, pubsub: string, topic: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, query = ''): Promise<{ status: number; text: string; headers: Headers }> {
  // A Buffer goes as bytes with no Content-Type of fetch's own (a string would get text/plain).
  const payload = typeof body === 'string' ? body : new Uint8Array(body);
  const res = await fetch(`http://127.0.0.1:${port}/v1.0/publish/${pubsub}/${topic}${query}`, { method: 'POST', body: payload, headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

export async function metadataOf(port: number): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}/v1.0/metadata`);
  return (await res.json()) as Record<string, unknown>;
}
