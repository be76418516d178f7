/**
 * A consumer app for the dead-letter tests: it refuses every message with a 500 and a JSON body naming it
 * (`{"error":"bad order <id>"}`) until the file ACCEPT_FILE exists, then takes each one. It logs
 * `refused <id> pid=<pid>` and `processed <id> pid=<pid>` so a test can count what it did with each message.
 * Env: APP_PORT, BINDING_NAME (default message-queue), ACCEPT_FILE.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';

const port = Number(process.env.APP_PORT ?? '6000');
const route = `/${process.env.BINDING_NAME || 'message-queue'}`;
const acceptFile = process.env.ACCEPT_FILE ?? '';

function idOf(body: string): string {
  try {
    const v = JSON.parse(body) as unknown;
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string') return (v as { id: string }).id;
  } catch {
    // not JSON
  }
  return body.slice(0, 40);
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200).end('{}');
    return;
  }
  if (req.method === 'OPTIONS' && path === route) {
    res.writeHead(200).end();
    return;
  }
  if (req.method !== 'POST' || path !== route) {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const id = idOf(Buffer.concat(chunks).toString('utf8'));
    if (acceptFile === '' || !existsSync(acceptFile)) {
      process.stdout.write(`refused ${id} pid=${process.pid}\n`);
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `bad order ${id}` }));
      return;
    }
    process.stdout.write(`processed ${id} pid=${process.pid}\n`);
    res.writeHead(200).end();
  });
});

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 100).unref();
});
