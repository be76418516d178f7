/**
 * The producer's settings, all from the environment like the seed's container: `dapr run` and `qscale up` give
 * APP_PORT and DAPR_HTTP_PORT; on Kubernetes the Deployment sets them.
 */
export interface ProducerConfig {
  host: string;
  port: number;
  /** Base URL of the sidecar's HTTP API, e.g. http://127.0.0.1:3500. */
  sidecarUrl: string;
  bindingName: string;
  /** Sent as `dapr-api-token` when set; never logged. */
  apiToken: string | undefined;
  /** Sends in flight at once when intervalMilliseconds is 0. */
  concurrency: number;
}

/** Largest `count` one request may ask for; `qscale produce` splits bigger runs into requests of this size or less. */
export const MAX_COUNT = 100_000;
/** Longest pause between two messages (one hour): beyond that a request would outlive any client's patience. */
export const MAX_INTERVAL_MS = 3_600_000;
export const DEFAULT_CONCURRENCY = 16;

export class EnvError extends Error {
  override name = 'EnvError';
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new EnvError(`environment variable ${name}='${raw}' must be a whole number from ${min} to ${max}`);
  }
  return n;
}

export function readProducerConfig(env: NodeJS.ProcessEnv = process.env): ProducerConfig {
  const portVar = env.APP_PORT !== undefined && env.APP_PORT !== '' ? 'APP_PORT' : 'PORT';
  const port = intFromEnv(env, portVar, 5000, 0, 65535);
  const daprPort = intFromEnv(env, 'DAPR_HTTP_PORT', 3500, 1, 65535);
  // DAPR_HTTP_ENDPOINT is what the Dapr SDKs read for a sidecar that is not on loopback.
  const endpoint = env.DAPR_HTTP_ENDPOINT?.replace(/\/+$/, '');
  if (endpoint !== undefined && endpoint !== '' && !/^https?:\/\/[^/]+$/.test(endpoint)) {
    throw new EnvError(`environment variable DAPR_HTTP_ENDPOINT='${endpoint}' must be a URL like http://127.0.0.1:3500`);
  }
  const bindingName = env.BINDING_NAME && env.BINDING_NAME !== '' ? env.BINDING_NAME : 'message-queue';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bindingName)) {
    throw new EnvError(`environment variable BINDING_NAME='${bindingName}' is not a component name (letters, digits, '.', '_', '-')`);
  }
  return {
    host: env.HOST && env.HOST !== '' ? env.HOST : '127.0.0.1',
    port,
    sidecarUrl: endpoint ? endpoint : `http://127.0.0.1:${daprPort}`,
    bindingName,
    apiToken: env.DAPR_API_TOKEN && env.DAPR_API_TOKEN !== '' ? env.DAPR_API_TOKEN : undefined,
    concurrency: intFromEnv(env, 'PRODUCER_CONCURRENCY', DEFAULT_CONCURRENCY, 1, 1024),
  };
}
