/** The consumer's settings, from the environment like the seed's container. */
export interface ConsumerConfig {
  host: string;
  port: number;
  /** The route the sidecar delivers to: the binding's name, POST /<route>. */
  route: string;
  /** How long one message "works", as the seed's `Task.Delay(5 * 1000)`. */
  workMs: number;
  /** When set, every delivery must carry it as `dapr-api-token` (the sidecar sends APP_API_TOKEN). Never logged. */
  apiToken: string | undefined;
  /** Set from PUBSUB_NAME and TOPIC: the app subscribes programmatically (GET /dapr/subscribe) to that topic. */
  subscription: { pubsubname: string; topic: string } | undefined;
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

export function readConsumerConfig(env: NodeJS.ProcessEnv = process.env): ConsumerConfig {
  const portVar = env.APP_PORT !== undefined && env.APP_PORT !== '' ? 'APP_PORT' : 'PORT';
  const route = env.BINDING_NAME && env.BINDING_NAME !== '' ? env.BINDING_NAME : 'message-queue';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(route)) {
    throw new EnvError(`environment variable BINDING_NAME='${route}' is not a component name (letters, digits, '.', '_', '-')`);
  }
  return {
    host: env.HOST && env.HOST !== '' ? env.HOST : '127.0.0.1',
    port: intFromEnv(env, portVar, 6000, 0, 65535),
    route,
    workMs: intFromEnv(env, 'WORK_MS', 5000, 0, 24 * 3600 * 1000),
    apiToken: env.APP_API_TOKEN && env.APP_API_TOKEN !== '' ? env.APP_API_TOKEN : undefined,
    subscription: readSubscription(env),
  };
}

function readSubscription(env: NodeJS.ProcessEnv): ConsumerConfig['subscription'] {
  const pubsub = env.PUBSUB_NAME ?? '';
  const topic = env.TOPIC ?? '';
  if (pubsub === '' && topic === '') return undefined;
  if (pubsub === '' || topic === '') {
    const [set, unset] = pubsub !== '' ? ['PUBSUB_NAME', 'TOPIC'] : ['TOPIC', 'PUBSUB_NAME'];
    throw new EnvError(`environment variable ${set} is set but ${unset} is not: set both to subscribe to a topic, or neither`);
  }
  for (const [name, v] of [['PUBSUB_NAME', pubsub], ['TOPIC', topic]] as const) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) throw new EnvError(`environment variable ${name}='${v}' is not a valid name (letters, digits, '.', '_', '-')`);
  }
  return { pubsubname: pubsub, topic };
}
