/**
 * Subscriptions as daprd holds them (dapr/dapr pkg/runtime/pubsub/subscriptions.go, pkg/runtime/compstore): where
 * events of a (pubsub, topic) go in the app. Programmatic ones come from the app's `GET /dapr/subscribe`, declarative
 * ones from Subscription resources (src/components/subscriptions.ts); both become the same Subscription.
 *
 * Routing: `rules` are tried in order, each a CEL expression over `event` (the CloudEvent as a map); the first that
 * is true gives the path; `default` (or v1's `route`) is a last rule that always matches. An event no rule takes is
 * dropped (acked), as daprd does.
 */
import { createRequire } from 'node:module';
import type { Environment } from '@marcbachmann/cel-js';
import { decodeFirst, goTypeOf, isNumberLiteral, numberLiteral } from './go-decode.js';
import type { CloudEvent } from './cloudevents.js';

export type SubscriptionType = 'DECLARATIVE' | 'PROGRAMMATIC';

export interface RoutingRule {
  /** The CEL expression as written (trimmed); '' for the default route. */
  match: string;
  path: string;
  /** Evaluates the expression; undefined for a rule that always matches. */
  test?: (vars: Record<string, unknown>) => unknown;
}

export interface BulkSubscribeConfig {
  enabled: boolean;
  /** 0: daprd's default (100). */
  maxMessagesCount: number;
  /** 0: daprd's default (1000 ms). */
  maxAwaitDurationMs: number;
}

export interface Subscription {
  pubsubName: string;
  topic: string;
  metadata: Record<string, string>;
  rules: RoutingRule[];
  deadLetterTopic: string;
  bulkSubscribe: BulkSubscribeConfig;
  type: SubscriptionType;
  /** The Subscription resource's name (declarative only). */
  name?: string;
  /** Where it was declared: "file:line" of a resource, or "GET /dapr/subscribe". */
  source: string;
}

type CelModule = typeof import('@marcbachmann/cel-js');

/**
 * cel-js is an ES module: where Node can require one (20.19 and later) it is loaded with the first rule that has a
 * match, so a sidecar without CEL routing never loads it; an older Node loads it here, with this module.
 */
const celPreloaded: CelModule | undefined = (process.features as { require_module?: boolean }).require_module
  ? undefined
  : await import('@marcbachmann/cel-js');

let celEnv: Environment | undefined;
/** cel-go as daprd configures it: every identifier the expression uses is a variable of any type. */
function cel(): Environment {
  if (celEnv === undefined) {
    const { Environment: Env } = celPreloaded ?? (createRequire(import.meta.url)('@marcbachmann/cel-js') as CelModule);
    celEnv = new Env({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
  }
  return celEnv;
}

/** daprd's CreateRoutingRule: a blank match is a default rule; anything else must compile as CEL. */
export function compileRule(match: string, path: string): RoutingRule | { error: string } {
  const text = match.trim();
  if (text === '') return { match: '', path };
  const env = cel();
  let test: (vars: Record<string, unknown>) => unknown;
  try {
    test = env.parse(text) as unknown as (vars: Record<string, unknown>) => unknown;
    const checked = env.check(text);
    if (!checked.valid) return { error: `match '${text}' is not a valid CEL expression: ${firstLine(checked.error?.message)}` };
  } catch (err) {
    return { error: `match '${text}' is not a valid CEL expression: ${firstLine((err as Error).message)}` };
  }
  return { match: text, path, test };
}

function firstLine(s: string | undefined): string {
  return (s ?? 'unknown error').split('\n')[0]!.trim();
}

export type RouteChoice = { kind: 'path'; path: string } | { kind: 'none' } | { kind: 'error'; reason: string };

/** daprd's findMatchingRoute over `{event}`: the first rule whose expression is true (a non-boolean is an error). */
export function chooseRoute(rules: readonly RoutingRule[], event: CloudEvent | string): RouteChoice {
  for (const rule of rules) {
    if (!rule.test) return { kind: 'path', path: rule.path };
    let result: unknown;
    try {
      result = rule.test({ event });
    } catch (err) {
      return { kind: 'error', reason: `evaluating match '${rule.match}': ${firstLine((err as Error).message)}` };
    }
    if (typeof result !== 'boolean') return { kind: 'error', reason: `the result of match expression ${rule.match} was not a boolean` };
    if (result) return { kind: 'path', path: rule.path };
  }
  return { kind: 'none' };
}

export const NO_BULK: BulkSubscribeConfig = { enabled: false, maxMessagesCount: 0, maxAwaitDurationMs: 0 };

/** What GET /dapr/subscribe gave: the subscriptions daprd keeps, with a line for each one it leaves out. */
export interface ProgrammaticResult {
  subscriptions: Subscription[];
  warnings: string[];
}

type Obj = Record<string, unknown>;

/** Go matches a JSON name to a field exactly, else case-insensitively; a later member for the same field wins. */
function fields(o: Obj, names: readonly string[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(o)) {
    const exact = names.find((n) => n === k);
    const name = exact ?? names.find((n) => n.toLowerCase() === k.toLowerCase());
    if (name !== undefined) out.set(name, v);
  }
  return out;
}

class GoDecodeError extends Error {}

function typeError(v: unknown, field: string, goType: string): GoDecodeError {
  return new GoDecodeError(`json: cannot unmarshal ${goTypeOf(v)} into Go struct field ${field} of type ${goType}`);
}

function str(v: unknown, field: string): string {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'string' || isNumberLiteral(v)) throw typeError(v, field, 'string');
  return v;
}

function int32(v: unknown, field: string): number {
  if (v === null || v === undefined) return 0;
  const lit = numberLiteral(v);
  if (lit === '') throw typeError(v, field, 'int32');
  if (!/^-?\d+$/.test(lit)) throw new GoDecodeError(`json: cannot unmarshal number ${lit} into Go struct field ${field} of type int32`);
  const n = Number(lit);
  if (n > 2 ** 31 - 1 || n < -(2 ** 31)) throw new GoDecodeError(`json: cannot unmarshal number ${lit} into Go struct field ${field} of type int32`);
  return n;
}

function bool(v: unknown, field: string): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v !== 'boolean') throw typeError(v, field, 'bool');
  return v;
}

