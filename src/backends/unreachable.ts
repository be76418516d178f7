/**
 * What send and depth say while a broker cannot be reached, the same words for every broker: which component, which
 * broker at which address (no credentials), the cause, what qscale does meanwhile and what the user can do. Both
 * calls fail at once while the broker is known to be down, and after `ms` when it does not answer: a caller (an app's
 * POST /v1.0/bindings/..., the supervisor's /status) never blocks on an outage.
 */
import { BrokerError } from '../errors.js';
import { TimeoutError, withTimeout } from '../util/timeout.js';

export interface BrokerAddress {
  /** "component message-queue (bindings.rabbitmq)" */
  subject: string;
  /** "RabbitMQ" */
  broker: string;
  /** The address, credentials already redacted: "amqp://guest:***@127.0.0.1:5672". */
  where: string;
}

/**
 * The broker is known to be down (the last connection attempt failed, or the connection is lost). `handedOver`: the
 * command had already been given to the client when the outage showed, so a send may still be stored later.
 */
export function unreachable(a: BrokerAddress, doing: string, cause: string, meanwhile: string, handedOver = false): BrokerError {
  // Nothing handed over: a send that fails here stored nothing, and the caller may simply retry.
  const note = doing !== SEND ? '' : handedOver ? ' (the message may still be stored)' : ' (the message was not stored)';
  return new BrokerError(
    `${a.subject}: cannot ${doing}${note}: ${a.broker} at ${a.where} is unreachable (${cause}); ${meanwhile}. ` +
      `Check that ${a.broker} is running and reachable at that address`,
  );
}

/** Whether `err` is the BrokerError bounded() throws when the broker did not answer in time. */
export function isNoAnswer(err: unknown): boolean {
  return err instanceof BrokerError && err.cause instanceof TimeoutError;
}

/** Bounds one call to the broker: a TimeoutError becomes a BrokerError naming the broker; other errors pass. */
export async function bounded<T>(a: BrokerAddress, doing: string, ms: number, p: Promise<T>, onTimeout?: () => void): Promise<T> {
  try {
    return await withTimeout(p, ms, `no answer within ${ms} ms`, onTimeout);
  } catch (err) {
    if (err instanceof TimeoutError) throw noAnswer(a, doing, ms, err);
    throw err;
  }
}

/** The broker did not answer within `ms` (bounded(), or a client's own request timeout passed as `cause`). */
export function noAnswer(a: BrokerAddress, doing: string, ms: number, cause: unknown): BrokerError {
  const note = doing === SEND ? ' (the message may still be stored)' : '';
  return new BrokerError(
    `${a.subject}: cannot ${doing}${note}: no answer from ${a.broker} at ${a.where} within ${ms} ms. ` +
      `Check that ${a.broker} is running and reachable at that address`,
    { cause: new TimeoutError(`no answer within ${ms} ms: ${String(cause)}`, ms) },
  );
}

/** The verb phrases every backend uses, so the messages read alike. */
export const SEND = 'send';
export const DEPTH = 'read the queue depth';

/**
 * What a receive loop reports (ReceiveOptions.onBrokerState) while it cannot reach its broker and reconnects on its
 * own. No "meanwhile": whoever prints it says what happens meanwhile.
 */
export function receiveUnreachable(a: BrokerAddress, cause: string): BrokerError {
  return new BrokerError(`${a.subject}: ${a.broker} at ${a.where} is unreachable (${cause}). Check that ${a.broker} is running and reachable at that address`);
}
