/**
 * Test peers for the apps: a tiny sidecar stand-in that records what the producer posts and answers as told, and
 * quiet loggers. The real sidecar has its own tests; here the question is what the apps put on the wire.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Logger } from '../../src/util/log.js';

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeSidecar {
  url: string;
  port: number;
  requests: Recorded[];
  /** Most requests seen in progress at once. */
  maxInFlight: number;
  /** Each request's [arrived, answered] order numbers, to check that sends did not overlap. */
  spans: Array<[number, number]>;
  close(): Promise<void>;
}

export interface FakeAnswer {
  status: number;
  body?: string;
  delayMs?: number;
}

/** `answer(i)` decides the reply to the i-th request (0-based); default 204 with no body, like daprd. */
export async function startFakeSidecar(answer: (i: number) => FakeAnswer = () => ({ status: 204 })): Promise<FakeSidecar> {
  const requests: Recorded[] = [];
  const spans: Array<[number, number]> = [];
  let inFlight = 0;
  let tick = 0;
  const fake = { requests, spans, maxInFlight: 0 } as FakeSidecar;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const i = requests.length;
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      inFlight += 1;
      fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
      const arrived = tick++;
      const a = answer(i);
      const reply = (): void => {
        inFlight -= 1;
        spans[i] = [arrived, tick++];
        res.statusCode = a.status;
        if (a.body !== undefined) res.setHeader('content-type', 'application/json');
        res.end(a.body ?? '');
      };
      if (a.delayMs) setTimeout(reply, a.delayMs);
      else reply();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  fake.port = port;
  fake.url = `http://127.0.0.1:${port}`;
  fake.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}

export function quietLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger whose lines a test can read. */
export function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
