/**
 * `qscale validate --cluster`: what a cluster with Kubernetes, KEDA and Dapr would refuse is an error naming
 * file:line and the field; what it accepts but ignores is a warning; the qscale-only types are refused with the way
 * out; every example folder gets its verdict.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkCluster, type ClusterReport } from '../../src/cluster/index.js';
import { QSCALE_ONLY_TYPES } from '../../src/cluster/dapr-components.js';
import { supportedBindingTypes } from '../../src/backends/registry.js';
import { MAIN, ROOT } from '../e2e/harness.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-cluster-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function qscale(args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
const noKubectl = kubectl.status === 0 ? false : 'kubectl is not on PATH: kustomizations cannot be rendered here';
if (noKubectl) console.log(`# ${noKubectl}`);

const errorsOf = (r: ClusterReport) => r.errors.map((e) => e.message);

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: consumer
spec:
  replcas: 2
  selector:
    matchLabels:
      app: consumer
  template:
    metadata:
      labels:
        app: consumer
    spec:
      containers:
      - name: consumer
        image: qscale-apps:0.1.0
        ports:
        - containerPort: 6000
        resources:
          limts:
            memory: 128Mi
`;

const COMPONENT = (type: string, metadata: string) => `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: message-queue
spec:
  type: ${type}
  version: v1
  metadata:
${metadata}`;

const scaledObject = (triggers: string, api = 'keda.sh/v1alpha1') => `apiVersion: ${api}
kind: ScaledObject
metadata:
  name: consumer-scaler
spec:
  scaleTargetRef:
    name: consumer
  triggers:
${triggers}`;

describe('validate --cluster', { timeout: 180_000 }, () => {
  test('a Deployment with misspelt fields is refused with file:line and each field path', async () => {
    const dir = folder({ 'consumer.yaml': DEPLOYMENT });
    const r = await checkCluster(dir);
    const file = path.join(dir, 'consumer.yaml');
    const replicas = r.errors.find((e) => /unknown field spec\.replcas/.test(e.message));
    assert.ok(replicas, errorsOf(r).join('\n'));
    assert.equal(replicas.line, 6);
    assert.equal(replicas.field, 'spec.replcas');
    assert.match(replicas.message, /did you mean 'replicas'\?/);
    assert.ok(replicas.message.startsWith(`${file}:6: Deployment consumer:`), replicas.message);
    const limits = r.errors.find((e) => e.field === 'spec.template.spec.containers[0].resources.limts');
    assert.ok(limits, errorsOf(r).join('\n'));
    assert.equal(limits.line, 21);
    assert.match(limits.message, /did you mean 'limits'/);
    assert.equal(r.errors.length, 2, errorsOf(r).join('\n'));
  });

  test('the same Deployment spelt right passes, and the CLI exits 2 with ERR_CONFIG for the misspelt one', async () => {
    const good = folder({ 'consumer.yaml': DEPLOYMENT.replace('replcas', 'replicas').replace('limts', 'limits') });
    assert.deepEqual(errorsOf(await checkCluster(good)), []);
    const bad = folder({ 'consumer.yaml': DEPLOYMENT });
    const cli = qscale(['validate', '--cluster', bad]);
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /consumer\.yaml:6: Deployment consumer: unknown field spec\.replcas/);
    const json = qscale(['validate', '--cluster', bad, '--json']);
    assert.equal(json.status, 2);
    const out = JSON.parse(json.stdout) as { ok: boolean; errors: Array<{ code: string; file: string; line: number; field: string }>; versions: string };
    assert.equal(out.ok, false);
    assert.deepEqual(out.errors.map((e) => [e.code, path.basename(e.file), e.line, e.field]), [
      ['ERR_CONFIG', 'consumer.yaml', 6, 'spec.replcas'],
      ['ERR_CONFIG', 'consumer.yaml', 21, 'spec.template.spec.containers[0].resources.limts'],
    ]);
    assert.match(out.versions, /Kubernetes 1\.33.*KEDA 2\.20.*Dapr 1\.18/);
  });

  test('a Service with a type Kubernetes does not have, or a quoted port, is refused', async () => {
    const dir = folder({
      'svc.yaml': `apiVersion: v1
kind: Service
metadata:
  name: producer
spec:
  selector:
    app: producer
  ports:
  - port: "80"
    targetPort: 5000
  type: LoadBalancr
`,
    });
    const r = await checkCluster(dir);
    const type = r.errors.find((e) => e.field === 'spec.type');
    assert.ok(type, errorsOf(r).join('\n'));
    assert.equal(type.line, 11);
    assert.match(type.message, /spec\.type must be one of 'ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort', got 'LoadBalancr'/);
    const port = r.errors.find((e) => e.field === 'spec.ports[0].port');
    assert.ok(port, errorsOf(r).join('\n'));
    assert.equal(port.line, 9);
    assert.match(port.message, /must be an integer, got a string \(write it without quotes\)/);
  });

  test('API-server rules beyond the schema: selector vs labels, quantities, names, removed APIs, base64 Secret data', async () => {
    const dir = folder({
      'a.yaml': DEPLOYMENT.replace('replcas', 'replicas').replace('limts', 'limits').replace('memory: 128Mi', 'memory: 128MB').replace('      labels:\n        app: consumer\n    spec', '      labels:\n        app: other\n    spec'),
      'b.yaml': `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: old
spec: {}
---
apiVersion: v1
kind: Secret
metadata:
  name: Bad_Name
data:
  key: "not base64 at all: s3cr3t-value"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:qscale-reader
rules: []
`,
    });
    const msgs = errorsOf(await checkCluster(dir)).join('\n');
    assert.match(msgs, /spec\.selector does not match spec\.template\.metadata\.labels/);
    assert.match(msgs, /resources\.limits\.memory '128MB' is not a quantity/);
    assert.match(msgs, /apps\/v1beta1 Deployment is no longer served \(removed in Kubernetes 1\.16\): use apiVersion apps\/v1/);
    assert.match(msgs, /metadata\.name 'Bad_Name' must be a DNS-1123 subdomain/);
    assert.match(msgs, /data\.key must be base64/);
    assert.doesNotMatch(msgs, /s3cr3t/, 'a Secret value is never printed');
    assert.doesNotMatch(msgs, /system:qscale-reader/, 'RBAC names are path segments, not DNS names');
  });

  test('a ScaledObject with an unknown trigger field and an invalid enum is refused with its lines', async () => {
    const dir = folder({
      'so.yaml': scaledObject(`  - type: rabbitmq
    metdata:
      queueName: msgqueue
    metadata:
      queueName: msgqueue
      mode: QueueLength
      value: "5"
      host: amqp://guest:guest@rabbitmq:5672
    metricType: Avg
`),
    });
    const r = await checkCluster(dir);
    const unknown = r.errors.find((e) => /unknown field spec\.triggers\[0\]\.metdata/.test(e.message));
    assert.ok(unknown, errorsOf(r).join('\n'));
    assert.equal(unknown.line, 10);
    assert.match(unknown.message, /did you mean 'metadata'/);
    const enumDir = folder({ 'so.yaml': readFileSync(path.join(dir, 'so.yaml'), 'utf8').replace('    metdata:\n      queueName: msgqueue\n', '') });
    const r2 = await checkCluster(enumDir);
    const metricType = r2.errors.find((e) => /metricType must be one of 'AverageValue', 'Value', 'Utilization', got 'Avg'/.test(e.message));
    assert.ok(metricType, errorsOf(r2).join('\n'));
    assert.equal(metricType.line, 15);
  });

  test("a trigger's metadata is read as KEDA's scaler reads it; the KEDA 1.x API and qscale's own trigger are refused", async () => {
    const so = scaledObject;
    const bad = await checkCluster(folder({ 'so.yaml': so('  - type: rabbitmq\n    metadata:\n      queueName: msgqueue\n      mode: Depth\n      value: "5"\n      host: amqp://guest:guest@rabbitmq:5672\n') }));
    assert.match(errorsOf(bad).join('\n'), /so\.yaml:\d+: .*mode/, errorsOf(bad).join('\n'));
    const legacy = await checkCluster(folder({ 'so.yaml': so('  - type: azure-servicebus\n    metadata:\n      queueName: msgqueue\n', 'keda.k8s.io/v1alpha1') }));
    assert.match(errorsOf(legacy).join('\n'), /so\.yaml:1: ScaledObject consumer-scaler: keda\.k8s\.io\/v1alpha1 is KEDA 1\.x's API; a KEDA 2 cluster has no such CRD/);
    const embedded = await checkCluster(folder({ 'so.yaml': so('  - type: qscale-embedded\n    metadata:\n      queueName: msgqueue\n') }));
    assert.match(errorsOf(embedded).join('\n'), /so\.yaml:9: .*trigger 0 \(qscale-embedded\): this trigger type runs only under qscale; KEDA has no such scaler\. On a cluster: use the broker's own KEDA scaler/);
    const other = await checkCluster(folder({ 'so.yaml': so('  - type: cpu\n    metricType: Utilization\n    metadata:\n      value: "60"\n') }));
    assert.deepEqual(errorsOf(other), []);
    assert.ok(other.notes.some((n) => /trigger 0 \(cpu\): metadata not checked/.test(n)), other.notes.join('\n'));
  });

  test('a Component of a qscale-only type is refused with what to use on a cluster', async () => {
    const r = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.qscale.redis', '  - name: redisHost\n    value: redis:6379\n  - name: queueName\n    value: msgqueue\n') }));
    assert.equal(r.errors.length, 1, errorsOf(r).join('\n'));
    const e = r.errors[0]!;
    assert.equal(e.line, 6);
    assert.equal(e.field, 'spec.type');
    assert.match(e.message, /component message-queue \(bindings\.qscale\.redis\): this type runs only under qscale; a real daprd refuses to load it\. On a cluster: .*pubsub\.redis/);
    for (const [type, way] of [['bindings.qscale.nats-jetstream', /pubsub\.jetstream/], ['bindings.qscale.postgresql', /no PostgreSQL input binding.*bindings\.rabbitmq/], ['bindings.qscale.embedded', /bindings\.azure\.servicebusqueues or bindings\.rabbitmq/]] as const) {
      const x = await checkCluster(folder({ 'c.yaml': COMPONENT(type, '  - name: queueName\n    value: q\n') }));
      assert.match(errorsOf(x).join('\n'), way, type);
    }
  });

  test('a ScaledJob is checked with its jobTargetRef as a JobSpec; a Subscription against its CRD version', async () => {
    const r = await checkCluster(folder({
      'job.yaml': `apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: worker
spec:
  jobTargetRef:
    template:
      spec:
        restartPolicy: Never
        containers:
        - name: worker
          imagee: worker:1
  scalingStrategy:
    strategy: fastest
  triggers:
  - type: cpu
    metadata:
      value: "50"
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders
spec:
  pubsubname: pubsub
  topic: orders
  route: /orders
`,
    }));
    const msgs = errorsOf(r).join('\n');
    assert.match(msgs, /job\.yaml:12: ScaledJob worker: unknown field spec\.jobTargetRef\.template\.spec\.containers\[0\]\.imagee \(did you mean 'image'\?\)/);
    assert.match(msgs, /job\.yaml:14: ScaledJob worker: spec\.scalingStrategy\.strategy must be one of 'default', 'custom', 'accurate', 'eager'/);
    assert.match(msgs, /job\.yaml:\d+: Subscription orders: (missing required field spec\.routes|unknown field spec\.route)/);
  });

  test("a Component's secretKeyRef into a Secret of these files must name a key it has", async () => {
    const secret = `apiVersion: v1
kind: Secret
metadata:
  name: rabbitmq-connection
stringData:
  host: amqp://rabbitmq:5672
---
`;
    const ok = await checkCluster(folder({ 'c.yaml': secret + COMPONENT('bindings.rabbitmq', '  - name: host\n    secretKeyRef:\n      name: rabbitmq-connection\n      key: host\n  - name: queueName\n    value: q\n') }));
    assert.deepEqual(errorsOf(ok), []);
    const bad = await checkCluster(folder({ 'c.yaml': secret + COMPONENT('bindings.rabbitmq', '  - name: host\n    secretKeyRef:\n      name: rabbitmq-connection\n      key: url\n  - name: queueName\n    value: q\n') }));
    assert.match(errorsOf(bad).join('\n'), /c\.yaml:19: component message-queue \(bindings\.rabbitmq\): metadata host reads key 'url' of Secret rabbitmq-connection, which has no such key/);
    const elsewhere = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.rabbitmq', '  - name: host\n    secretKeyRef:\n      name: on-the-cluster\n      key: url\n  - name: queueName\n    value: q\n') }));
    assert.deepEqual(errorsOf(elsewhere), [], 'a Secret not in these files may exist on the cluster');
  });

  test('every qscale-only binding type of the registry has its way out', () => {
    const qscaleOnly = supportedBindingTypes().filter((t) => t.startsWith('bindings.qscale.'));
    assert.ok(qscaleOnly.length >= 4);
    for (const t of qscaleOnly) assert.ok(QSCALE_ONLY_TYPES[t], `${t} has no way out`);
  });

  test('concurrencyMode, which daprd reads for RabbitMQ and JetStream pub/sub though their metadata.yaml lists concurrency, is no unknown field; a value daprd refuses is pointed out', { timeout: 60_000 }, async () => {
    const rabbit = COMPONENT('pubsub.rabbitmq', '  - name: connectionString\n    value: amqp://rabbitmq:5672\n  - name: concurrencyMode\n    value: single\n  - name: consumerID\n    value: "{appID}"\n');
    const js = COMPONENT('pubsub.jetstream', '  - name: natsURL\n    value: nats://nats:4222\n  - name: concurrencyMode\n    value: parallel\n');
    for (const text of [rabbit, js]) {
      const r = await checkCluster(folder({ 'c.yaml': text }));
      assert.deepEqual(errorsOf(r), []);
      assert.deepEqual(r.warnings, [], 'no warning for concurrencyMode or consumerID');
    }
    const bad = await checkCluster(folder({ 'c.yaml': rabbit.replace('value: single', 'value: one') }));
    assert.equal(bad.warnings.length, 1, bad.warnings.join('\n'));
    assert.match(bad.warnings[0]!, /c\.yaml:\d+: component message-queue \(pubsub\.rabbitmq\): metadata concurrencyMode 'one' is not one of 'parallel', 'single'/);
    const cli = qscale(['validate', '--cluster', path.join(ROOT, 'examples', 'pubsub-rabbitmq')]);
    assert.doesNotMatch(cli.stdout + cli.stderr, /concurrencyMode/);
  });

  test("an unknown metadata field is a warning, not an error; a missing required one is an error", async () => {
    const warn = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.rabbitmq', '  - name: host\n    value: amqp://rabbitmq:5672\n  - name: queueName\n    value: msgqueue\n  - name: durabel\n    value: "true"\n  - name: ttlInSeconds\n    value: "60"\n  - name: Direction\n    value: input\n') }));
    assert.deepEqual(errorsOf(warn), []);
    assert.equal(warn.warnings.length, 1, warn.warnings.join('\n'));
    assert.match(warn.warnings[0]!, /c\.yaml:13: component message-queue \(bindings\.rabbitmq\): metadata 'durabel' is not a field of Dapr's bindings\.rabbitmq .*daprd ignores it \(did you mean 'durable'\?\)/);
    const cli = qscale(['validate', '--cluster', path.dirname(warn.entries[0]!.where.split(':')[0]!)]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /warning: .*'durabel'/);
    const missing = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.azure.servicebusqueues', '  - name: queueName\n    value: msgqueue\n') }));
    assert.match(errorsOf(missing).join('\n'), /no way to authenticate is complete; give one of Connection string: connectionString; or Azure AD: namespaceName/);
    const noQueue = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.azure.servicebusqueues', '  - name: namespaceName\n    value: ns.servicebus.windows.net\n') }));
    assert.match(errorsOf(noQueue).join('\n'), /missing required metadata 'queueName'/);
    const v2 = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.rabbitmq', '  - name: host\n    value: x\n').replace('dapr.io/v1alpha1', 'dapr.io/v2alpha1') }));
    assert.match(errorsOf(v2).join('\n'), /c\.yaml:1: Component message-queue: Dapr serves Component as dapr\.io\/v1alpha1, not dapr\.io\/v2alpha1/);
    const crd = await checkCluster(folder({ 'c.yaml': COMPONENT('bindings.rabbitmq', '  - name: host\n    valeu: x\n').replace('  version: v1\n', '') }));
    assert.match(errorsOf(crd).join('\n'), /c\.yaml:\d+: component message-queue: missing required field spec\.version/);
  });

  test('the run file is skipped with a note; a file or standard input can be checked too', async () => {
    const dir = folder({ 'dapr.yaml': 'version: 1\napps:\n  - appID: consumer\n', 'consumer.yaml': DEPLOYMENT.replace('replcas', 'replicas').replace('limts', 'limits') });
    const r = await checkCluster(dir);
    assert.deepEqual(errorsOf(r), []);
    assert.ok(r.notes.some((n) => /dapr\.yaml: skipped: the run file of `qscale up` is not a manifest/.test(n)), r.notes.join('\n'));
    const stdin = await checkCluster('-', { stdin: async () => DEPLOYMENT });
    assert.match(errorsOf(stdin).join('\n'), /^<stdin>:6: Deployment consumer: unknown field spec\.replcas/m);
    const list = await checkCluster('-', { stdin: async () => 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n  dta:\n    x: "1"\n' });
    assert.deepEqual(errorsOf(list), ["<stdin>:8: ConfigMap a: unknown field dta (did you mean 'data'?)"], 'a v1 List is applied item by item');
    const one = await checkCluster(path.join(dir, 'consumer.yaml'));
    assert.equal(one.entries.length, 1);
    const flags = qscale(['validate', '--cluster', '--embedded', dir]);
    assert.equal(flags.status, 2);
    assert.match(flags.stderr, /--cluster checks the manifests alone: --embedded does not apply/);
  });

  test('a kustomization is rendered as `kubectl apply -k` would, errors traced to the file and line they came from', { skip: noKubectl }, async () => {
    const dir = folder({
      'base/kustomization.yaml': 'resources:\n- consumer.yaml\n',
      'base/consumer.yaml': DEPLOYMENT,
      'overlay/kustomization.yaml': 'resources:\n- ../base\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: replace\n      path: /spec/template/spec/containers/0/image\n      value: 7\n',
      'overlay/dapr.yaml': 'version: 1\n',
    });
    const r = await checkCluster(path.join(dir, 'overlay'));
    const replicas = r.errors.find((e) => e.field === 'spec.replcas');
    assert.ok(replicas, errorsOf(r).join('\n'));
    assert.equal(replicas.file, path.join(dir, 'base/consumer.yaml'));
    assert.equal(replicas.line, 6);
    const image = r.errors.find((e) => e.field === 'spec.template.spec.containers[0].image');
    assert.ok(image, errorsOf(r).join('\n'));
    assert.match(image.message, /must be a string, got an integer \(quote it\) \(as the kustomization renders it\)/);
    assert.ok(r.notes.some((n) => /overlay\/dapr\.yaml: the run file of `qscale up`, left out of the kustomization/.test(n)), r.notes.join('\n'));
  });

  test('every example folder: the cluster examples pass, the qscale-only ones are refused with the way out', { skip: noKubectl }, async () => {
    const verdicts: Record<string, string> = {};
    for (const name of ['seed', 'seed/keda-v2', 'apps', 'azure-servicebus', 'rabbitmq', 'redis', 'postgresql', 'nats']) {
      const r = await checkCluster(path.join(ROOT, 'examples', name));
      verdicts[name] = r.errors.length === 0 ? 'passes' : r.errors.map((e) => e.message.replace(/^.*?On a cluster: /, '')).join(' | ');
    }
    assert.deepEqual(Object.fromEntries(Object.entries(verdicts).map(([k, v]) => [k, v === 'passes' ? v : 'refused'])), {
      seed: 'passes',
      'seed/keda-v2': 'passes',
      apps: 'passes',
      'azure-servicebus': 'passes',
      rabbitmq: 'passes',
      redis: 'refused',
      postgresql: 'refused',
      nats: 'refused',
    }, JSON.stringify(verdicts, null, 2));
    assert.match(verdicts.redis!, /pubsub\.redis/);
    assert.match(verdicts.nats!, /pubsub\.jetstream/);
    assert.match(verdicts.postgresql!, /bindings\.rabbitmq or bindings\.azure\.servicebusqueues/);
    // The seed's KEDA 1.x file alone is what a KEDA 2 cluster refuses; its kustomization takes keda-v2/ instead.
    const legacy = await checkCluster(path.join(ROOT, 'examples/seed/consumer-scaling.yaml'));
    assert.match(errorsOf(legacy).join('\n'), /keda\.k8s\.io\/v1alpha1 is KEDA 1\.x's API/);
    // Each refused example's README says it runs under qscale only.
    for (const name of ['redis', 'postgresql', 'nats']) {
      const readme = readFileSync(path.join(ROOT, 'examples', name, 'README.md'), 'utf8');
      assert.match(readme, /\blocal[- ]only\b/i, `examples/${name}/README.md says why it is local-only`);
    }
  });
});
