/**
 * A test peer speaking AMQP 1.0 — not Service Bus. Azure cannot be reached from this machine, so the real
 * @azure/service-bus SDK is pointed at this peer (a connection string with UseDevelopmentEmulator=true makes the SDK
 * use plain AMQP to the endpoint's port). It does the part of Service Bus's AMQP surface the binding uses:
 * SASL ANONYMOUS, $cbs put-token, send and peek-lock or receive-and-delete links on a queue and on its dead-letter
 * subqueue (<queue>/$DeadLetterQueue), settlement (accepted = complete, modified = abandon, rejected = dead-letter
 * with the reason, description and properties the client gives, released), lock expiry, delivery counts with
 * dead-lettering at maxDeliveryCount, and renew-lock and peek-message on <entity>/$management; with `tls`, it
 * listens over TLS as a namespace does (for
 * the Azure AD path, which the SDK only takes over TLS), and it records every token put on $cbs, never checking one.
 * What it does not do: the ATOM management API, sessions, scheduling, partitions — and its behaviour is this file's
 * reading of Service Bus, not Service Bus.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:net';
import { randomUUID } from 'node:crypto';
import rhea from 'rhea';
import type { Connection, ContainerOptions, Delivery, EventContext, Message, Sender, Source, TerminusOptions } from 'rhea';

export interface PeerMessage {
  seq: number;
  message: Message;
  enqueuedAt: Date;
  /** Deliveries so far. */
  deliveries: number;
}

interface Locked {
  entry: PeerMessage;
  /** The address it was received from: a queue, or its dead-letter subqueue. */
  address: string;
  lockedUntil: number;
  delivery: Delivery;
}

class PeerQueue {
  ready: PeerMessage[] = [];
  deadLetters: PeerMessage[] = [];
}

const DEAD_LETTER_SUFFIX = '/$DeadLetterQueue';

/** A link's address: the queue, and whether it reads the dead-letter subqueue. */
function entityOf(address: string): { queue: string; deadLetter: boolean } {
  const deadLetter = address.toLowerCase().endsWith(DEAD_LETTER_SUFFIX.toLowerCase());
  return { queue: deadLetter ? address.slice(0, -DEAD_LETTER_SUFFIX.length) : address, deadLetter };
}

export interface PeerOptions {
  lockDurationMs?: number;
  maxDeliveryCount?: number;
  /** Listen over TLS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

/** One put-token request on $cbs: the audience, the token type (a SAS token or an Azure AD "jwt") and the token. */
export interface PutToken {
  audience: string;
  type: string;
  token: string;
}

export interface PeerStats {
  /** Audiences of the put-token requests on $cbs. */
  putTokens: string[];
  /** The put-token requests themselves. */
  cbs: PutToken[];
  completes: number;
  abandons: number;
  renewLocks: number;
  lockExpiries: number;
  /** Dead letters the client asked for (rejected outcomes), with their error info. */
  deadLetterings: Array<Record<string, unknown>>;
  peeks: number;
}

export class AmqpTestPeer {
  readonly stats: PeerStats = { putTokens: [], cbs: [], completes: 0, abandons: 0, renewLocks: 0, lockExpiries: 0, deadLetterings: [], peeks: 0 };
  private readonly queues = new Map<string, PeerQueue>();
  private readonly locked = new Map<string, Locked>();
  private readonly consumers = new Map<string, Set<Sender>>();
  private readonly connections = new Set<Connection>();
  private readonly handed = new Map<Sender, number>();
  private seq = 0;
  private readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
  private readonly expiry: NodeJS.Timeout;

  private constructor(private readonly server: Server, readonly port: number, opts: PeerOptions) {
    this.lockDurationMs = opts.lockDurationMs ?? 60_000;
    this.maxDeliveryCount = opts.maxDeliveryCount ?? 10;
    this.expiry = setInterval(() => this.expireLocks(), 50);
  }

