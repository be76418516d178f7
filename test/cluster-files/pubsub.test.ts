/**
 * The pub/sub examples as a cluster takes them (`kubectl kustomize examples/pubsub-*`): a pub/sub type daprd has, the
 * producer publishing to the topic the consumer's Subscription takes, and KEDA's trigger naming exactly what daprd
 * derives for the consumer's subscription on that broker — the consumer group (= consumerID, default the app id), the
 * durable consumer (= durableName, "{appID}" filled in), the queue `<consumerID>-<topic>`. qscale matches the trigger
 * to that Subscription too, and the folder passes `qscale validate` and `qscale validate --cluster`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { EXAMPLES, MAIN, ROOT, containerEnv, exampleNames, ofKind, render, requireKubectl, type K8sObject } from './support.js';

const PUBSUB = ['pubsub-nats', 'pubsub-rabbitmq', 'pubsub-redis'];
/** Pub/sub types daprd has, per example. */
const TYPES: Record<string, string> = { 'pubsub-redis': 'pubsub.redis', 'pubsub-rabbitmq': 'pubsub.rabbitmq', 'pubsub-nats': 'pubsub.jetstream' };

type Spec = Record<string, unknown>;
const spec = (o: K8sObject): Spec => o.spec as Spec;
function metadataOf(component: K8sObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (spec(component).metadata as Array<{ name: string; value?: string }> | undefined) ?? []) if (m.value !== undefined) out[m.name] = m.value;
  return out;
}
function deployment(objects: K8sObject[], name: string): K8sObject {
  const d = ofKind(objects, 'Deployment').find((x) => x.metadata.name === name);
  assert.ok(d, `no Deployment ${name}`);
  return d;
}
function appIdOf(d: K8sObject): string {
  const id = (d.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata.annotations?.['dapr.io/app-id'];
  assert.ok(id, `Deployment ${d.metadata.name} has no dapr.io/app-id`);
  return id;
}

function qscale(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('cluster files - pub/sub examples', { timeout: 180_000 }, () => {
  test('examples - the three pub/sub examples exist, each with a kustomization and a README that applies it', () => {
    for (const name of PUBSUB) {
      assert.ok(exampleNames().includes(name), `examples/${name} with a dapr.yaml`);
      const readme = readFileSync(path.join(EXAMPLES, name, 'README.md'), 'utf8');
      assert.match(readme, new RegExp(`kubectl apply -k examples/${name}\\b`));
      assert.match(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), new RegExp(`\\[examples/${name}\\]\\(examples/${name}\\)`), `README.md lists examples/${name}`);
    }
  });

  for (const name of PUBSUB) {
    test(`examples/${name} - the producer publishes to the topic the consumer's Subscription takes, on a pub/sub type daprd has`, async (t) => {
      if (!requireKubectl(t)) return;
      const objects = await render(name);
      const producerEnv = containerEnv(deployment(objects, 'producer'));
      const consumer = deployment(objects, 'consumer');
      const components = ofKind(objects, 'Component');
      assert.equal(components.length, 1);
      const c = components[0]!;
      assert.equal(spec(c).type, TYPES[name], `${name}: Component ${c.metadata.name} is Dapr's own type`);
      assert.equal(producerEnv.PUBSUB_NAME, c.metadata.name, 'the producer publishes through this component');
      const subs = ofKind(objects, 'Subscription');
      assert.equal(subs.length, 1, 'one declarative Subscription');
      const sub = subs[0]!;
      assert.equal(sub.apiVersion, 'dapr.io/v2alpha1');
      assert.equal(spec(sub).pubsubname, c.metadata.name);
      assert.equal(spec(sub).topic, producerEnv.TOPIC, 'the Subscription takes the topic the producer publishes to');
      assert.deepEqual((sub as { scopes?: string[] }).scopes, [appIdOf(consumer)], 'scoped to the consumer');
      const route = `/${containerEnv(consumer).BINDING_NAME ?? 'message-queue'}`;
      assert.equal((spec(sub).routes as { default?: string }).default, route, `events go to the consumer's POST ${route}`);
      assert.equal(containerEnv(consumer).PUBSUB_NAME, undefined, 'the consumer subscribes by the resource, not by GET /dapr/subscribe');
    });

    test(`examples/${name} - KEDA's trigger names what daprd derives for the consumer's subscription`, async (t) => {
      if (!requireKubectl(t)) return;
      const objects = await render(name);
      const appId = appIdOf(deployment(objects, 'consumer'));
      const c = ofKind(objects, 'Component')[0]!;
      const md = metadataOf(c);
      const topic = String(spec(ofKind(objects, 'Subscription')[0]!).topic);
      const consumerID = md.consumerID ?? appId;
      const so = ofKind(objects, 'ScaledObject')[0]!;
      assert.equal((spec(so).scaleTargetRef as { name: string }).name, 'consumer');
      assert.equal(spec(so).minReplicaCount, 0, 'scales to zero');
      const triggers = spec(so).triggers as Array<{ type: string; metadata: Record<string, string> }>;
      assert.ok(triggers.length > 0);
      if (name === 'pubsub-redis') {
        for (const tr of triggers) {
          assert.equal(tr.type, 'redis-streams');
          assert.equal(tr.metadata.stream, topic, 'the stream is the topic');
          assert.equal(tr.metadata.consumerGroup, consumerID, 'the consumer group is the consumerID (the app id)');
        }
        // Only the group's lag sees events at 0 replicas (nothing is pending, and daprd never deletes an entry).
        assert.ok(triggers.some((tr) => tr.metadata.lagCount !== undefined && tr.metadata.activationLagCount === '0'), 'a lagCount trigger activates from zero');
      } else if (name === 'pubsub-rabbitmq') {
        assert.equal(triggers[0]!.type, 'rabbitmq');
        assert.equal(triggers[0]!.metadata.queueName, `${consumerID}-${topic}`, 'the queue is <consumerID>-<topic>');
        assert.equal(md.deletedWhenUnused, 'false', 'the queue outlives its last consumer, so events at 0 replicas are kept');
      } else {
        assert.equal(triggers[0]!.type, 'nats-jetstream');
        assert.equal(triggers[0]!.metadata.consumer, md.durableName?.replaceAll('{appID}', appId), 'the consumer is the durableName');
        assert.equal(triggers[0]!.metadata.stream, md.streamName);
        const job = ofKind(objects, 'Job')[0];
        assert.ok(job, 'a Job creates the stream, which daprd never does');
        const command = (job.spec as { template: { spec: { containers: Array<{ command: string[] }> } } }).template.spec.containers[0]!.command;
        assert.deepEqual(command.slice(command.indexOf('stream')), ['stream', 'add', md.streamName, '--subjects', topic, '--defaults']);
        assert.equal(c.metadata.annotations?.['qscale.io/jetstream-stream-subjects'], topic, 'locally the annotation creates the same stream');
      }
    });

    test(`examples/${name} - qscale validate and validate --cluster pass, and qscale matches each trigger to the Subscription`, (t) => {
      // The run file's fixed ports may be taken by anything on a shared machine: the same run file without them.
      const run = YAML.parse(readFileSync(path.join(EXAMPLES, name, 'dapr.yaml'), 'utf8')) as { common: Record<string, unknown>; apps: Array<Record<string, unknown>> };
      run.common.resourcesPath = path.join(EXAMPLES, name);
      for (const app of run.apps) {
        delete app.appPort;
        app.appDirPath = ROOT;
      }
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'qscale-pubsub-runfile-'));
      t.after(() => rmSync(tmp, { recursive: true, force: true }));
      writeFileSync(path.join(tmp, 'dapr.yaml'), YAML.stringify(run));
      const runFile = ['--run-file', path.join(tmp, 'dapr.yaml')];
      const local = qscale(['validate', `examples/${name}`, ...runFile, '--json']);
      assert.equal(local.status, 0, local.out);
      const found = (JSON.parse(local.out) as { found: Array<{ kind: string; note: string }>; warnings: string[] }).found;
      const triggers = found.filter((f) => f.kind === 'Trigger');
      assert.ok(triggers.length > 0);
      for (const tr of triggers) assert.match(tr.note, /reads .*: Subscription msgtopic-subscription of app consumer to topic msgtopic/);
      const embedded = qscale(['validate', `examples/${name}`, ...runFile, '--embedded', '--json']);
      assert.equal(embedded.status, 0, embedded.out);
      for (const tr of (JSON.parse(embedded.out) as { found: Array<{ kind: string; note: string }> }).found.filter((f) => f.kind === 'Trigger')) {
        assert.match(tr.note, /measured on the embedded queue pubsub\/pubsub\/msgtopic\/consumer/);
      }
      const cluster = qscale(['validate', '--cluster', `examples/${name}`]);
      assert.equal(cluster.status, 0, cluster.out);
    });
  }
});
