/**
 * Drives the producer app's POST /MessageProducer in chunks, so a run of 100,000 messages reports real progress
 * and is not bounded by the producer's per-request maximum. The pause between messages is kept across chunk
 * boundaries: the producer pauses between the messages of a chunk, this loop pauses between chunks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { CliError } from '../codes.js';

/** The producer's per-request maximum (apps/producer/config.ts MAX_COUNT). */
export const PRODUCER_MAX_COUNT = 100_000;

export interface ProduceRun {
  url: string;
  /** Named in errors: where the URL came from. */
  source: string;
  count: number;
  intervalMs: number;
  /** Messages per request; undefined = chosen by chunkSize(). */
  chunk?: number;
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ProduceResult {
  sent: number;
  requests: number;
  elapsedMs: number;
}

/** About one second of producer work per request, so progress moves at least once a second. */
export function chunkSize(count: number, intervalMs: number): number {
  const perSecond = intervalMs > 0 ? Math.max(1, Math.floor(1000 / intervalMs)) : 1000;
  return Math.max(1, Math.min(count, perSecond, PRODUCER_MAX_COUNT));
}

export function causeCode(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The producer's error text: its JSON `message` when it has one, else the raw body. */
function describeBody(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: show it as it is
  }
  return text.trim() === '' ? '(empty body)' : text.trim();
}

export async function produceInChunks(run: ProduceRun): Promise<ProduceResult> {
  const started = Date.now();
  const size = run.chunk ?? chunkSize(run.count, run.intervalMs);
  let sent = 0;
  let requests = 0;
  run.onProgress?.(0, run.count);
  while (sent < run.count) {
    if (requests > 0 && run.intervalMs > 0) await sleep(run.intervalMs, undefined, { signal: run.signal });
    const n = Math.min(size, run.count - sent);
    let status: number;
    let text: string;
    try {
      const res = await request(`${run.url}/MessageProducer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ count: n, intervalMilliseconds: run.intervalMs }),
        headersTimeout: 0,
        bodyTimeout: 0,
        signal: run.signal,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      if (run.signal?.aborted) throw err;
      const before = sent > 0 ? ` after ${sent} of ${run.count} messages were sent` : '';
      throw new CliError(
        'ERR_PRODUCER_UNREACHABLE',
        `cannot reach the producer at ${run.url} (${causeCode(err)}, URL from ${run.source})${before}: start the system with \`qscale up\`, or pass --url`,
        { cause: err },
      );
    }
    requests += 1;
    if (status < 200 || status >= 300) {
      let partial = 0;
      try {
        const s = (JSON.parse(text) as { sent?: unknown }).sent;
        if (typeof s === 'number') partial = s;
      } catch {
        // no count in the body
      }
      const done = sent + partial;
      throw new CliError(
        status >= 500 ? 'ERR_PRODUCER_FAILED' : 'ERR_PRODUCER_REFUSED',
        `producer at ${run.url} answered ${status}: ${describeBody(text)} [${done} of ${run.count} messages sent in all]`,
      );
    }
    sent += n;
    run.onProgress?.(sent, run.count);
  }
  return { sent, requests, elapsedMs: Date.now() - started };
}
