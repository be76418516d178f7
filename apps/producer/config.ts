/**
 * The producer's settings, all from the environment like the seed's container: `dapr run` and `qscale up` give
 * APP_PORT and DAPR_HTTP_PORT; on Kubernetes the Deployment sets them.
 */
export interface ProducerConfig {
  host: string;
  port: number;
  /** Base URL of the sidecar's HTTP API, e.g. http://127.0.0.1:3500. */
  sidecarUrl: string;
  /** Where messages go: the output binding (the seed's way), or a pub/sub topic when PUBSUB_NAME and TOPIC are set. */
  target: Target;
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

/** An output binding (`POST /v1.0/bindings/<name>`) or a topic (`POST /v1.0/publish/<pubsub>/<topic>`). */
export type Target = { kind: 'binding'; name: string } | { kind: 'topic'; pubsub: string; topic: string };

/** How a target is named in log lines and the API description. */
export function describeTarget(t: Target): string {
  return t.kind === 'binding' ? `binding ${t.name}` : `topic ${t.topic} of pub/sub ${t.pubsub}`;
}

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
  const target = readTarget(env);
  return {
    host: env.HOST && env.HOST !== '' ? env.HOST : '127.0.0.1',
    port,
    sidecarUrl: endpoint ? endpoint : `http://127.0.0.1:${daprPort}`,
    target,
    apiToken: env.DAPR_API_TOKEN && env.DAPR_API_TOKEN !== '' ? env.DAPR_API_TOKEN : undefined,
    concurrency: intFromEnv(env, 'PRODUCER_CONCURRENCY', DEFAULT_CONCURRENCY, 1, 1024),
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function nameFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: string | undefined, what: string): string | undefined {
  const raw = env[name];
  const v = raw !== undefined && raw !== '' ? raw : fallback;
  if (v !== undefined && !NAME.test(v)) {
    throw new EnvError(`environment variable ${name}='${v}' is not ${what} (letters, digits, '.', '_', '-')`);
  }
  return v;
}

/** PUBSUB_NAME and TOPIC together select publishing; one without the other is refused by name. */
export function readTarget(env: NodeJS.ProcessEnv): Target {
  const pubsub = nameFromEnv(env, 'PUBSUB_NAME', undefined, 'a component name');
  const topic = nameFromEnv(env, 'TOPIC', undefined, 'a topic name');
  if (pubsub !== undefined && topic !== undefined) return { kind: 'topic', pubsub, topic };
  if (pubsub !== undefined || topic !== undefined) {
    const [set, unset] = pubsub !== undefined ? ['PUBSUB_NAME', 'TOPIC'] : ['TOPIC', 'PUBSUB_NAME'];
    throw new EnvError(`environment variable ${set} is set but ${unset} is not: set both to publish to a topic, or neither to use the output binding BINDING_NAME`);
  }
  return { kind: 'binding', name: nameFromEnv(env, 'BINDING_NAME', 'message-queue', 'a component name') ?? 'message-queue' };
}