function obj(v: unknown, field: string, goType: string): Obj | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(v, field, goType);
  return v as Obj;
}

function stringMap(v: unknown, field: string): Record<string, string> {
  const o = obj(v, field, 'map[string]string');
  const out: Record<string, string> = {};
  if (!o) return out;
  for (const [k, val] of Object.entries(o)) out[k] = str(val, `${field}`);
  return out;
}

interface RawSubscription {
  pubsubname: string;
  topic: string;
  deadLetterTopic: string;
  metadata: Record<string, string>;
  route: string;
  rules: Array<{ match: string; path: string }>;
  default: string;
  bulk: BulkSubscribeConfig;
}

function readItem(v: unknown): RawSubscription {
  const empty: RawSubscription = { pubsubname: '', topic: '', deadLetterTopic: '', metadata: {}, route: '', rules: [], default: '', bulk: { ...NO_BULK } };
  const o = obj(v, 'SubscriptionJSON', 'pubsub.SubscriptionJSON');
  if (!o) return empty;
  const f = fields(o, ['pubsubname', 'topic', 'deadLetterTopic', 'metadata', 'route', 'routes', 'bulkSubscribe']);
  const out = empty;
  out.pubsubname = str(f.get('pubsubname'), 'SubscriptionJSON.pubsubname');
  out.topic = str(f.get('topic'), 'SubscriptionJSON.topic');
  out.deadLetterTopic = str(f.get('deadLetterTopic'), 'SubscriptionJSON.deadLetterTopic');
  out.metadata = stringMap(f.get('metadata'), 'SubscriptionJSON.metadata');
  out.route = str(f.get('route'), 'SubscriptionJSON.route');
  const routes = obj(f.get('routes'), 'SubscriptionJSON.routes', 'pubsub.RoutesJSON');
  if (routes) {
    const r = fields(routes, ['rules', 'default']);
    out.default = str(r.get('default'), 'SubscriptionJSON.routes.default');
    const rules = r.get('rules');
    if (rules !== null && rules !== undefined) {
      if (!Array.isArray(rules)) throw typeError(rules, 'SubscriptionJSON.routes.rules', '[]*pubsub.RuleJSON');
      for (const item of rules) {
        const ro = obj(item, 'SubscriptionJSON.routes.rules', 'pubsub.RuleJSON');
        if (!ro) {
          out.rules.push({ match: '', path: '' });
          continue;
        }
        const rf = fields(ro, ['match', 'path']);
        out.rules.push({ match: str(rf.get('match'), 'RuleJSON.match'), path: str(rf.get('path'), 'RuleJSON.path') });
      }
    }
  }
  const bulk = obj(f.get('bulkSubscribe'), 'SubscriptionJSON.bulkSubscribe', 'pubsub.BulkSubscribeJSON');
  if (bulk) {
    const b = fields(bulk, ['enabled', 'maxMessagesCount', 'maxAwaitDurationMs']);
    out.bulk = {
      enabled: bool(b.get('enabled'), 'BulkSubscribeJSON.enabled'),
      maxMessagesCount: int32(b.get('maxMessagesCount'), 'BulkSubscribeJSON.maxMessagesCount'),
      maxAwaitDurationMs: int32(b.get('maxAwaitDurationMs'), 'BulkSubscribeJSON.maxAwaitDurationMs'),
    };
  }
  return out;
}

