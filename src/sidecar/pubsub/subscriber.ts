/**
 * The sidecar's subscriptions: once the app's port is open it asks `GET /dapr/subscribe` (only when a pub/sub
 * component is loaded, as daprd), merges the answer with the declarative Subscriptions, and runs one subscription per
 * (pubsub, topic) until the sidecar stops, then drains: no new events, in-flight ones finish and are settled.
 *
 * A failed event goes to the subscription's deadLetterTopic at once when it has one (daprd publishes it there and acks
 * it; only if that publish fails does the broker redeliver), else back to the broker, which redelivers it with its
 * own back-off and dead-letters it past its own maximum. A receiver whose broker went away is restarted with backoff;
 * the outage is printed once, again when its cause changes, and once when events flow again.
 */
import { randomUUID } from 'node:crypto';
import { failed, type HandlerResult, type MessageMetadata, type QueueMessage } from '../../backends/types.js';
import type { DaprMetrics } from '../../metrics/dapr.js';
import { topicAllowed } from '../../pubsub/scopes.js';
import {
  mergeSubscriptions, parseProgrammatic, rawPayloadOf, chooseRoute, type Subscription,
} from '../../pubsub/subscriptions.js';
import { CLOUDEVENT_CONTENT_TYPE, DEFAULT_BULK_EVENT_TYPE, hasExpired, readStoredEvent } from '../../pubsub/cloudevents.js';
import { decodeFirst, marshal } from '../../pubsub/go-decode.js';
import { sleep } from '../../util/abort.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../../util/timeout.js';
import { metadataHeaders, type AppChannel } from '../app-channel.js';
import { appPath } from '../bindings.js';
import { LatencyRing } from '../latency.js';
import { Outage, describeCause, type OutageState } from '../outage.js';
import { ANSWER_BYTES, postEvent, prepareEvent, route, type Verdict } from './delivery.js';
import type { LoadedPubSub } from './load.js';

export type SubscriptionState = 'waiting-for-app' | 'receiving' | 'restarting' | 'not-allowed' | 'stopped';

/** Per-subscription figures (GET /v1.0/metadata, qscale.subscriptions). */
export interface SubscriptionStats {
  pubsubname: string;
  topic: string;
  type: Subscription['type'];
  deadLetterTopic: string;
  state: SubscriptionState;
  inFlight: number;
  delivered: number;
  succeeded: number;
  retried: number;
  dropped: number;
  deadLettered: number;
  lastError?: string;
  latency: LatencyRing;
  outage?: OutageState;
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_AFTER_MS = 2000;
const FAILURE_LOG_EVERY_MS = 5000;
/** daprd's default bulk subscribe batch: 100 events or 1 s. */
const BULK_MAX_MESSAGES = 100;
const BULK_MAX_AWAIT_MS = 1000;
/** GET /dapr/subscribe: a few tries while the app starts answering (daprd's built-in initialisation retries). */
const SUBSCRIBE_TRIES = 5;

export interface SubscriberOptions {
  appId: string;
  pubsubs: ReadonlyMap<string, LoadedPubSub>;
  declarative: readonly Subscription[];
  channel: AppChannel | undefined;
  logger: Logger;
  appMaxConcurrency: number | undefined;
  metrics?: DaprMetrics | undefined;
  publishTimeoutMs(ps: LoadedPubSub): number;
}

export class PubSubSubscriber {
  private current: Subscription[];
  private readonly runners: SubscriptionRunner[] = [];

  constructor(private readonly o: SubscriberOptions) {
    this.current = mergeSubscriptions(o.declarative, []);
  }

  /** The subscriptions as daprd lists them: declarative until the app answered, then merged with the app's. */
  subscriptions(): readonly Subscription[] {
    return this.current;
  }

  stats(): SubscriptionStats[] {
    return this.runners.map((r) => ({ ...r.stats }));
  }

  get inFlight(): number {
    return this.runners.reduce((n, r) => n + r.stats.inFlight, 0);
  }

  /** The first subscription whose broker cannot deliver, for health. */
  outage(): SubscriptionStats | undefined {
    return this.runners.find((r) => r.stats.outage !== undefined)?.stats;
  }

