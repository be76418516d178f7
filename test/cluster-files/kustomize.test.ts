/**
 * `kubectl apply -k examples/<name>`: each example's kustomization renders what a cluster needs — the Component and
 * its Secrets, the KEDA objects, the seed's Deployments and Services — and never the local run file; switching the
 * queue never touches the Deployments; what the objects name, the render holds; and `qscale up` still reads each
 * folder as before with the kustomization.yaml beside its files.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  EXAMPLES, LOCAL_ONLY, MAIN, QSCALE_ONLY_TYPE, ROOT, componentTypes, exampleNames, kustomizationDirs, ofKind, render,
  containerEnv, requireKubectl, type K8sObject,
} from './support.js';

const id = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`;
const hasKustomization = (name: string): boolean => existsSync(path.join(EXAMPLES, name, 'kustomization.yaml'));
const clusterExamples = (): string[] => exampleNames().filter(hasKustomization);
/** The pub/sub examples: the producer publishes to a topic (PUBSUB_NAME, TOPIC), the consumer gets it by a Subscription. */
const isPubSub = (name: string): boolean => name.startsWith('pubsub-');
/** A render's Deployments without the two env vars that turn the producer to a topic (pubsub.test.ts checks them). */
function withoutTopicEnv(objects: K8sObject[]): K8sObject[] {
  return objects.map((o) => {
    if (o.kind !== 'Deployment') return o;
    const copy = structuredClone(o) as K8sObject & { spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string }> }> } } } };
    for (const c of copy.spec.template.spec.containers) c.env = c.env?.filter((e) => e.name !== 'PUBSUB_NAME' && e.name !== 'TOPIC');
    return copy;
  });
}