  static async start(opts: PeerOptions = {}): Promise<AmqpTestPeer> {
    // An abandon (modified) is its own outcome here, not a release.
    const container = rhea.create_container({ id: 'qscale-test-peer', treat_modified_as_released: false } as ContainerOptions);
    container.sasl_server_mechanisms.enable_anonymous();
    const server: Server = opts.tls
      ? container.listen({ port: 0, host: '127.0.0.1', transport: 'tls', key: opts.tls.key, cert: opts.tls.cert } as Parameters<typeof container.listen>[0])
      : container.listen({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const peer = new AmqpTestPeer(server, (server.address() as AddressInfo).port, opts);
    peer.wire(container);
    return peer;
  }

  /** A connection string the SDK accepts, plain AMQP to this peer. The key is a fake and the peer ignores it. */
  connectionString(key = 'peer-test-key-not-a-secret'): string {
    return `Endpoint=sb://127.0.0.1:${this.port}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${key};UseDevelopmentEmulator=true`;
  }

  queue(name: string): PeerQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new PeerQueue();
      this.queues.set(name, q);
    }
    return q;
  }

  /** Active messages (ready + locked), as Service Bus counts ActiveMessageCount; dead letters, locked ones included. */
  counts(name: string): { active: number; deadLetter: number; locked: number } {
    const q = this.queue(name);
    const locked = [...this.locked.values()].filter((l) => l.address === name).length;
    const deadLocked = [...this.locked.values()].filter((l) => l.address === name + DEAD_LETTER_SUFFIX).length;
    return { active: q.ready.length + locked, deadLetter: q.deadLetters.length + deadLocked, locked };
  }

  /** Puts a message straight into a queue's dead-letter subqueue, as Service Bus (or another client) left it. */
  addDeadLetter(queue: string, message: Message, deliveries: number, enqueuedAt = new Date()): PeerMessage {
    const entry: PeerMessage = { seq: ++this.seq, message, enqueuedAt, deliveries };
    this.queue(queue).deadLetters.push(entry);
    return entry;
  }

