/**
 * A test peer speaking AMQP 1.0 — not Service Bus. Azure cannot be reached from this machine, so the real
 * @azure/service-bus SDK is pointed at this peer (a connection string with UseDevelopmentEmulator=true makes the SDK
 * use plain AMQP to the endpoint's port). It does the part of Service Bus's AMQP surface the binding uses:
 * SASL ANONYMOUS, $cbs put-token, send and peek-lock receive links on a queue, settlement (accepted = complete,
 * modified = abandon, rejected = dead-letter, released), lock expiry, delivery counts with dead-lettering at
 * maxDeliveryCount, and renew-lock on <queue>/$management; with `tls`, it listens over TLS as a namespace does (for
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
  queue: string;
  lockedUntil: number;
  delivery: Delivery;
}

class PeerQueue {
  ready: PeerMessage[] = [];
  deadLetters: PeerMessage[] = [];
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
}

export class AmqpTestPeer {
  readonly stats: PeerStats = { putTokens: [], cbs: [], completes: 0, abandons: 0, renewLocks: 0, lockExpiries: 0 };
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

  /** Active messages (ready + locked), as Service Bus counts ActiveMessageCount. */
  counts(name: string): { active: number; deadLetter: number; locked: number } {
    const q = this.queue(name);
    const locked = [...this.locked.values()].filter((l) => l.queue === name).length;
    return { active: q.ready.length + locked, deadLetter: q.deadLetters.length, locked };
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
      if (!address.startsWith('$') && !address.includes('/$')) {
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
    const entry: PeerMessage = { seq: ++this.seq, message: msg, enqueuedAt: new Date(), deliveries: 0 };
    this.queue(target).ready.push(entry);
    this.pump(target);
  }

  private management(conn: Connection, msg: Message, address: string): void {
    const props = (msg.application_properties ?? {}) as Record<string, unknown>;
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

  /** Hands ready messages to consumers with credit, locking each. */
  private pump(queue: string): void {
    const senders = this.consumers.get(queue);
    if (!senders) return;
    const q = this.queue(queue);
    for (const s of senders) {
      while (q.ready.length > 0 && this.budget(s) > 0) {
        const entry = q.ready.shift()!;
        const priorDeliveries = entry.deliveries;
        entry.deliveries++;
        const lockedUntil = Date.now() + this.lockDurationMs;
        const tag = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
        const out: Message = {
          ...entry.message,
          // AMQP's header counts earlier delivery attempts, as Service Bus sends it.
          delivery_count: priorDeliveries,
          message_annotations: {
            ...(entry.message.message_annotations ?? {}),
            'x-opt-sequence-number': entry.seq,
            'x-opt-enqueued-time': entry.enqueuedAt,
            'x-opt-locked-until': new Date(lockedUntil),
          },
        };
        const delivery = s.send(out, tag);
        this.handed.set(s, (this.handed.get(s) ?? 0) + 1);
        this.locked.set(lockKey(tag), { entry, queue, lockedUntil, delivery });
      }
    }
  }

  private settle(ctx: EventContext, how: 'complete' | 'abandon' | 'release' | 'deadletter'): void {
    const d = ctx.delivery;
    if (!d) return;
    const key = lockKey(Buffer.from(d.tag as Buffer));
    const l = this.locked.get(key);
    // Settle with the outcome the client chose, as a broker confirms it.
    const state = (d as unknown as { remote_state?: { described?: () => unknown } }).remote_state;
    d.update(true, state?.described?.());
    if (!l) return;
    this.locked.delete(key);
    if (how === 'complete') {
      this.stats.completes++;
    } else if (how === 'deadletter') {
      this.queue(l.queue).deadLetters.push(l.entry);
    } else {
      if (how === 'abandon') this.stats.abandons++;
      if (how === 'release') l.entry.deliveries--;
      this.putBack(l);
    }
  }

  /** Back in sequence order, or to the dead-letter subqueue once maxDeliveryCount deliveries failed. */
  private putBack(l: Locked): void {
    const q = this.queue(l.queue);
    if (l.entry.deliveries >= this.maxDeliveryCount) {
      q.deadLetters.push(l.entry);
      return;
    }
    const at = q.ready.findIndex((m) => m.seq > l.entry.seq);
    if (at < 0) q.ready.push(l.entry);
    else q.ready.splice(at, 0, l.entry);
    this.pump(l.queue);
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
function remoteAttach(link: unknown): { source?: Record<string, unknown>; target?: Record<string, unknown> } {
  return (link as { remote?: { attach?: { source?: Record<string, unknown>; target?: Record<string, unknown> } } }).remote?.attach ?? {};
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