describe('cluster files - kustomize', { timeout: 180_000 }, () => {
  test('examples - every example has a kustomization, or its README says it is local only because daprd lacks its binding type', () => {
    const names = exampleNames();
    assert.ok(names.includes('seed') && names.length >= 6, `examples found: ${names.join(', ')}`);
    for (const name of names) {
      const readme = readFileSync(path.join(EXAMPLES, name, 'README.md'), 'utf8');
      const qscaleOnly = componentTypes(name).filter((t) => QSCALE_ONLY_TYPE.test(t));
      if (hasKustomization(name)) {
        assert.deepEqual(qscaleOnly, [], `examples/${name}: kustomization.yaml deploys ${qscaleOnly.join(', ')}, which daprd refuses to load`);
        assert.doesNotMatch(readme, LOCAL_ONLY, `examples/${name}: README.md says local only, yet kustomization.yaml deploys it`);
        assert.match(readme, new RegExp(`kubectl apply -k examples/${name}\\b`), `examples/${name}: README.md shows how to apply it`);
      } else {
        assert.notDeepEqual(qscaleOnly, [], `examples/${name}: no kustomization.yaml, yet every binding type is one daprd has`);
        assert.match(readme, LOCAL_ONLY, `examples/${name}: no kustomization.yaml and README.md does not say it is local only`);
        for (const t of qscaleOnly) assert.ok(readme.includes(t), `examples/${name}: README.md names ${t} as the reason`);
      }
    }
  });

  test('examples - every kustomization renders with kubectl kustomize, each object with apiVersion, kind and name', async (t) => {
    if (!requireKubectl(t)) return;
    const dirs = kustomizationDirs();
    assert.ok(dirs.includes('seed') && dirs.includes('apps'), `kustomizations found: ${dirs.join(', ')}`);
    for (const dir of dirs) {
      const objects = await render(dir);
      assert.ok(objects.length > 0, `examples/${dir} renders nothing`);
      for (const o of objects) {
        assert.ok(o.apiVersion && o.kind && o.metadata?.name, `examples/${dir}: an object without apiVersion, kind or name: ${JSON.stringify(o).slice(0, 200)}`);
      }
      const ids = objects.map((o) => `${o.apiVersion} ${id(o)}`);
      assert.equal(new Set(ids).size, ids.length, `examples/${dir}: an object twice: ${ids.join(', ')}`);
    }
  });

  test('examples/seed - renders the Component, Secrets, Deployments, Services, KEDA 2 ScaledObject and TriggerAuthentication, and no run file', async (t) => {
    if (!requireKubectl(t)) return;
    const objects = await render('seed');
    assert.deepEqual(objects.map((o) => `${o.apiVersion} ${id(o)}`).sort(), [
      'apps/v1 Deployment/consumer',
      'apps/v1 Deployment/producer',
      'dapr.io/v1alpha1 Component/message-queue',
      'keda.sh/v1alpha1 ScaledObject/bindingconsumer-scaler',
      'keda.sh/v1alpha1 TriggerAuthentication/trigger-auth-servicebus',
      'v1 Secret/servicebus-management',
      'v1 Secret/servicebus-msgqueue-auth',
      'v1 Service/consumer',
      'v1 Service/producer',
    ]);
    const component = ofKind(objects, 'Component')[0]!;
    assert.equal((component.spec as { type: string }).type, 'bindings.azure.servicebusqueues');
    // The run file's fields, in case it ever were rendered under some kind.
    for (const o of objects) assert.ok(!('apps' in o) && !('common' in o), `${id(o)} carries the run file's fields`);
  });

  test('examples - switching the queue never touches the Deployments and Services: every render has the seed\'s own', async (t) => {
    if (!requireKubectl(t)) return;
    const workloads = (objects: K8sObject[]): K8sObject[] =>
      objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Service').sort((a, b) => id(a).localeCompare(id(b)));
    const seed = workloads(await render('seed'));
    assert.deepEqual(seed.map(id), ['Deployment/consumer', 'Deployment/producer', 'Service/consumer', 'Service/producer']);
    for (const name of clusterExamples()) {
      const objects = await render(name);
      assert.deepEqual(workloads(isPubSub(name) ? withoutTopicEnv(objects) : objects), seed, `examples/${name}: its Deployments or Services differ from examples/seed's`);
    }
  });

  test('examples - everything a rendered object names is in the same render: Secrets and keys, TriggerAuthentication, scale target, the consumer\'s binding', async (t) => {
    if (!requireKubectl(t)) return;
    for (const name of clusterExamples()) {
      const objects = await render(name);
      const at = `examples/${name}`;
      const secretKeys = new Map<string, Set<string>>();
      for (const s of ofKind(objects, 'Secret')) {
        secretKeys.set(s.metadata.name, new Set([...Object.keys((s.data ?? {}) as object), ...Object.keys((s.stringData ?? {}) as object)]));
      }
      const needSecret = (what: string, secret: string, key: string): void => {
        assert.ok(secretKeys.get(secret)?.has(key), `${at}: ${what} needs key '${key}' of Secret ${secret}, which the render does not hold`);
      };
      const components = ofKind(objects, 'Component');
      assert.equal(components.length, 1, `${at}: one binding, message-queue`);
      for (const c of components) {
        const spec = c.spec as { metadata?: Array<{ name: string; secretKeyRef?: { name: string; key: string } }> };
        for (const m of spec.metadata ?? []) if (m.secretKeyRef) needSecret(`Component ${c.metadata.name} ${m.name}`, m.secretKeyRef.name, m.secretKeyRef.key);
      }
      const auths = new Set(ofKind(objects, 'TriggerAuthentication').map((a) => a.metadata.name));
      for (const a of ofKind(objects, 'TriggerAuthentication')) {
        for (const r of ((a.spec as { secretTargetRef?: Array<{ name: string; key: string; parameter: string }> }).secretTargetRef ?? [])) {
          needSecret(`TriggerAuthentication ${a.metadata.name} ${r.parameter}`, r.name, r.key);
        }
      }
      const deployments = new Map(ofKind(objects, 'Deployment').map((d) => [d.metadata.name, d]));
      for (const so of ofKind(objects, 'ScaledObject')) {
        const spec = so.spec as { scaleTargetRef: { name: string }; triggers: Array<{ authenticationRef?: { name: string } }> };
        assert.ok(deployments.has(spec.scaleTargetRef.name), `${at}: ScaledObject ${so.metadata.name} scales Deployment ${spec.scaleTargetRef.name}, not in the render`);
        for (const tr of spec.triggers) {
          if (tr.authenticationRef) assert.ok(auths.has(tr.authenticationRef.name), `${at}: TriggerAuthentication ${tr.authenticationRef.name} is not in the render`);
        }
      }
      // daprd delivers an input binding to POST /<component name>; the consumer serves POST /<BINDING_NAME>.
      const consumer = deployments.get('consumer');
      assert.ok(consumer, `${at}: no consumer Deployment`);
      const env = containerEnv(consumer);
      const route = env.BINDING_NAME ?? 'message-queue';
      // A pub/sub example delivers through its Subscription's route instead (pubsub.test.ts).
      if (!isPubSub(name)) assert.ok(components.some((c) => c.metadata.name === route), `${at}: the consumer serves POST /${route}, but no Component is named ${route}`);
    }
  });

  test('examples - no cluster render points at this machine\'s loopback, which in a pod is the pod itself', async (t) => {
    if (!requireKubectl(t)) return;
    const loopback = /\b(127\.0\.0\.1|localhost|\[?::1\]?)(:\d+)?\b/;
    for (const name of clusterExamples()) {
      for (const o of await render(name)) {
        if (o.kind === 'Deployment' || o.kind === 'Service') continue;
        for (const [where, value] of strings(o, '', false, o.kind === 'Secret')) {
          assert.doesNotMatch(value, loopback, `examples/${name}: ${id(o)} ${where} = '${value}'`);
        }
      }
    }
  });

  test('examples - qscale up still reads each example folder with kustomization.yaml beside it: once each, the Kustomization skipped', () => {
    for (const name of clusterExamples()) {
      const r = spawnSync(process.execPath, [MAIN, 'validate', `examples/${name}`, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `qscale validate examples/${name}: ${r.stderr}${r.stdout}`);
      const out = JSON.parse(r.stdout) as { found: Array<{ kind: string; name: string; where: string; note: string }> };
      const components = out.found.filter((f) => f.kind === 'Component');
      assert.equal(components.length, 1, `examples/${name}: ${components.map((c) => c.where).join(', ')}`);
      assert.ok(out.found.some((f) => f.kind === 'Kustomization' && /skipped/.test(f.note)), `examples/${name}: the Kustomization is listed as skipped`);
      for (const f of out.found) assert.doesNotMatch(f.where, /examples\/apps\//, `examples/${name}: ${f.kind} ${f.name} read from the apps base`);
    }
  });
});

/** Every string value under an object, with its path; a Secret's `data` decoded from base64. */
function* strings(value: unknown, where: string, decode: boolean, secret: boolean): Generator<[string, string]> {
  if (typeof value === 'string') {
    yield [where, decode ? Buffer.from(value, 'base64').toString('utf8') : value];
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) yield* strings(v, `${where}[${i}]`, decode, false);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) yield* strings(v, where ? `${where}.${k}` : k, decode || (secret && k === 'data'), false);
  }
}