  async close(): Promise<void> {
    clearInterval(this.expiry);
    for (const c of this.connections) {
      try {
        c.close();
      } catch {
        // already gone
      }
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private wire(container: ReturnType<typeof rhea.create_container>): void {
    container.on('connection_open', (ctx: EventContext) => {
      this.connections.add(ctx.connection);
    });
    container.on('connection_close', (ctx: EventContext) => this.connections.delete(ctx.connection));
    container.on('disconnected', (ctx: EventContext) => {
      this.connections.delete(ctx.connection);
      this.dropConnection(ctx.connection);
    });
    container.on('error', () => undefined);
    container.on('receiver_open', (ctx: EventContext) => {
      const r = ctx.receiver;
      if (!r) return;
      const address = addressOf(remoteAttach(r).target);
      r.set_target({ address });
      r.set_source((remoteAttach(r).source ?? {}) as unknown as Source);
      (r as unknown as { local: { attach: { max_message_size: number } } }).local.attach.max_message_size = 1024 * 1024;
    });
    container.on('sender_open', (ctx: EventContext) => {
      const s = ctx.sender;
      if (!s) return;
      const address = addressOf(remoteAttach(s).source);
      s.set_source({ address });
      s.set_target((remoteAttach(s).target ?? {}) as unknown as TerminusOptions);
      // Receive-and-delete: the client asks for settled deliveries.
      const local = (s as unknown as { local: { attach: { snd_settle_mode: number } } }).local.attach;
      if (remoteAttach(s).snd_settle_mode === 1) local.snd_settle_mode = 1;
      if (!address.startsWith('$') && (!address.includes('/$') || entityOf(address).deadLetter)) {
        let set = this.consumers.get(address);
        if (!set) this.consumers.set(address, (set = new Set()));
        set.add(s);
      }
    });
    const forget = (ctx: EventContext): void => {
      const s = ctx.sender;
      if (s) for (const set of this.consumers.values()) set.delete(s);
    };
    container.on('sender_close', forget);
    container.on('sendable', (ctx: EventContext) => {
      if (ctx.sender) this.pump(addressOf(ctx.sender.source));
    });
    container.on('sender_draining', (ctx: EventContext) => {
      const s = ctx.sender;
      if (!s) return;
      this.pump(addressOf(s.source));
      s.set_drained(true);
    });
    container.on('message', (ctx: EventContext) => this.onMessage(ctx));
    container.on('accepted', (ctx: EventContext) => this.settle(ctx, 'complete'));
    container.on('modified', (ctx: EventContext) => this.settle(ctx, 'abandon'));
    container.on('released', (ctx: EventContext) => this.settle(ctx, 'release'));
    container.on('rejected', (ctx: EventContext) => this.settle(ctx, 'deadletter'));
  }

  /** Where a link's messages wait: the queue's ready list, or its dead letters. */
  private waiting(address: string): PeerMessage[] {
    const { queue, deadLetter } = entityOf(address);
    const q = this.queue(queue);
    return deadLetter ? q.deadLetters : q.ready;
  }

  private onMessage(ctx: EventContext): void {
    const msg = ctx.message;
    const r = ctx.receiver;
    if (!msg || !r) return;
    const target = addressOf(r.target);
    if (target === '$cbs') {
      const props = (msg.application_properties ?? {}) as Record<string, unknown>;
      this.stats.putTokens.push(String(props.name ?? ''));
      this.stats.cbs.push({ audience: String(props.name ?? ''), type: String(props.type ?? ''), token: String(msg.body ?? '') });
      this.reply(ctx.connection, msg, target, { 'status-code': 202, 'status-description': 'Accepted' }, undefined);
      return;
    }
    if (target.endsWith('/$management')) {
      this.management(ctx.connection, msg, target);
      return;
    }
    for (const message of unbatched(msg)) {
      this.queue(target).ready.push({ seq: ++this.seq, message, enqueuedAt: new Date(), deliveries: 0 });
    }
    this.pump(target);
  }

  private management(conn: Connection, msg: Message, address: string): void {
    const props = (msg.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation === 'com.microsoft:peek-message') {
      this.peek(conn, msg, address);
      return;
    }
    if (props.operation !== 'com.microsoft:renew-lock') {
      this.reply(conn, msg, address, { statusCode: 501, statusDescription: `not implemented by the test peer: ${String(props.operation)}` }, undefined);
      return;
    }
    const body = (msg.body ?? {}) as Record<string, unknown>;
    const tokens = (body['lock-tokens'] ?? []) as unknown[];
    const expirations: Date[] = [];
    for (const t of Array.isArray(tokens) ? tokens : [tokens]) {
      const l = this.locked.get(tokenKey(t));
      if (!l) {
        this.reply(conn, msg, address, { statusCode: 410, statusDescription: 'lock lost', errorCondition: 'com.microsoft:message-lock-lost' }, undefined);
        return;
      }
      l.lockedUntil = Date.now() + this.lockDurationMs;
      expirations.push(new Date(l.lockedUntil));
    }
    this.stats.renewLocks++;
    this.reply(conn, msg, address, { statusCode: 200, statusDescription: 'OK' }, { expirations });
  }

  /**
   * Browsing without locking: the entity's messages (locked ones too) from the sequence number asked, in sequence
   * order, with their delivery count as it stands (a peek does not count as a delivery).
   */
  private peek(conn: Connection, msg: Message, address: string): void {
    this.stats.peeks++;
    const entity = address.slice(0, -'/$management'.length);
    const body = (msg.body ?? {}) as Record<string, unknown>;
    const from = Number(body['from-sequence-number'] ?? 0);
    const count = Number(body['message-count'] ?? 1);
    const all = [...this.waiting(entity), ...[...this.locked.values()].filter((l) => l.address === entity).map((l) => l.entry)];
    const found = all.filter((e) => e.seq >= from).sort((a, b) => a.seq - b.seq).slice(0, count);
    if (found.length === 0) {
      this.reply(conn, msg, address, { statusCode: 204, statusDescription: 'No messages' }, undefined);
      return;
    }
    const messages = found.map((e) => ({ message: rhea.message.encode({ ...this.annotated(e), delivery_count: e.deliveries }) }));
    this.reply(conn, msg, address, { statusCode: 200, statusDescription: 'OK' }, { messages });
  }

  /** The message as Service Bus hands it out: with its sequence number and enqueue time. */
  private annotated(entry: PeerMessage, extra: Record<string, unknown> = {}): Message {
    return {
      ...entry.message,
      message_annotations: {
        ...(entry.message.message_annotations ?? {}),
        'x-opt-sequence-number': entry.seq,
        'x-opt-enqueued-time': entry.enqueuedAt,
        ...extra,
      },
    };
  }

  /** To the client's link whose target is reply_to, else to its link reading from the address asked. */
  private reply(conn: Connection, req: Message, address: string, props: Record<string, unknown>, body: unknown): void {
    const replyTo = String(req.reply_to ?? '');
    const s = conn.find_sender((l: Sender) => replyTo !== '' && addressOf(remoteAttach(l).target) === replyTo)
      ?? conn.find_sender((l: Sender) => addressOf(l.source) === address);
    s?.send({ correlation_id: req.message_id, application_properties: props, body } as Message);
  }

  /**
   * Credit left on a consumer link. rhea takes credit only when it writes a transfer (a tick later), so deliveries
   * handed over but not yet written are counted here: otherwise one pump would send far past the client's credit.
   */
  private budget(s: Sender): number {
    const link = s as unknown as { delivery_count: number; credit: number };
    const unwritten = (this.handed.get(s) ?? 0) - link.delivery_count;
    return s.sendable() ? link.credit - unwritten : 0;
  }

  /** Hands waiting messages to consumers with credit, locking each (receive-and-delete: removing it). */
  private pump(address: string): void {
    const senders = this.consumers.get(address);
    if (!senders) return;
    const waiting = this.waiting(address);
    for (const s of senders) {
      const presettled = (s as unknown as { local: { attach: { snd_settle_mode: number } } }).local.attach.snd_settle_mode === 1;
      while (waiting.length > 0 && this.budget(s) > 0) {
        const entry = waiting.shift()!;
        const priorDeliveries = entry.deliveries;
        entry.deliveries++;
        const lockedUntil = Date.now() + this.lockDurationMs;
        const tag = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
        // AMQP's header counts earlier delivery attempts, as Service Bus sends it.
        const out: Message = { ...this.annotated(entry, presettled ? {} : { 'x-opt-locked-until': new Date(lockedUntil) }), delivery_count: priorDeliveries };
        const delivery = s.send(out, tag);
        this.handed.set(s, (this.handed.get(s) ?? 0) + 1);
        if (!presettled) this.locked.set(lockKey(tag), { entry, address, lockedUntil, delivery });
      }
    }
  }

  private settle(ctx: EventContext, how: 'complete' | 'abandon' | 'release' | 'deadletter'): void {
    const d = ctx.delivery;
    if (!d) return;
    const key = lockKey(Buffer.from(d.tag as Buffer));
    const l = this.locked.get(key);
    // Settle with the outcome the client chose, as a broker confirms it; a dead-lettering without its error, which
    // the SDK would take for a refusal.
    const state = (d as unknown as { remote_state?: { described?: () => unknown; error?: { info?: Record<string, unknown> } } }).remote_state;
    const confirmed = how === 'deadletter' ? (rhea.message as unknown as { rejected(f: object): { described(): unknown } }).rejected({}).described() : state?.described?.();
    d.update(true, confirmed);
    if (!l) return;
    this.locked.delete(key);
    if (how === 'complete') {
      this.stats.completes++;
    } else if (how === 'deadletter') {
      // Service Bus keeps the dead-letter info (DeadLetterReason, DeadLetterErrorDescription, properties to modify)
      // as application properties of the dead letter.
      const info = state?.error?.info ?? {};
      this.stats.deadLetterings.push(info);
      if (entityOf(l.address).deadLetter) {
        this.putBack(l);
        return;
      }
      this.deadLetter(l, info);
    } else {
      if (how === 'abandon') this.stats.abandons++;
      if (how === 'release') l.entry.deliveries--;
      this.putBack(l);
    }
  }

  private deadLetter(l: Locked, info: Record<string, unknown>): void {
    const m = l.entry.message;
    const props: Record<string, unknown> = { ...(m.application_properties ?? {}) };
    for (const [k, v] of Object.entries(info)) if (v !== undefined && v !== null) props[k] = v;
    l.entry.message = { ...m, application_properties: props };
    this.queue(entityOf(l.address).queue).deadLetters.push(l.entry);
  }

  /**
   * Back in sequence order; a message of the queue goes to the dead-letter subqueue instead once maxDeliveryCount
   * deliveries failed, with the reason Service Bus gives. One of the subqueue stays there.
   */
  private putBack(l: Locked): void {
    const { deadLetter } = entityOf(l.address);
    if (!deadLetter && l.entry.deliveries >= this.maxDeliveryCount) {
      this.deadLetter(l, {
        DeadLetterReason: 'MaxDeliveryCountExceeded',
        DeadLetterErrorDescription: `Message could not be consumed after ${this.maxDeliveryCount} delivery attempts.`,
      });
      return;
    }
    const waiting = this.waiting(l.address);
    const at = waiting.findIndex((m) => m.seq > l.entry.seq);
    if (at < 0) waiting.push(l.entry);
    else waiting.splice(at, 0, l.entry);
    this.pump(l.address);
  }

  private expireLocks(): void {
    const now = Date.now();
    for (const [key, l] of this.locked) {
      if (l.lockedUntil < now) {
        this.locked.delete(key);
        this.stats.lockExpiries++;
        this.putBack(l);
      }
    }
  }

  private dropConnection(conn: Connection): void {
    for (const [key, l] of this.locked) {
      if (l.delivery.link.connection === conn) {
        this.locked.delete(key);
        this.putBack(l);
      }
    }
    for (const set of this.consumers.values()) {
      for (const s of set) if (s.connection === conn) set.delete(s);
    }
  }
}

/** rhea keeps the peer's attach frame on the link; its typings do not declare it. */
/**
 * A batch (sendMessages with a batch: message format 0x80013700) arrives undecoded: an envelope whose data sections
 * each hold one encoded message. Service Bus stores them one by one.
 */
function unbatched(msg: Message): Message[] {
  if (!Buffer.isBuffer(msg)) return [msg];
  const body = (rhea.message.decode(msg) as unknown as Message).body as { content?: unknown; multiple?: boolean } | undefined;
  const parts = body?.multiple ? (body.content as Buffer[]) : [body?.content as Buffer];
  return parts.map((p) => rhea.message.decode(p) as unknown as Message);
}

interface RemoteAttach {
  source?: Record<string, unknown>;
  target?: Record<string, unknown>;
  snd_settle_mode?: number;
}

function remoteAttach(link: unknown): RemoteAttach {
  return (link as { remote?: { attach?: RemoteAttach } }).remote?.attach ?? {};
}

function addressOf(t: unknown): string {
  if (t && typeof t === 'object' && 'address' in t) return String((t as { address?: unknown }).address ?? '');
  return '';
}

/**
 * The SDK reads a delivery tag as a .NET GUID (first three groups little-endian) to make the lock token, and sends
 * that token back in renew-lock: locks are filed under the tag in that byte order.
 */
function lockKey(tag: Buffer): string {
  const b = Buffer.from(tag);
  const out = Buffer.concat([b.subarray(0, 4).reverse(), b.subarray(4, 6).reverse(), b.subarray(6, 8).reverse(), b.subarray(8)]);
  return out.toString('hex');
}

/** A lock token as the SDK sends it (an AMQP uuid, decoded as 16 bytes) → the key the peer filed it under. */
function tokenKey(t: unknown): string {
  if (Buffer.isBuffer(t)) return t.toString('hex');
  if (t && typeof t === 'object' && 'value' in t) return tokenKey((t as { value: unknown }).value);
  if (typeof t === 'string') return t.replace(/-/g, '').toLowerCase();
  return '';
}