/**
 * The body of a 200 answer to GET /dapr/subscribe, read as daprd reads it: a JSON array (an empty body or null is no
 * subscription), each item's `routes.rules` compiled, then `routes.default` or else `route` as the last rule. A
 * subscription left without any route is dropped with a warning. Anything daprd refuses (not an array, a field of the
 * wrong type, a rule that is not CEL) is an error string: daprd then starts none of the app's subscriptions.
 */
export function parseProgrammatic(body: Buffer): ProgrammaticResult | string {
  const text = body.toString('utf8');
  const d = decodeFirst(text);
  if (!d.ok) {
    if (d.reason === 'EOF') return { subscriptions: [], warnings: [] };
    return `error getting topics from app: ${d.reason}`;
  }
  if (d.value === null) return { subscriptions: [], warnings: [] };
  if (!Array.isArray(d.value)) return `error getting topics from app: json: cannot unmarshal ${goTypeOf(d.value)} into Go value of type []pubsub.SubscriptionJSON`;
  let items: RawSubscription[];
  try {
    items = d.value.map(readItem);
  } catch (err) {
    if (err instanceof GoDecodeError) return `error getting topics from app: ${err.message}`;
    throw err;
  }
  const subscriptions: Subscription[] = [];
  const warnings: string[] = [];
  for (const [i, s] of items.entries()) {
    const rules: RoutingRule[] = [];
    for (const r of s.rules) {
      const rule = compileRule(r.match, r.path);
      if ('error' in rule) return `GET /dapr/subscribe item ${i} (pubsub '${s.pubsubname}', topic '${s.topic}'): ${rule.error}`;
      rules.push(rule);
    }
    if (s.default !== '') rules.push({ match: '', path: s.default });
    else if (s.route !== '') rules.push({ match: '', path: s.route });
    if (rules.length === 0) {
      warnings.push(`topic ${s.topic} has an empty routes. removing from subscriptions list (GET /dapr/subscribe item ${i}: give route, routes.default or routes.rules)`);
      continue;
    }
    subscriptions.push({
      pubsubName: s.pubsubname,
      topic: s.topic,
      metadata: s.metadata,
      rules,
      deadLetterTopic: s.deadLetterTopic,
      bulkSubscribe: s.bulk,
      type: 'PROGRAMMATIC',
      source: `GET /dapr/subscribe item ${i}`,
    });
  }
  return { subscriptions, warnings };
}

/**
 * The subscriptions daprd runs, in its order: declarative ones first (the first declared for a pubsub and topic
 * wins), then programmatic ones, each replacing a declarative one for the same pubsub and topic in place.
 */
export function mergeSubscriptions(declarative: readonly Subscription[], programmatic: readonly Subscription[]): Subscription[] {
  const out: Subscription[] = [];
  const taken = new Map<string, number>();
  const key = (s: Subscription): string => `${s.pubsubName}||${s.topic}`;
  for (const s of declarative) {
    if (taken.has(key(s))) continue;
    taken.set(key(s), out.length);
    out.push(s);
  }
  for (const s of programmatic) {
    const at = taken.get(key(s));
    if (at !== undefined) out[at] = s;
    else {
      taken.set(key(s), out.length);
      out.push(s);
    }
  }
  return out;
}

/** daprd's IsRawPayload of subscription metadata: strconv.ParseBool of `rawPayload` (exact name), or why not. */
export function rawPayloadOf(metadata: Readonly<Record<string, string>>): boolean | { error: string } {
  const v = metadata.rawPayload;
  if (v === undefined || v === '') return false;
  const b = parseGoBool(v);
  if (b === undefined) return { error: `rawPayload value must be a valid boolean: actual is '${v}'` };
  return b;
}

/** Go's strconv.ParseBool. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}
