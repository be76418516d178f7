/**
 * Subscriptions as daprd reads them: the app's GET /dapr/subscribe answer (Go's decoding, v1 route and v2 routes, CEL
 * rules), Subscription resources with errors naming file:line and field, the merge order, topic scopes, and the name
 * of the embedded queue that keeps a subscription's events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { resolveResources } from '../../src/components/resources.js';
import { ConfigError } from '../../src/errors.js';
import { chooseRoute, compileRule, mergeSubscriptions, parseProgrammatic, type Subscription } from '../../src/pubsub/subscriptions.js';
import { topicAllowed, topicScopes } from '../../src/pubsub/scopes.js';
import { pubsubQueueName } from '../../src/backends/embedded/pubsub.js';


function programmatic(body: unknown): ReturnType<typeof parseProgrammatic> {
  return parseProgrammatic(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
}

test('programmatic - v1 route, v2 rules and default, names matched as Go matches them, empty routes left out', { timeout: 30_000 }, () => {
  const r = programmatic([
    { pubsubname: 'p', topic: 'a', route: '/a', deadLetterTopic: 'dlt', metadata: { rawPayload: 'true', other: null } },
    { PUBSUBNAME: 'p', Topic: 'b', routes: { rules: [{ match: ' event.type == "x" ', path: '/x' }, { match: '', path: '/always' }], default: '/b' }, route: '/ignored' },
    { pubsubname: 'p', topic: 'c', bulkSubscribe: { enabled: true, maxMessagesCount: 10 } },
  ]);
  assert.ok(typeof r !== 'string', String(r));
  assert.deepEqual(r.subscriptions.map((s) => [s.topic, s.rules.map((x) => `${x.match}→${x.path}`)]), [
    ['a', ['→/a']],
    ['b', ['event.type == "x"→/x', '→/always', '→/b']],
  ]);
  assert.deepEqual(r.subscriptions[0]!.metadata, { rawPayload: 'true', other: '' });
  assert.equal(r.subscriptions[0]!.deadLetterTopic, 'dlt');
  assert.equal(r.subscriptions[1]!.pubsubName, 'p', 'PUBSUBNAME matches the field pubsubname');
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /^topic c has an empty routes\. removing from subscriptions list/);
});

test('programmatic - what daprd refuses: not a list, a field of the wrong type, an int32 out of range, a rule that is not CEL', { timeout: 30_000 }, () => {
  assert.deepEqual(programmatic(''), { subscriptions: [], warnings: [] }, 'an empty body is no subscription');
  assert.deepEqual(programmatic('null'), { subscriptions: [], warnings: [] });
  const cases: Array<[unknown, RegExp]> = [
    [{ topic: 'a' }, /cannot unmarshal object into Go value of type \[\]pubsub\.SubscriptionJSON/],
    [[{ pubsubname: 'p', topic: 1, route: '/a' }], /cannot unmarshal number into Go struct field SubscriptionJSON\.topic of type string/],
    [[{ pubsubname: 'p', topic: 'a', route: '/a', metadata: { n: 1 } }], /of type string/],
    [[{ pubsubname: 'p', topic: 'a', route: '/a', bulkSubscribe: { enabled: true, maxMessagesCount: 3000000000 } }], /number 3000000000 into Go struct field BulkSubscribeJSON\.maxMessagesCount of type int32/],
    [[{ pubsubname: 'p', topic: 'a', routes: { rules: [{ match: 'event.type ==', path: '/x' }] } }], /item 0 \(pubsub 'p', topic 'a'\): match 'event\.type ==' is not a valid CEL expression/],
    ['[{"pubsubname": "p",', /error getting topics from app/],
  ];
  for (const [body, re] of cases) {
    const r = programmatic(body);
    assert.equal(typeof r, 'string', JSON.stringify(body));
    assert.match(r as string, re);
  }
});

test('rules - CEL over the event as daprd evaluates it: first true rule, numbers compare across int and double, a non-boolean is an error', { timeout: 30_000 }, () => {
  const rules = [
    compileRule('event.data.amount > 100', '/big'),
    compileRule('event.data.kind in ["a", "b"] && event.type.startsWith("com.")', '/kind'),
    compileRule('', '/default'),
  ].map((r) => {
    assert.ok(!('error' in r));
    return r;
  });
  const ev = (data: unknown): Record<string, unknown> => ({ type: 'com.dapr.event.sent', data });
  assert.deepEqual(chooseRoute(rules, ev({ amount: 150.5 })), { kind: 'path', path: '/big' });
  assert.deepEqual(chooseRoute(rules, ev({ amount: 1, kind: 'b' })), { kind: 'path', path: '/kind' });
  assert.deepEqual(chooseRoute(rules, ev({ amount: 1, kind: 'z' })), { kind: 'path', path: '/default' });
  assert.deepEqual(chooseRoute(rules.slice(0, 2), ev({ amount: 1, kind: 'z' })), { kind: 'none' });
  const notBool = compileRule('event.type', '/x');
  assert.ok(!('error' in notBool));
  assert.deepEqual(chooseRoute([notBool], ev(1)), { kind: 'error', reason: 'the result of match expression event.type was not a boolean' });
  assert.equal(chooseRoute([rules[0]!], ev('text')).kind, 'error', 'a field of a string is an evaluation error (a retry), as in cel-go');
  assert.ok('error' in compileRule('1 + "a"', '/x'), 'a type error is found when the rule is read');
});

test('merge - declarative first (the first of a topic wins), a programmatic one replaces it in place', { timeout: 30_000 }, () => {
  const s = (topic: string, path: string, type: Subscription['type']): Subscription => ({
    pubsubName: 'p', topic, metadata: {}, rules: [{ match: '', path }], deadLetterTopic: '', bulkSubscribe: { enabled: false, maxMessagesCount: 0, maxAwaitDurationMs: 0 }, type, source: '',
  });
  const merged = mergeSubscriptions([s('a', '/a1', 'DECLARATIVE'), s('b', '/b', 'DECLARATIVE'), s('a', '/a2', 'DECLARATIVE')], [s('b', '/b-app', 'PROGRAMMATIC'), s('c', '/c', 'PROGRAMMATIC')]);
  assert.deepEqual(merged.map((x) => `${x.topic}:${x.rules[0]!.path}:${x.type}`), ['a:/a1:DECLARATIVE', 'b:/b-app:PROGRAMMATIC', 'c:/c:PROGRAMMATIC']);
});

const SUB = (spec: string, extra = '', version = 'v2alpha1'): string => `apiVersion: dapr.io/${version}
kind: Subscription
metadata:
  name: orders
spec:
${spec}
${extra}
`;

function loadSubs(yaml: string, appId?: string): ReturnType<typeof resolveResources> {
  return resolveResources(parseManifests(yaml, 'subs.yaml'), appId === undefined ? {} : { appId });
}

test('declarative - v2alpha1 and v1alpha1 read as daprd converts them; scopes keep a subscription from other apps', { timeout: 30_000 }, () => {
  const r = loadSubs(`${SUB(`  pubsubname: p
  topic: orders
  metadata:
    rawPayload: "true"
  deadLetterTopic: dead
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 5
  routes:
    rules:
    - match: event.type == "x"
      path: /x
    default: /orders`, 'scopes: [checkout]')}---
${SUB(`  pubsubname: p
  topic: old
  route: /old`, '', 'v1alpha1').replace('name: orders', 'name: old')}`, 'checkout');
  assert.deepEqual(r.subscriptions.map((s) => [s.name, s.topic, s.rules.map((x) => x.path), s.type]), [
    ['orders', 'orders', ['/x', '/orders'], 'DECLARATIVE'],
    ['old', 'old', ['/old'], 'DECLARATIVE'],
  ]);
  assert.deepEqual(r.subscriptions[0]!.metadata, { rawPayload: 'true' });
  assert.deepEqual(r.subscriptions[0]!.bulkSubscribe, { enabled: true, maxMessagesCount: 5, maxAwaitDurationMs: 0 });
  assert.equal(r.subscriptions[0]!.source, 'subs.yaml:1');
  const other = loadSubs(SUB('  pubsubname: p\n  topic: orders\n  routes: {default: /o}', 'scopes: [checkout]'), 'billing');
  assert.equal(other.subscriptions.length, 0);
  assert.match(other.skipped[0]!.reason, /not in scopes of app 'billing'/);
});

test('declarative - every error names file:line and the field, as the cluster\'s schema would refuse it', { timeout: 30_000 }, () => {
  const cases: Array<[string, RegExp, number]> = [
    [SUB('  topic: orders\n  routes: {default: /o}'), /subs\.yaml:5: Subscription orders: missing required field 'spec\.pubsubname'/, 5],
    [SUB('  pubsubname: p\n  topic: orders'), /missing required field 'spec\.routes'/, 5],
    [SUB('  pubsubname: p\n  topic: orders\n  route: /o', '', 'v1alpha1').replace('  route: /o', ''), /missing required field 'spec\.route'/, 5],
    [SUB('  pubsubname: p\n  topic: orders\n  metadata:\n    rawPayload: true\n  routes: {default: /o}'), /subs\.yaml:9: Subscription orders: spec\.metadata\.rawPayload must be a string .*quote it: "true"/, 9],
    [SUB('  pubsubname: p\n  topic: orders\n  routes:\n    rules:\n    - match: event.type ==\n      path: /x'), /subs\.yaml:10: Subscription orders: spec\.routes\.rules\[0\]\.match 'event\.type ==' is not a valid CEL expression/, 10],
    [SUB('  pubsubname: p\n  topic: orders\n  routes:\n    rules:\n    - path: /x'), /spec\.routes\.rules\[0\] is missing required field 'match'/, 10],
    [SUB('  pubsubname: p\n  topic: orders\n  bulkSubscribe: {maxMessagesCount: 2}\n  routes: {default: /o}'), /spec\.bulkSubscribe is missing required field 'enabled'/, 8],
    [SUB('  pubsubname: p\n  topic: orders\n  routes: {default: /o}').replace('v2alpha1', 'v3'), /unsupported apiVersion 'dapr\.io\/v3' for Subscription/, 1],
  ];
  for (const [yaml, re, line] of cases) {
    assert.throws(() => loadSubs(yaml), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, re);
      assert.equal(err.line, line, err.message);
      return true;
    });
  }
  const twice = `${SUB('  pubsubname: p\n  topic: a\n  routes: {default: /o}')}---\n${SUB('  pubsubname: p\n  topic: b\n  routes: {default: /o}')}`;
  assert.throws(() => loadSubs(twice), /Subscription 'orders' is defined twice \(first at subs\.yaml:1\)/);
  const routeless = loadSubs(SUB('  pubsubname: p\n  topic: orders\n  routes: {}'));
  assert.match(routeless.notices.join('\n'), /has no route: daprd drops \(acks\) every event of it/);
});

test('scopes - allowedTopics, protectedTopics, publishingScopes and subscriptionScopes as daprd reads them', { timeout: 30_000 }, () => {
  const s = topicScopes({ ALLOWEDTOPICS: 'a, b,c', protectedTopics: 'c', publishingScopes: 'app1=a,c;app2=b', subscriptionScopes: 'app2=' }, 'app1');
  assert.deepEqual(s, { allowed: ['a', 'b', 'c'], protected: ['c'], publishing: ['a', 'c'], subscribing: [] });
  assert.equal(topicAllowed('a', s, s.publishing), true);
  assert.equal(topicAllowed('b', s, s.publishing), false, 'app1 has scopes of its own, b is not among them');
  assert.equal(topicAllowed('d', s, s.subscribing), false, 'outside allowedTopics');
  assert.equal(topicAllowed('c', s, s.subscribing), false, 'protected: only a scope gives it');
  assert.equal(topicAllowed('b', s, s.subscribing), true);
});

test('embedded - one queue per component, topic and consumer group, every part readable in its name', { timeout: 30_000 }, () => {
  assert.equal(pubsubQueueName('orders-pubsub', 'orders', 'checkout'), 'pubsub/orders-pubsub/orders/checkout');
  assert.equal(pubsubQueueName('p', 'a/b', 'g:1'), 'pubsub/p/a%2Fb/g%3A1');
  assert.notEqual(pubsubQueueName('p', 'a/b', 'c'), pubsubQueueName('p', 'a', 'b/c'));
});