  /** Resolves after the signal aborted and every started delivery settled. */
  async run(signal: AbortSignal): Promise<void> {
    const { channel, logger } = this.o;
    if (this.o.pubsubs.size === 0) return;
    if (!channel) {
      if (this.current.length > 0) logger.warn('no --app-port: pub/sub subscriptions are not delivered (daprd: app channel not initialized)');
      return;
    }
    if (!(await channel.waitUntilReachable(signal))) return;
    const programmatic = await this.fetchProgrammatic(channel, signal);
    if (programmatic === undefined) return;
    this.current = mergeSubscriptions(this.o.declarative, programmatic);
    for (const sub of this.current) {
      const ps = this.o.pubsubs.get(sub.pubsubName);
      if (!ps) {
        logger.warn(`${sub.source}: subscription to topic ${sub.topic} names pubsub '${sub.pubsubName}', which is not a loaded component (${[...this.o.pubsubs.keys()].join(', ')}): daprd ignores it, and so does qscale`);
        continue;
      }
      this.runners.push(new SubscriptionRunner(sub, ps, channel, this.o));
    }
    await Promise.all(this.runners.map((r) => r.run(signal)));
  }

  /** The app's own subscriptions; undefined when its answer cannot be read (daprd then starts no subscription). */
  private async fetchProgrammatic(channel: AppChannel, signal: AbortSignal): Promise<Subscription[] | undefined> {
    const { logger, appId } = this.o;
    let answer: { statusCode: number; body: Buffer } | undefined;
    for (let i = 0; i < SUBSCRIBE_TRIES && !signal.aborted; i++) {
      try {
        answer = await channel.exchange({
          method: 'GET', path: '/dapr/subscribe', headers: { 'dapr-app-id': appId, 'content-type': 'application/json' },
          keepBytes: 16 * 1024 * 1024, timeoutMs: 30_000, limited: false,
        });
        break;
      } catch (err) {
        if (i === SUBSCRIBE_TRIES - 1) {
          logger.error(`GET /dapr/subscribe failed: ${(err as Error).message}; the app's programmatic subscriptions are not started`);
          return [];
        }
        await sleep(500 * 2 ** i, signal);
      }
    }
    if (!answer) return [];
    if (answer.statusCode === 404) {
      logger.debug('user app did not subscribe to any topic (GET /dapr/subscribe answered 404)');
      return [];
    }
    if (answer.statusCode !== 200) {
      logger.error(`app returned http status code ${answer.statusCode} from subscription endpoint (GET /dapr/subscribe): no programmatic subscription`);
      return [];
    }
    const parsed = parseProgrammatic(answer.body);
    if (typeof parsed === 'string') {
      logger.error(`${parsed}; as daprd, no subscription of this app is started: fix the answer of GET /dapr/subscribe and restart`);
      return undefined;
    }
    for (const w of parsed.warnings) logger.warn(w);
    const byPubsub = new Map<string, string[]>();
    for (const s of parsed.subscriptions) byPubsub.set(s.pubsubName, [...(byPubsub.get(s.pubsubName) ?? []), s.topic]);
    for (const [name, topics] of byPubsub) logger.info(`app is subscribed to the following topics: [${topics.join(' ')}] through pubsub=${name}`);
    return parsed.subscriptions;
  }
}

interface Pending {
  msg: QueueMessage;
  resolve(r: HandlerResult): void;
}

class SubscriptionRunner {
  readonly stats: SubscriptionStats;
  private readonly outage: Outage;
  private lastFailureLog = 0;
  private unlogged = 0;
  private readonly subject: string;
  private batch: Pending[] = [];
  private batchTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sub: Subscription,
    private readonly ps: LoadedPubSub,
    private readonly channel: AppChannel,
    private readonly o: SubscriberOptions,
  ) {
    this.stats = {
      pubsubname: sub.pubsubName, topic: sub.topic, type: sub.type, deadLetterTopic: sub.deadLetterTopic, state: 'waiting-for-app',
      inFlight: 0, delivered: 0, succeeded: 0, retried: 0, dropped: 0, deadLettered: 0, latency: new LatencyRing(),
    };
    this.subject = `subscription to topic ${sub.topic} on pubsub ${sub.pubsubName} (${ps.component.type})`;
    this.outage = new Outage({
      failing: (cause) => `${this.subject}: cannot receive: ${cause}; retrying until the broker answers, events wait in the broker meanwhile`,
      changed: (cause) => `${this.subject}: still cannot receive, now: ${cause}`,
      recovered: (s) => `${this.subject}: receiving again after ${s} s`,
    }, (level, line) => o.logger[level](line));
  }

