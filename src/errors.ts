/**
 * Every error qscale raises on purpose carries a stable string code. Where the Dapr HTTP API overlaps,
 * the code is Dapr's own (ERR_MALFORMED_REQUEST, ...), so clients that switch on it keep working.
 */
export class QscaleError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'QscaleError';
  }
}

/** Where in a YAML file a config error sits. */
export interface SourcePos {
  file: string;
  line: number;
}

/**
 * A configuration error that names the file, the line and the field. Its message reads
 * `examples/seed/binding.yaml:12: component message-queue (bindings.rabbitmq): missing required metadata 'queueName'`.
 */
export class ConfigError extends QscaleError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly field: string | undefined;
  constructor(message: string, where?: { file?: string; line?: number; field?: string }, options?: { cause?: unknown }) {
    const prefix = where?.file ? `${where.file}${where.line ? `:${where.line}` : ''}: ` : '';
    super('ERR_CONFIG', prefix + message, options);
    this.name = 'ConfigError';
    this.file = where?.file;
    this.line = where?.line;
    this.field = where?.field;
  }
}

/** A failure talking to a broker, mapped to one readable message whatever the broker. */
export class BrokerError extends QscaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BROKER', message, options);
    this.name = 'BrokerError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
