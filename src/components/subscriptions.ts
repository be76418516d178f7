/**
 * Declarative pub/sub Subscription resources (dapr.io/v2alpha1 and v1alpha1), read from the resources folder as
 * daprd reads them in self-hosted mode and checked against the schema the cluster enforces
 * (../shared/reference/crds/dapr.io_subscriptions.yaml): v2alpha1 requires pubsubname, topic and routes (each rule a
 * match and a path), v1alpha1 pubsubname, topic and route; metadata values are strings; bulkSubscribe needs enabled.
 * A v1alpha1 route becomes the v2 default route, as daprd converts it. Every error names file:line and the field.
 */
import type { FieldPath, Manifest } from './manifests.js';
import { compileRule, type RoutingRule, type Subscription } from '../pubsub/subscriptions.js';

export const SUBSCRIPTION_VERSIONS = ['dapr.io/v2alpha1', 'dapr.io/v1alpha1'] as const;

/** A Subscription resource with its scopes (empty: every app). */
export interface DeclaredSubscription extends Subscription {
  scopes: string[];
  file: string;
  line: number;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function parseSubscription(m: Manifest): DeclaredSubscription {
  if (!(SUBSCRIPTION_VERSIONS as readonly string[]).includes(m.apiVersion)) {
    throw m.error(`unsupported apiVersion '${m.apiVersion}' for Subscription (expected ${SUBSCRIPTION_VERSIONS.join(' or ')})`, ['apiVersion']);
  }
  const v1 = m.apiVersion === 'dapr.io/v1alpha1';
  const subject = `Subscription ${m.name || '(unnamed)'}`;
  if (!m.name) throw m.error(`${subject} is missing metadata.name`, ['metadata']);
  const spec = m.body.spec;
  if (!isObj(spec)) throw m.error(`${subject}: missing spec (pubsubname, topic and ${v1 ? 'route' : 'routes'})`, ['spec']);

  const requiredString = (key: string): string => {
    const v = spec[key];
    if (v === undefined || v === null) throw m.error(`${subject}: missing required field 'spec.${key}'`, ['spec', key]);
    if (typeof v !== 'string') throw m.error(`${subject}: spec.${key} must be a string`, ['spec', key]);
    return v;
  };
  const optionalString = (key: string, at: FieldPath, v: unknown): string => {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw m.error(`${subject}: ${at.join('.')} must be a string`, at);
    return v;
  };
  const int32 = (v: unknown, at: FieldPath): number => {
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v > 2 ** 31 - 1 || v < -(2 ** 31)) {
      throw m.error(`${subject}: ${at.join('.')} must be a whole number (int32)`, at);
    }
    return v;
  };

  const pubsubName = requiredString('pubsubname');
  const topic = requiredString('topic');
  const deadLetterTopic = optionalString('deadLetterTopic', ['spec', 'deadLetterTopic'], spec.deadLetterTopic);

  const metadata: Record<string, string> = {};
  if (spec.metadata !== undefined && spec.metadata !== null) {
    if (!isObj(spec.metadata)) throw m.error(`${subject}: spec.metadata must be a mapping of name: "value"`, ['spec', 'metadata']);
    for (const [k, v] of Object.entries(spec.metadata)) {
      if (typeof v !== 'string') {
        throw m.error(`${subject}: spec.metadata.${k} must be a string (the cluster refuses ${v === null ? 'null' : typeof v}); quote it: "${String(v)}"`, ['spec', 'metadata', k]);
      }
      metadata[k] = v;
    }
  }

  const rules: RoutingRule[] = [];
  if (v1) {
    const route = requiredString('route');
    if (route !== '') rules.push({ match: '', path: route });
  } else {
    const routes = spec.routes;
    if (routes === undefined || routes === null) throw m.error(`${subject}: missing required field 'spec.routes' (rules and/or default)`, ['spec', 'routes']);
    if (!isObj(routes)) throw m.error(`${subject}: spec.routes must be a mapping with rules and/or default`, ['spec', 'routes']);
    if (routes.rules !== undefined && routes.rules !== null) {
      if (!Array.isArray(routes.rules)) throw m.error(`${subject}: spec.routes.rules must be a list of {match, path}`, ['spec', 'routes', 'rules']);
      routes.rules.forEach((raw, i) => {
        const at: FieldPath = ['spec', 'routes', 'rules', i];
        if (!isObj(raw)) throw m.error(`${subject}: spec.routes.rules[${i}] must be a mapping with match and path`, at);
        for (const key of ['match', 'path']) {
          if (raw[key] === undefined) throw m.error(`${subject}: spec.routes.rules[${i}] is missing required field '${key}'`, [...at, key]);
        }
        const match = optionalString('match', [...at, 'match'], raw.match);
        const path = optionalString('path', [...at, 'path'], raw.path);
        const rule = compileRule(match, path);
        if ('error' in rule) throw m.error(`${subject}: spec.routes.rules[${i}].${rule.error}`, [...at, 'match']);
        rules.push(rule);
      });
    }
    const def = optionalString('default', ['spec', 'routes', 'default'], routes.default);
    if (def !== '') rules.push({ match: '', path: def });
  }

  const bulkSubscribe = { enabled: false, maxMessagesCount: 0, maxAwaitDurationMs: 0 };
  if (spec.bulkSubscribe !== undefined && spec.bulkSubscribe !== null) {
    const b = spec.bulkSubscribe;
    if (!isObj(b)) throw m.error(`${subject}: spec.bulkSubscribe must be a mapping with enabled`, ['spec', 'bulkSubscribe']);
    if (b.enabled === undefined) throw m.error(`${subject}: spec.bulkSubscribe is missing required field 'enabled'`, ['spec', 'bulkSubscribe']);
    if (typeof b.enabled !== 'boolean') throw m.error(`${subject}: spec.bulkSubscribe.enabled must be true or false`, ['spec', 'bulkSubscribe', 'enabled']);
    bulkSubscribe.enabled = b.enabled;
    bulkSubscribe.maxMessagesCount = int32(b.maxMessagesCount, ['spec', 'bulkSubscribe', 'maxMessagesCount']);
    bulkSubscribe.maxAwaitDurationMs = int32(b.maxAwaitDurationMs, ['spec', 'bulkSubscribe', 'maxAwaitDurationMs']);
  }

  const s = m.body.scopes;
  if (s !== undefined && s !== null && (!Array.isArray(s) || s.some((x) => typeof x !== 'string'))) {
    throw m.error(`${subject}: scopes must be a list of app ids`, ['scopes']);
  }
  return {
    pubsubName,
    topic,
    metadata,
    rules,
    deadLetterTopic,
    bulkSubscribe,
    type: 'DECLARATIVE',
    name: m.name,
    source: `${m.file}:${m.line}`,
    scopes: (s as string[] | undefined | null) ?? [],
    file: m.file,
    line: m.line,
  };
}

/** One line for a subscription daprd accepts but that can deliver nothing: every event it gets is dropped. */
export function routelessNotice(s: DeclaredSubscription): string | undefined {
  if (s.rules.length > 0) return undefined;
  return `${s.file}:${s.line}: Subscription ${s.name ?? ''} (pubsub ${s.pubsubName}, topic ${s.topic}) has no route: daprd drops (acks) every event of it, and so does qscale; give ${s.type === 'DECLARATIVE' ? 'spec.routes.default or spec.route' : 'a route'}`;
}
