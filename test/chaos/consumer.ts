/**
 * The consumer app of the chaos test. It speaks the seed consumer's HTTP contract (OPTIONS and POST /<binding>,
 * GET /healthz, SIGTERM finishes in-flight work) and logs every delivery with the message id and its own pid, so the
 * test can tell which process worked on which message:
 *   `start <id> pid=<pid>` when a delivery arrives, `processed <id> pid=<pid>` just before it answers 200.
 * stdout is a pipe, and writes to a pipe are synchronous on Linux: a line is out before the answer is.
 * Env: APP_PORT, BINDING_NAME (default message-queue), WORK_MS (default 30).
 */
import http from 'node:http';

const port = Number(process.env.APP_PORT ?? '6000');
const route = `/${process.env.BINDING_NAME || 'message-queue'}`;
const workMs = Number(process.env.WORK_MS ?? '30');
let inFlight = 0;
let closing = false;

function idOf(body: string): string | undefined {
  try {
    const v = JSON.parse(body) as unknown;
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const id = o.id ?? o.text;
      if (typeof id === 'string' && id !== '') return id;
    }
  } catch {
    // not JSON
  }
  return undefined;
}

function maybeExit(): void {
  if (closing && inFlight === 0) process.exit(0);
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ inFlight }));
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
    if (id === undefined) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errorCode: 'ERR_BAD_MESSAGE', message: 'no id' }));
      return;
    }
    inFlight += 1;
    process.stdout.write(`start ${id} pid=${process.pid}\n`);
    setTimeout(() => {
      process.stdout.write(`processed ${id} pid=${process.pid}\n`);
      res.writeHead(200).end(() => {
        inFlight -= 1;
        maybeExit();
      });
    }, workMs);
  });
});

server.listen(port, '127.0.0.1');

process.on('SIGTERM', () => {
  closing = true;
  server.close();
  server.closeIdleConnections();
  maybeExit();
});
