/**
 * The command line's error codes, one place, as the sidecar's HTTP API has Dapr's. Every failure a command reports
 * carries one of these codes; the exit status follows from the code, so scripts can tell a bad flag from a broker
 * that is down without reading the message.
 */
import { QscaleError } from '../errors.js';

export const CLI_ERRORS = {
  /** A flag's value cannot be read (not a duration, not a port, out of range). Exit 2. */
  ERR_FLAG: { exit: 2, summary: 'a flag value is invalid' },
  /** A YAML file, run file or folder is wrong: the message names file:line and field. Exit 2. */
  ERR_CONFIG: { exit: 2, summary: 'the configuration is invalid' },
  /** A run file's command cannot be started (not found, not executable, bad appDirPath). Exit 2. */
  ERR_COMMAND: { exit: 2, summary: 'a run-file command cannot be started' },
  /** A fixed port (appPort, daprHTTPPort, --control-port) is taken by another process. Exit 2. */
  ERR_PORT_IN_USE: { exit: 2, summary: 'a fixed port is in use' },
  /** No `qscale up` runs for this data folder. Exit 3. */
  ERR_NOT_RUNNING: { exit: 3, summary: 'no qscale up is running here' },
  /** The supervisor answered with an error or could not be read. Exit 3. */
  ERR_STATUS: { exit: 3, summary: 'the supervisor status cannot be read' },
  /** The producer could not be reached. Exit 3. */
  ERR_PRODUCER_UNREACHABLE: { exit: 3, summary: 'the producer cannot be reached' },
  /** The producer refused the request (4xx). Exit 3. */
  ERR_PRODUCER_REFUSED: { exit: 3, summary: 'the producer refused the request' },
  /** The producer failed (5xx). Exit 3. */
  ERR_PRODUCER_FAILED: { exit: 3, summary: 'the producer failed' },
  /** A component failed to initialise. Exit 3. */
  ERR_COMPONENT_INIT: { exit: 3, summary: 'a component failed to initialise' },
  /** A server could not listen on its address. Exit 3. */
  ERR_LISTEN: { exit: 3, summary: 'a server could not listen' },
  /** `qscale dlq` / `qscale queue purge`: --binding names no queue binding of the system. Exit 2. */
  ERR_DLQ_BINDING: { exit: 2, summary: 'no such binding' },
  /** `qscale dlq requeue|purge` named neither dead letters (IDs) nor --all, or both. Exit 2. */
  ERR_DLQ_SELECTION: { exit: 2, summary: 'which dead letters is not said' },
  /** A dead-letter id names dead letters in more than one binding: --binding picks one. Exit 2. */
  ERR_DLQ_AMBIGUOUS: { exit: 2, summary: 'a dead-letter id is in more than one binding' },
  /** No dead letter has that id (it may have been requeued or purged meanwhile). Exit 3. */
  ERR_DLQ_NOT_FOUND: { exit: 3, summary: 'no such dead letter' },
  /** The binding's backend does not offer dead letters (or queue purge) yet. Exit 3. */
  ERR_DLQ_UNSUPPORTED: { exit: 3, summary: 'the backend does not offer this' },
  /** The broker of a binding could not be reached or refused the operation. Exit 3. */
  ERR_DLQ_BROKER: { exit: 3, summary: 'the broker could not do it' },
} as const;

export type CliErrorCode = keyof typeof CLI_ERRORS;

/** A command-line failure with a catalogued code. */
export class CliError extends QscaleError {
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CliError';
  }
}

/** The exit status for an error a command raised on purpose. */
export function exitCodeFor(err: QscaleError): number {
  const entry = (CLI_ERRORS as Record<string, { exit: number }>)[err.code];
  return entry?.exit ?? 2;
}