  async run(signal: AbortSignal): Promise<void> {
    const { sub, ps, o } = this;
    if (!topicAllowed(sub.topic, ps.scopes, ps.scopes.subscribing)) {
      this.stats.state = 'not-allowed';
      o.logger.error(`${sub.source}: subscription to topic '${sub.topic}' on pubsub '${sub.pubsubName}' is not allowed (the component's allowedTopics, protectedTopics or subscriptionScopes): not subscribing`);
      return;
    }
    const bulk = sub.bulkSubscribe.enabled;
    const max = bulk ? (sub.bulkSubscribe.maxMessagesCount > 0 ? sub.bulkSubscribe.maxMessagesCount : BULK_MAX_MESSAGES) : (o.appMaxConcurrency ?? Infinity);
    o.logger.info(`subscribing to topic ${sub.topic} on pubsub ${sub.pubsubName} → POST ${sub.rules.map((r) => appPath(r.path)).join(' | ') || '(no route: events are dropped)'}${bulk ? ` (bulk, up to ${max} events a call)` : ''}`);
    const handler = (m: QueueMessage): Promise<HandlerResult> => (bulk ? this.enqueueBulk(m, max) : this.handle(m));
    let backoff = FIRST_BACKOFF_MS;
    while (!signal.aborted) {
      if (!this.outage.state) this.stats.state = 'receiving';
      const stable = setTimeout(() => this.working(), STABLE_AFTER_MS);
      stable.unref();
      try {
        await ps.pubsub.subscribe({ topic: sub.topic, metadata: sub.metadata }, handler, {
          concurrency: max,
          signal,
          onBrokerState: (err) => {
            clearTimeout(stable);
            if (err === undefined) this.working();
            else this.failedReceiving(describeCause(err, ps.component));
          },
        });
        if (!signal.aborted) o.logger.warn(`${this.subject}: stopped receiving (the component closed)`);
        break;
      } catch (err) {
        if (signal.aborted) break;
        this.failedReceiving(describeCause(err, ps.component));
      } finally {
        clearTimeout(stable);
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
    this.flushBulk();
    this.stats.state = 'stopped';
  }

  private failedReceiving(cause: string): void {
    this.stats.state = 'restarting';
    this.stats.lastError = cause;
    this.outage.failed(cause);
    this.stats.outage = this.outage.state;
  }

  private working(): void {
    if (!this.outage.state) return;
    this.outage.succeeded();
    this.stats.outage = undefined;
    this.stats.state = 'receiving';
  }

  /** One event: what the app (or the checks before it) said, then the ack, the dead-letter topic or a retry. */
  private async handle(msg: QueueMessage): Promise<HandlerResult> {
    this.working();
    const s = this.stats;
    s.inFlight++;
    s.delivered++;
    try {
      const metadata: MessageMetadata = { ...msg.metadata, pubsubName: this.sub.pubsubName };
      const started = performance.now();
      const prepared = prepareEvent(this.sub, msg.data, metadata);
      let verdict: Verdict;
      let called = false;
      if ('error' in prepared) verdict = { kind: 'retry', why: prepared.error };
      else {
        const r = route(this.sub, prepared);
        if ('path' in r) {
          verdict = await postEvent(this.channel, r.path, prepared, metadata, this.sub.topic);
          called = true;
        } else verdict = r;
      }
      const ms = called ? performance.now() - started : 0;
      return await this.settle(msg, metadata, verdict, called, ms);
    } finally {
      s.inFlight--;
    }
  }

  private ingress(process: 'success' | 'retry' | 'drop', status: string, ms: number): void {
    this.o.metrics?.pubsubIngress(this.sub.pubsubName, process, status, this.sub.topic, ms);
  }

  private async settle(msg: QueueMessage, metadata: MessageMetadata, v: Verdict, called: boolean, ms: number): Promise<HandlerResult> {
    const s = this.stats;
    if (v.kind === 'success') {
      this.ingress('success', '', ms);
      s.succeeded++;
      s.latency.acked(msg.enqueuedAt);
      return true;
    }
    if (v.kind === 'drop') {
      // An app's DROP is daprd's drop with status success; a 404, an expired event: drop.
      const appDrop = v.why.startsWith('DROP status') || v.why.startsWith('no matching route');
      this.ingress('drop', appDrop ? 'success' : '', ms);
      if (v.level === 'debug') this.o.logger.debug(v.why);
      else this.o.logger[v.level](`${this.subject}: ${v.why}`);
      s.dropped++;
      if (this.sub.deadLetterTopic !== '') {
        let sent = await this.toDeadLetter(msg, metadata);
        if (!sent && v.deadLetter === 'must') sent = await this.toDeadLetter(msg, metadata);
        if (!sent && v.deadLetter === 'must') return this.retry(msg, `${v.why}; and the dead-letter topic ${this.sub.deadLetterTopic} did not take it`);
      }
      return true;
    }
    if (called) this.ingress('retry', '', ms);
    if (this.sub.deadLetterTopic !== '' && (await this.toDeadLetter(msg, metadata))) {
      this.ingress('drop', '', 0);
      this.noteFailure(`${v.why}; sent to the dead-letter topic ${this.sub.deadLetterTopic}`, msg, false);
      return true;
    }
    this.ingress('retry', '', 0);
    return this.retry(msg, v.why);
  }

  private retry(msg: QueueMessage, why: string): HandlerResult {
    this.stats.retried++;
    this.stats.lastError = why;
    this.noteFailure(why, msg, true);
    return failed(why);
  }

  /** daprd's sendToDeadLetter: the message as received (bytes and metadata) published to the dead-letter topic. */
  private async toDeadLetter(msg: QueueMessage, metadata: MessageMetadata): Promise<boolean> {
    const { ps, sub } = this;
    const topic = sub.deadLetterTopic;
    try {
      if (!topicAllowed(topic, ps.scopes, ps.scopes.publishing)) throw new Error(`topic ${topic} is not allowed for app id ${this.o.appId}`);
      const ms = this.o.publishTimeoutMs(ps);
      await withTimeout(ps.pubsub.publish(topic, msg.data, metadata), ms, `no answer from the broker within ${ms} ms`);
      this.stats.deadLettered++;
      return true;
    } catch (err) {
      this.o.logger.error(`error sending message to dead letter, origin topic: ${sub.topic} dead letter topic ${topic} err: ${describeCause(err, ps.component)}`);
      return false;
    }
  }

  /** A failing app must not flood the log: one line, then a summary at most every few seconds. */
  private noteFailure(why: string, msg: QueueMessage, retried: boolean): void {
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) {
      this.unlogged++;
      return;
    }
    const more = this.unlogged > 0 ? ` (and ${this.unlogged} more failed deliveries since the last report)` : '';
    const then = retried ? 'not acked: the broker delivers it again' : 'acked';
    this.o.logger.warn(`${this.subject}: event ${msg.id} (attempt ${msg.deliveryCount}): ${why}; ${then}${more}`);
    this.lastFailureLog = now;
    this.unlogged = 0;
  }

  // Bulk subscribe: events wait for a batch (maxMessagesCount, or maxAwaitDurationMs after the first), as daprd's
  // default bulk subscriber collects them; each handler call resolves with its own entry's outcome.

  private enqueueBulk(msg: QueueMessage, max: number): Promise<HandlerResult> {
    this.working();
    this.stats.inFlight++;
    this.stats.delivered++;
    return new Promise<HandlerResult>((resolve) => {
      this.batch.push({ msg, resolve: (r) => {
        this.stats.inFlight--;
        resolve(r);
      } });
      if (this.batch.length >= max) this.flushBulk();
      else {
        const wait = this.sub.bulkSubscribe.maxAwaitDurationMs > 0 ? this.sub.bulkSubscribe.maxAwaitDurationMs : BULK_MAX_AWAIT_MS;
        this.batchTimer ??= setTimeout(() => this.flushBulk(), wait);
      }
    });
  }

  private flushBulk(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    void this.deliverBulk(batch).catch((err: unknown) => {
      for (const p of batch) p.resolve(failed(`bulk delivery failed: ${(err as Error).message}`));
    });
  }

  private async deliverBulk(batch: Pending[]): Promise<void> {
    const { sub } = this;
    const results = new Map<Pending, HandlerResult>();
    const counts = { success: 0, retry: 0, drop: 0 };
    const ok = (p: Pending, status: 'success' | 'drop'): void => {
      results.set(p, true);
      counts[status]++;
      if (status === 'success') {
        this.stats.succeeded++;
        this.stats.latency.acked(p.msg.enqueuedAt);
      } else this.stats.dropped++;
    };
    const bad = (p: Pending, why: string): void => {
      results.set(p, failed(why));
      counts.retry++;
    };
    const envelopeMeta: MessageMetadata = { pubsubName: sub.pubsubName };
    const raw = rawPayloadOf(sub.metadata);
    const byPath = new Map<string, Array<{ p: Pending; entryId: string; event: string; contentType: string }>>();
    const ids = new Map<string, Pending>();
    for (const p of batch) {
      const entryId = randomUUID();
      ids.set(entryId, p);
      if (typeof raw === 'object') {
        bad(p, `error deserializing pubsub metadata: ${raw.error}`);
        continue;
      }
      let event: unknown;
      let matchOn: Record<string, unknown> | string;
      if (raw) {
        event = p.msg.data.toString('base64');
        matchOn = p.msg.data.toString('utf8');
      } else {
        const read = readStoredEvent(p.msg.data, p.msg.metadata);
        if (!read.ok) {
          bad(p, `error deserializing one of the messages in bulk cloud event in pubsub ${sub.pubsubName} and topic ${sub.topic}: ${read.reason}`);
          continue;
        }
        if (hasExpired(read.event)) {
          this.o.logger.warn(`${this.subject}: dropping expired pub/sub event ${String(read.event.id)} as of ${String(read.event.expiration)}`);
          if (sub.deadLetterTopic !== '') await this.toDeadLetter(p.msg, { ...p.msg.metadata, pubsubName: sub.pubsubName });
          ok(p, 'drop');
          continue;
        }
        event = read.event;
        matchOn = read.event;
      }
      const choice = chooseRoute(sub.rules, matchOn);
      if (choice.kind === 'error') {
        bad(p, choice.reason);
        continue;
      }
      if (choice.kind === 'none') {
        this.o.logger.warn(`${this.subject}: no matching route for event in pubsub ${sub.pubsubName} and topic ${sub.topic}; skipping`);
        if (sub.deadLetterTopic !== '') await this.toDeadLetter(p.msg, { ...p.msg.metadata, pubsubName: sub.pubsubName });
        ok(p, 'drop');
        continue;
      }
      const list = byPath.get(choice.path) ?? [];
      list.push({ p, entryId, event: marshal(event), contentType: raw ? 'application/octet-stream' : CLOUDEVENT_CONTENT_TYPE });
      byPath.set(choice.path, list);
    }
    let elapsed = 0;
    for (const [path, entries] of byPath) {
      const body = `{"entries":[${entries.map((e) => `{"entryId":${marshal(e.entryId)},"event":${e.event},"metadata":${marshal(e.p.msg.metadata)},"contentType":${marshal(e.contentType)}}`).join(',')}],"id":${marshal(randomUUID())},"metadata":${marshal(envelopeMeta)},"pubsubname":${marshal(sub.pubsubName)},"topic":${marshal(sub.topic)},"type":${marshal(DEFAULT_BULK_EVENT_TYPE)}}`;
      const headers = metadataHeaders(envelopeMeta);
      const started = performance.now();
      let answer: { statusCode: number; body: Buffer } | string;
      if (typeof headers === 'string') answer = headers;
      else {
        headers['content-type'] = 'application/json';
        try {
          answer = await this.channel.exchange({ method: 'POST', path: appPath(path), headers, body: Buffer.from(body), keepBytes: ANSWER_BYTES, limited: true });
        } catch (err) {
          answer = `error from app channel while sending pub/sub event to app: ${(err as Error).message}`;
        }
      }
      elapsed = performance.now() - started;
      if (typeof answer === 'string') {
        for (const e of entries) bad(e.p, answer);
      } else if (answer.statusCode >= 200 && answer.statusCode <= 299) {
        const statuses = bulkStatuses(answer.body);
        if (typeof statuses === 'string') for (const e of entries) bad(e.p, `failed unmarshalling app response for bulk subscribe: ${statuses}`);
        else {
          for (const e of entries) {
            const st = statuses.get(e.entryId);
            if (st === 'SUCCESS') ok(e.p, 'success');
            else if (st === 'DROP') {
              this.o.logger.warn(`${this.subject}: DROP status returned from app while processing pub/sub event ${e.entryId}`);
              if (sub.deadLetterTopic !== '') await this.toDeadLetter(e.p.msg, { ...e.p.msg.metadata, pubsubName: sub.pubsubName });
              ok(e.p, 'drop');
            } else if (st === undefined) bad(e.p, `response not received, RETRY required while processing bulk subscribe event for entry id: ${e.entryId}`);
            else if (st === '' || st === 'RETRY') bad(e.p, `RETRY required while processing bulk subscribe event for entry id: ${e.entryId}`);
            else bad(e.p, `unknown status returned from app while processing bulk subscribe event ${e.entryId}: ${st}`);
          }
        }
      } else if (answer.statusCode === 404) {
        this.o.logger.error(`${this.subject}: Non-retriable error returned from app while processing bulk pub/sub event. status code returned: 404`);
        for (const e of entries) ok(e.p, 'drop');
      } else {
        for (const e of entries) bad(e.p, `Retriable error returned from app while processing bulk pub/sub event, topic: ${sub.topic}. status code returned: ${answer.statusCode}`);
      }
    }
    // Failed entries go to the dead-letter topic together when there is one; acked if it took them all.
    const failedOnes = batch.filter((p) => results.get(p) !== true);
    if (failedOnes.length > 0 && sub.deadLetterTopic !== '') {
      const sent = await Promise.all(failedOnes.map((p) => this.toDeadLetter(p.msg, { ...p.msg.metadata, pubsubName: sub.pubsubName })));
      if (sent.every(Boolean)) for (const p of failedOnes) results.set(p, true);
    }
    for (const p of batch) {
      const r = results.get(p) ?? failed('not delivered');
      if (r !== true) {
        this.stats.retried++;
        this.stats.lastError = typeof r === 'object' ? r.reason : 'not delivered';
        this.noteFailure(this.stats.lastError, p.msg, true);
      }
      p.resolve(r);
    }
    this.o.metrics?.pubsubBulkIngress(sub.pubsubName, sub.topic, elapsed, counts);
  }
}

/** The `statuses` of a bulk answer by entry id, or why it cannot be read. */
function bulkStatuses(body: Buffer): Map<string, string> | string {
  const d = decodeFirst(body.toString('utf8'));
  if (!d.ok) return d.reason;
  const out = new Map<string, string>();
  const v = d.value as { statuses?: unknown } | null;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'json: cannot unmarshal into Go value of type pubsub.AppBulkResponse';
  const list = v.statuses;
  if (!Array.isArray(list)) return out;
  for (const s of list) {
    if (s === null || typeof s !== 'object') continue;
    const e = s as { entryId?: unknown; status?: unknown };
    if (typeof e.entryId === 'string') out.set(e.entryId, typeof e.status === 'string' ? e.status : '');
  }
  return out;
}
