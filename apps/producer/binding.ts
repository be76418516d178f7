/**
 * Where the producer's messages go, through the sidecar: the output binding, as the seed's Producer did
 * (POST /v1.0/bindings/<name> with `{"data": ..., "operation": "create"}`), or a pub/sub topic
 * (POST /v1.0/publish/<pubsub>/<topic> with the message as the JSON body: the sidecar wraps it in a CloudEvent).
 * One keep-alive pool, sized to the send concurrency.
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Target } from './config.js';

/** The sidecar answered something other than 2xx; `body` is its error text (Dapr's `{errorCode, message}`). */
export class SidecarError extends Error {
  override name = 'SidecarError';
  constructor(readonly status: number, readonly body: string, readonly url: string) {
    super(`sidecar answered ${status} to POST ${url}: ${body === '' ? '(empty body)' : body}`);
  }
}

/** The sidecar could not be reached at all. */
export class SidecarUnreachableError extends Error {
  override name = 'SidecarUnreachableError';
  constructor(readonly url: string, readonly reason: string) {
    super(`sidecar unreachable at ${url}: ${reason} (is the Dapr sidecar running? DAPR_HTTP_PORT tells where)`);
  }
}

export interface BindingClient {
  /** Full URL of the binding or topic, for messages. */
  readonly url: string;
  send(data: unknown, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface BindingClientOptions {
  sidecarUrl: string;
  target: Target;
  apiToken: string | undefined;
  connections: number;
  /**
   * How long a refused connection is retried. The app and its sidecar start side by side, so the first request can
   * beat the sidecar's listener; a refused connection never reached it, so a retry cannot store a message twice.
   */
  connectWaitMs?: number;
}

function connectionRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code === 'ECONNREFUSED') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function reasonOf(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    const msg = (e as { message?: unknown }).message;
    if (typeof code === 'string' && !code.startsWith('UND_ERR') && !parts.includes(code)) parts.push(code);
    else if (typeof msg === 'string' && msg !== '' && parts.length === 0) parts.push(msg);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ') || String(err);
}

export function createBindingClient(o: BindingClientOptions): BindingClient {
  const t = o.target;
  const path = t.kind === 'binding'
    ? `/v1.0/bindings/${encodeURIComponent(t.name)}`
    : `/v1.0/publish/${encodeURIComponent(t.pubsub)}/${encodeURIComponent(t.topic)}`;
  const encode = t.kind === 'binding' ? (data: unknown) => JSON.stringify({ data, operation: 'create' }) : (data: unknown) => JSON.stringify(data);
  const url = `${o.sidecarUrl}${path}`;
  const pool = new Pool(o.sidecarUrl, { connections: o.connections, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.apiToken !== undefined) headers['dapr-api-token'] = o.apiToken;
  const waitMs = o.connectWaitMs ?? 5000;

  const sendOnce = async (body: string, signal?: AbortSignal): Promise<void> => {
    const res = await pool.request({ path, method: 'POST', headers, body, signal });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new SidecarError(res.statusCode, text, url);
  };

  return {
    url,
    async send(data, signal) {
      const body = encode(data);
      const deadline = Date.now() + waitMs;
      for (;;) {
        try {
          await sendOnce(body, signal);
          return;
        } catch (err) {
          if (err instanceof SidecarError) throw err;
          if (err instanceof undiciErrors.RequestAbortedError || signal?.aborted) throw err;
          if (connectionRefused(err) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          throw new SidecarUnreachableError(url, reasonOf(err));
        }
      }
    },
    async close() {
      await pool.close();
    },
  };
}
