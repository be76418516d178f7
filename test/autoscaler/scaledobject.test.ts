import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/components/manifests.js';
import { parseScaledObjects } from '../../src/autoscaler/scaledobject.js';
import { ConfigError } from '../../src/errors.js';
import { SEED_SCALEDOBJECT } from './fixtures.js';


function so(spec: string, extraMeta = ''): string {
  return `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer-scaler
${extraMeta}spec:
  scaleTargetRef:
    name: consumer
${spec}`;
}

const TRIGGER = `  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      messageCount: '5'
`;

function parse(text: string) {
  return parseScaledObjects(parseManifests(text, 'scaling.yaml'));
}

function rejects(text: string): ConfigError {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('scaledobject - defaults are KEDA\'s: polling 30, cooldown 300, initial cooldown 0, min 0, max 100, behavior unset', { timeout: 60_000 }, () => {
  const { scaledObjects } = parse(so(TRIGGER));
  const s = scaledObjects[0]!;
  assert.equal(s.target, 'consumer');
  assert.equal(s.pollingInterval, 30);
  assert.equal(s.cooldownPeriod, 300);
  assert.equal(s.initialCooldownPeriod, 0);
  assert.equal(s.minReplicaCount, 0);
  assert.equal(s.maxReplicaCount, 100);
  assert.equal(s.idleReplicaCount, undefined);
  assert.equal(s.fallback, undefined);
  assert.equal(s.behavior, undefined);
  assert.equal(s.triggers[0]!.metricType, 'AverageValue');
  assert.equal(s.paused, false);
  assert.equal(s.hpaName, 'keda-hpa-consumer-scaler');
});

test('scaledobject - the seed\'s legacy keda.k8s.io file is read as v2 with one notice', { timeout: 60_000 }, () => {
  const { scaledObjects, notices } = parse(SEED_SCALEDOBJECT);
  const s = scaledObjects[0]!;
  assert.equal(s.target, 'consumer');
  assert.equal(s.maxReplicaCount, 10);
  assert.deepEqual(s.triggers[0]!.metadata, { queueName: 'msgqueue', messageCount: '5' });
  assert.equal(s.triggers[0]!.authenticationRef?.name, 'trigger-auth-servicebus');
  assert.equal(s.triggers[0]!.authenticationRef?.kind, 'TriggerAuthentication');
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /^scaling\.yaml:1: ScaledObject bindingconsumer-scaler uses the KEDA 1\.x API keda\.k8s\.io\/v1alpha1/);
  assert.match(notices[0]!, /deploymentName → name/);
  assert.match(notices[0]!, /queueLength → messageCount/);
});

test('scaledobject - legacy file without scaleTargetRef takes the deploymentName label', { timeout: 60_000 }, () => {
  const text = SEED_SCALEDOBJECT.replace('  scaleTargetRef:\n    deploymentName: consumer\n', '');
  assert.equal(parse(text).scaledObjects[0]!.target, 'consumer');
});

test('scaledobject - every field is read: idle, fallback, behavior, annotations, trigger options', { timeout: 60_000 }, () => {
  const text = so(
    `  pollingInterval: 5
  cooldownPeriod: 60
  initialCooldownPeriod: 120
  idleReplicaCount: 0
  minReplicaCount: 2
  maxReplicaCount: 20
  fallback:
    failureThreshold: 3
    replicas: 6
    behavior: currentReplicasIfHigher
  advanced:
    restoreToOriginalReplicaCount: true
    horizontalPodAutoscalerConfig:
      name: my-hpa
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 10
          selectPolicy: Min
          policies:
          - type: Pods
            value: 30
            periodSeconds: 60
        scaleDown:
          tolerance: 50m
  triggers:
  - type: rabbitmq
    name: orders
    metricType: Value
    useCachedMetrics: true
    metadata:
      queueName: orders
      value: '10'
    authenticationRef:
      name: rabbit
      kind: ClusterTriggerAuthentication
`,
    `  annotations:
    autoscaling.keda.sh/paused-replicas: "3"
    autoscaling.keda.sh/paused-scale-in: "true"
`,
  );
  const s = parse(text).scaledObjects[0]!;
  assert.equal(s.pollingInterval, 5);
  assert.equal(s.cooldownPeriod, 60);
  assert.equal(s.initialCooldownPeriod, 120);
  assert.equal(s.idleReplicaCount, 0);
  assert.equal(s.minReplicaCount, 2);
  assert.equal(s.maxReplicaCount, 20);
  assert.deepEqual(s.fallback, { failureThreshold: 3, replicas: 6, behavior: 'currentReplicasIfHigher' });
  assert.equal(s.hpaName, 'my-hpa');
  assert.equal(s.restoreToOriginalReplicaCount, true);
  assert.deepEqual(s.behavior, {
    scaleUp: { stabilizationWindowSeconds: 10, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 30, periodSeconds: 60 }] },
    scaleDown: { tolerance: 0.05 },
  });
  const t = s.triggers[0]!;
  assert.equal(t.name, 'orders');
  assert.equal(t.metricType, 'Value');
  assert.equal(t.useCachedMetrics, true);
  assert.deepEqual(t.authenticationRef, { name: 'rabbit', kind: 'ClusterTriggerAuthentication' });
  assert.equal(s.paused, true);
  assert.equal(s.pausedReplicas, 3);
  assert.equal(s.pausedScaleIn, true);
  assert.equal(s.pausedScaleOut, false);
});

