/**
 * The one contract every broker implements. Kept a page long on purpose: send, receive, depth, close.
 * Optional features are detected with the type guards at the bottom.
 */
import type { MetadataSpec } from '../components/metadata.js';
import type { Logger } from '../util/log.js';

/** Per-message metadata: delivered to the app as lower-cased HTTP headers. */
export type MessageMetadata = Record<string, string>;

export interface QueueMessage {
  /** The broker's id for the message (stable across redeliveries where the broker allows). */
  readonly id: string;
  /** Exactly the bytes the producer's sidecar stored. */
  readonly data: Buffer;
  readonly metadata: MessageMetadata;
  /** 1 on the first delivery, +1 on each redelivery. */
  readonly deliveryCount: number;
  /** When the broker first stored the message (ms since the epoch), where the broker records it. */
  readonly enqueuedAt?: number;
}

/** A handler's "not processed", with what went wrong: the app's status and the first bytes of its answer, or the error. */
export interface HandlerFailure {
  readonly ok: false;
  readonly reason: string;
}
/** true = processed; false or a HandlerFailure = not processed (a failure's reason is kept with a dead letter). */
export type HandlerResult = boolean | HandlerFailure;

export function failed(reason: string): HandlerFailure {
  return { ok: false, reason };
}

/** What a backend does with a handler's answer or throw: only `true` acks. */
export function settle(result: HandlerResult | undefined, thrown?: unknown): { ok: boolean; reason: string } {
  if (thrown !== undefined) return { ok: false, reason: `the handler threw: ${thrown instanceof Error ? thrown.message : String(thrown)}` };
  if (result === true) return { ok: true, reason: '' };
  if (typeof result === 'object' && result !== null && typeof result.reason === 'string') return { ok: false, reason: result.reason };
  return { ok: false, reason: 'the handler reported failure' };
}

/**
 * The handler's answer decides what happens to the message: true = processed, complete/ack it;
 * false (or a throw) = not processed, release it for redelivery (dead-lettered once the delivery count reaches
 * the backend's maximum).
 */
export type MessageHandler = (msg: QueueMessage) => Promise<HandlerResult>;

export interface ReceiveOptions {
  /** At most this many handler calls at once; the backend leases no more than it can hand out now. */
  concurrency: number;
  /**
   * Aborting stops taking new messages. receive() resolves only after every handler call already started has
   * settled and its outcome was applied (acked or released): that is what makes a drain lose nothing.
   */
  signal: AbortSignal;
  /**
   * A receive loop that reconnects on its own (its broker went away and it keeps retrying) reports it here instead
   * of logging each retry: `onBrokerState(err)` when receiving stops working (again with each new cause),
   * `onBrokerState(undefined)` once it receives again. The sidecar turns these into one line per outage.
   */
  onBrokerState?(err: unknown): void;
}

export interface QueueDepth {
  /** Waiting to be delivered. */
  ready: number;
  /** Delivered and not yet acked (leased / locked / unacked). */
  inFlight: number;
  /** Moved aside after too many failed deliveries. */
  deadLettered: number;
}

export interface Backend {
  /** Component name, e.g. "message-queue". */
  readonly name: string;
  /** Component type it serves, e.g. "bindings.azure.servicebusqueues". */
  readonly type: string;
  /** Connect and check what can be checked (queue exists, credentials). Called once, bounded by initTimeout. */
  init(): Promise<void>;
  send(data: Buffer, metadata: MessageMetadata): Promise<void>;
  /** Runs until options.signal aborts (then drains) or the backend is closed. Rejects on a fatal broker error. */
  receive(handler: MessageHandler, options: ReceiveOptions): Promise<void>;
  depth(): Promise<QueueDepth>;
  /** Idempotent: a second call is harmless. */
  close(): Promise<void>;
}

export interface DeadLetter {
  /** Names this dead letter for deadLetter(id), requeue and purge; stable while it stays dead-lettered. */
  id: string;
  data: Buffer;
  /** The message's metadata as sent (what a requeue sends again). */
  metadata: MessageMetadata;
  /** Deliveries made before it was set aside. */
  deliveryCount: number;
  /** Why: the app's status and the first bytes of its answer, the handler's error, or the broker's own cause. */
  reason: string;
  /** When the message was first enqueued (ms since the epoch), where known. */
  enqueuedAt?: number;
  /** When it was dead-lettered (ms since the epoch), where known. */
  deadLetteredAt?: number;
}

export interface Pingable {
  ping(): Promise<void>;
}
/**
 * Dead letters a user can browse and replay. Requeue sends the body and metadata back to the queue as a new message
 * with a fresh delivery count and removes the dead letter; purge deletes dead letters. `ids` names dead letters by
 * DeadLetter.id (unknown ids are ignored); 'all' means every one. Both return how many they moved or deleted.
 */
export interface DeadLetterReader {
  /** Oldest first, at most limit. */
  deadLetters(limit: number): Promise<DeadLetter[]>;
  deadLetter(id: string): Promise<DeadLetter | undefined>;
  requeueDeadLetters(ids: readonly string[] | 'all'): Promise<number>;
  purgeDeadLetters(ids: readonly string[] | 'all'): Promise<number>;
}

/** Deletes the queue's ready messages (not those in flight, not dead letters); returns how many. */
export interface Purgeable {
  purge(): Promise<number>;
}

export function isPingable(b: Backend): b is Backend & Pingable {
  return typeof (b as Partial<Pingable>).ping === 'function';
}
export function hasDeadLetters(b: Backend): b is Backend & DeadLetterReader {
  const d = b as Partial<DeadLetterReader>;
  return typeof d.deadLetters === 'function' && typeof d.requeueDeadLetters === 'function' && typeof d.purgeDeadLetters === 'function';
}
export function isPurgeable(b: Backend): b is Backend & Purgeable {
  return typeof (b as Partial<Purgeable>).purge === 'function';
}

/** A Component after secrets were resolved: what a backend factory gets. */
export interface ResolvedComponent {
  name: string;
  type: string;
  version: string;
  /** Metadata values with secretKeyRef / envRef resolved. Sensitive: never log without redaction. */
  metadata: Record<string, string>;
  initTimeoutMs: number;
  ignoreErrors: boolean;
  scopes: string[];
  file: string;
  line: number;
  /** file:line of a metadata entry (or of the component when absent). */
  where(field?: string): { file?: string; line?: number };
}

export interface BackendContext {
  logger: Logger;
  /** The data folder (the embedded queue's SQLite file lives here). */
  dataDir: string;
}

/** One line in the registry: a binding type and how to build it. */
export interface BackendDefinition {
  /** Component types served, e.g. ["bindings.rabbitmq"]. */
  types: readonly string[];
  metadata: MetadataSpec;
  /** The queue this component talks to: kept when --embedded serves it from SQLite. */
  queueName(component: ResolvedComponent): string;
  create(component: ResolvedComponent, ctx: BackendContext): Backend;
}