test('scaledobject - paused annotation: "true" pauses, "false" does not, anything unparsable pauses (as KEDA)', { timeout: 60_000 }, () => {
  const at = (v: string) => parse(so(TRIGGER, `  annotations:\n    autoscaling.keda.sh/paused: "${v}"\n`)).scaledObjects[0]!.paused;
  assert.equal(at('true'), true);
  assert.equal(at('false'), false);
  assert.equal(at('yes'), true);
});

const BAD: Array<[string, string, RegExp, number]> = [
  ['missing scaleTargetRef', so(TRIGGER).replace('  scaleTargetRef:\n    name: consumer\n', ''), /missing required field spec\.scaleTargetRef/, 5],
  ['missing triggers', so(''), /missing required field spec\.triggers/, 5],
  ['empty triggers', so('  triggers: []\n'), /spec\.triggers must have at least 1 item/, 8],
  ['trigger without type', so('  triggers:\n  - metadata:\n      a: b\n'), /missing required field spec\.triggers\[0\]\.type/, 9],
  ['trigger without metadata', so('  triggers:\n  - type: redis\n'), /missing required field spec\.triggers\[0\]\.metadata/, 9],
  ['metadata value not a string', so(TRIGGER.replace("'5'", '5')), /spec\.triggers\[0\]\.metadata\.messageCount must be a string, got 5 \(quote it: '5'\)/, 12],
  ['pollingInterval 0', so('  pollingInterval: 0\n' + TRIGGER), /spec\.pollingInterval must be at least 1, got 0/, 8],
  ['pollingInterval as text', so("  pollingInterval: '30'\n" + TRIGGER), /spec\.pollingInterval must be an integer, got '30' \(write it without quotes\)/, 8],
  ['maxReplicaCount 0', so('  maxReplicaCount: 0\n' + TRIGGER), /spec\.maxReplicaCount must be at least 1/, 8],
  ['negative cooldown', so('  cooldownPeriod: -1\n' + TRIGGER), /spec\.cooldownPeriod must be at least 0/, 8],
  ['min above max', so('  minReplicaCount: 5\n  maxReplicaCount: 3\n' + TRIGGER), /minReplicaCount \(5\) must be less than or equal to maxReplicaCount \(3\)/, 8],
  ['idle equal to min', so('  idleReplicaCount: 2\n  minReplicaCount: 2\n' + TRIGGER), /idleReplicaCount \(2\) must be less than minReplicaCount \(2\)/, 8],
  ['idle with min left at its default 0', so('  idleReplicaCount: 0\n' + TRIGGER), /idleReplicaCount \(0\) must be less than minReplicaCount \(0, its default\)/, 8],
  ['unknown field with a suggestion', so('  pollingIntervall: 5\n' + TRIGGER), /unknown field spec\.pollingIntervall \(did you mean 'pollingInterval'\?\)/, 8],
  ['fallback without replicas', so('  fallback:\n    failureThreshold: 3\n' + TRIGGER), /missing required field spec\.fallback\.replicas/, 8],
  ['fallback behavior not in the enum', so('  fallback:\n    failureThreshold: 3\n    replicas: 2\n    behavior: always\n' + TRIGGER), /spec\.fallback\.behavior must be one of 'static', 'currentReplicas'/, 11],
  ['fallback with only a cpu trigger', so("  fallback:\n    failureThreshold: 3\n    replicas: 2\n  triggers:\n  - type: cpu\n    metricType: Utilization\n    metadata:\n      value: '50'\n"), /fallback needs at least one trigger that is not cpu or memory/, 8],
  ['authenticationRef kind not in the enum', so(TRIGGER + '    authenticationRef:\n      name: x\n      kind: Secret\n'), /authenticationRef\.kind must be one of 'TriggerAuthentication', 'ClusterTriggerAuthentication'/, 15],
  ['authenticationRef without name', so(TRIGGER + '    authenticationRef:\n      kind: TriggerAuthentication\n'), /missing required field spec\.triggers\[0\]\.authenticationRef\.name/, 13],
  ['metricType Utilization on a queue trigger', so(TRIGGER.replace('    metadata:', '    metricType: Utilization\n    metadata:')), /metricType Utilization is only for cpu and memory triggers/, 10],
  ['duplicate trigger names', so(TRIGGER.replace('  - type', '  - name: q\n    type') + "  - name: q\n    type: redis\n    metadata:\n      listName: l\n"), /trigger name 'q' is used by triggers 0 and 1/, 14],
  ['policy type not Pods or Percent', so('  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          policies:\n          - type: Replicas\n            value: 4\n            periodSeconds: 15\n' + TRIGGER), /policies\[0\]\.type must be one of 'Pods', 'Percent'/, 13],
  ['policy period above 1800 s', so('  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          policies:\n          - type: Pods\n            value: 4\n            periodSeconds: 3600\n' + TRIGGER), /periodSeconds must be at most 1800/, 15],
  ['empty policy list', so('  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          policies: []\n' + TRIGGER), /behavior\.scaleUp\.policies must specify at least one policy/, 12],
  ['selectPolicy not in the enum', so('  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          selectPolicy: Fastest\n' + TRIGGER), /selectPolicy must be one of 'Max', 'Min', 'Disabled'/, 12],
  ['paused-replicas not a number', so(TRIGGER, '  annotations:\n    autoscaling.keda.sh/paused-replicas: "three"\n'), /paused-replicas must be a whole number of replicas, got 'three'/, 6],
  ['unsupported apiVersion', so(TRIGGER).replace('keda.sh/v1alpha1', 'keda.sh/v2'), /unsupported apiVersion 'keda\.sh\/v2' for ScaledObject/, 1],
];

for (const [name, text, message, line] of BAD) {
  test(`scaledobject - rejects ${name}, naming file, line and field`, { timeout: 60_000 }, () => {
    const err = rejects(text);
    assert.match(err.message, message);
    assert.match(err.message, /^scaling\.yaml:\d+: ScaledObject consumer-scaler: |^scaling\.yaml:\d+: unsupported/);
    assert.equal(err.line, line, err.message);
  });
}

test('scaledobject - legacy scaleType deployment is accepted, scaleType job refused', { timeout: 60_000 }, () => {
  const withType = (t: string) => SEED_SCALEDOBJECT.replace('  scaleTargetRef:\n', `  scaleType: ${t}\n  scaleTargetRef:\n`);
  assert.equal(parse(withType('deployment')).scaledObjects[0]!.target, 'consumer');
  const err = rejects(withType('job'));
  assert.match(err.message, /^scaling\.yaml:9: ScaledObject bindingconsumer-scaler: KEDA 1\.x scaleType 'job' is not supported locally/);
});

test('scaledobject - a name too long for the HPA name label is refused with the fix', { timeout: 60_000 }, () => {
  const long = 'c'.repeat(60);
  const err = rejects(so(TRIGGER).replace('name: consumer-scaler', `name: ${long}`));
  assert.match(err.message, new RegExp(`the HPA name 'keda-hpa-${long}' is 69 characters long; at most 63: set spec\\.advanced\\.horizontalPodAutoscalerConfig\\.name`));
  const ok = parse(so('  advanced:\n    horizontalPodAutoscalerConfig:\n      name: short\n' + TRIGGER).replace('name: consumer-scaler', `name: ${long}`));
  assert.equal(ok.scaledObjects[0]!.hpaName, 'short');
});

test('scaledobject - two ScaledObjects for one app are refused, naming the first', { timeout: 60_000 }, () => {
  const text = so(TRIGGER) + '---\n' + so(TRIGGER).replace('name: consumer-scaler', 'name: other');
  const err = rejects(text);
  assert.match(err.message, /the workload 'consumer' is already managed by the ScaledObject 'consumer-scaler' \(scaling\.yaml:1\)/);
});

test('scaledobject - idleReplicaCount 0 with minReplicaCount 0 written out passes, as KEDA\'s webhook counts min as 1', { timeout: 60_000 }, () => {
  const s = parse(so('  idleReplicaCount: 0\n  minReplicaCount: 0\n' + TRIGGER)).scaledObjects[0]!;
  assert.equal(s.idleReplicaCount, 0);
});
