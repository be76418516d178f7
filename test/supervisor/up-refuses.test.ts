/**
 * `qscale up` refuses to start, with the lines `qscale validate` prints, on anything validate reports: a run-file
 * command that does not exist, a component type no backend serves, a fixed port in use. Nothing is spawned.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, tempFolder, writeFiles } from '../e2e/harness.js';
import { consumerScaledObject, embeddedComponent, newMark, occupyPort, processesMarked, qscaleMarked } from './up-support.js';

const COMPONENT = embeddedComponent('jobs');
const KAFKA = embeddedComponent('jobs', 'audit', 'bindings.kafka');

function runFile(consumer: { command?: string; appPort?: number } = {}, producerPort?: number): string {
  return `version: 1
apps:
  - appID: producer
    appDirPath: ${ROOT}
${producerPort ? `    appPort: ${producerPort}\n` : ''}    command: ["node", "dist/apps/producer/main.js"]
  - appID: consumer
    appDirPath: ${ROOT}
${consumer.appPort ? `    appPort: ${consumer.appPort}\n` : ''}    command: ["${consumer.command ?? 'node'}", "dist/apps/consumer/main.js"]
`;
}

/** The lines a command printed as errors. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('qscale: '));
}

function noStack(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(stderr, /internal error/);
}

describe('up refuses what validate reports', { timeout: 120_000 }, () => {
  test('up and validate - a run-file command that does not exist: file:line and the command, exit 2, nothing started', () => {
    const dir = tempFolder('qscale-refuse-');
    writeFiles(dir, { 'queue.yaml': COMPONENT, 'dapr.yaml': runFile({ command: 'nodee' }) });
    const mark = newMark();
    const v = qscaleMarked(['validate', dir], mark);
    assert.equal(v.status, 2, v.stderr);
    const line = /^qscale: .*dapr\.yaml:8: app consumer: command 'nodee' cannot be started \('nodee' is not on PATH\): install it or fix apps\[1\]\.command$/m;
    assert.match(v.stderr, line);
    noStack(v.stderr);

    const u = qscaleMarked(['up', dir, '--embedded', '--data-dir', path.join(dir, '.qscale')], mark);
    assert.equal(u.status, 2, u.stderr);
    assert.match(u.stderr, line);
    noStack(u.stderr);
    assert.deepEqual(errorLines(u.stderr), errorLines(v.stderr), 'up says what validate says');
    assert.doesNotMatch(u.stdout, /producer:|try:/);
    assert.deepEqual(processesMarked(mark), [], 'no process left');
  });

  test('up and validate - a component type no backend serves: the same file:line line from both, nothing started', () => {
    const dir = tempFolder('qscale-refuse-');
    writeFiles(dir, {
      'queue.yaml': COMPONENT,
      'other.yaml': KAFKA,
      'dapr.yaml': runFile(),
    });
    const mark = newMark();
    const v = qscaleMarked(['validate', dir], mark);
    assert.equal(v.status, 2, v.stderr);
    assert.match(v.stderr, /^qscale: .*other\.yaml:\d+: component audit: unsupported binding type 'bindings\.kafka' \(supported: .*bindings\.rabbitmq.*\)$/m);
    const u = qscaleMarked(['up', dir, '--embedded', '--data-dir', path.join(dir, '.qscale')], mark);
    assert.equal(u.status, 2, u.stderr);
    noStack(u.stderr);
    assert.deepEqual(errorLines(u.stderr), errorLines(v.stderr));
    assert.deepEqual(processesMarked(mark), []);
  });

  test('up and validate - a fixed port in use: ERR_PORT_IN_USE naming the port and file:line, never a silent move', async () => {
    const busy = await occupyPort();
    try {
      const dir = tempFolder('qscale-refuse-');
      writeFiles(dir, { 'queue.yaml': COMPONENT, 'dapr.yaml': runFile({}, busy.port) });
      const mark = newMark();
      const v = qscaleMarked(['validate', dir, '--json'], mark);
      assert.equal(v.status, 2, v.stderr);
      const out = JSON.parse(v.stdout) as { ok: boolean; errors: Array<{ code: string; message: string; line: number; field: string }> };
      assert.equal(out.ok, false);
      assert.deepEqual(out.errors.map((e) => [e.code, e.line, e.field]), [['ERR_PORT_IN_USE', 5, 'apps[0].appPort']]);
      const u = qscaleMarked(['up', dir, '--embedded', '--data-dir', path.join(dir, '.qscale')], mark);
      assert.equal(u.status, 2, u.stderr);
      assert.match(u.stderr, new RegExp(`^qscale: .*dapr\\.yaml:5: app producer: appPort ${busy.port} is in use by another process: stop what listens there or change apps\\[0\\]\\.appPort$`, 'm'));
      noStack(u.stderr);
      assert.deepEqual(processesMarked(mark), []);
    } finally {
      await busy.close();
    }
  });

  test('validate - a trigger on a queue its app does not read is a warning said once: scaling could not drain it', () => {
    const dir = tempFolder('qscale-refuse-');
    writeFiles(dir, {
      'queue.yaml': COMPONENT,
      'scaling.yaml': consumerScaledObject(`type: qscale-embedded
    metadata:
      queueName: job
      messageCount: "5"
`),
      'dapr.yaml': runFile(),
    });
    const r = qscaleMarked(['validate', dir], newMark());
    assert.equal(r.status, 0, r.stderr);
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warning: '));
    assert.equal(warnings.length, 1, r.stdout);
    assert.match(warnings[0]!, /scaling\.yaml:\d+: ScaledObject consumer-scaler trigger 0 \(qscale-embedded\) watches queue 'job', but app consumer does not read it \(its input bindings read 'jobs' \(message-queue\)\)/);
  });

  test('validate - every problem at once, each with its own line', () => {
    const dir = tempFolder('qscale-refuse-');
    writeFiles(dir, {
      'queue.yaml': COMPONENT,
      'other.yaml': KAFKA,
      'dapr.yaml': runFile({ command: './missing.sh' }).replace(`appDirPath: ${ROOT}\n    command: ["node", "dist/apps/producer`, `appDirPath: ./nowhere\n    command: ["node", "dist/apps/producer`),
    });
    const r = qscaleMarked(['validate', dir, '--json'], newMark());
    assert.equal(r.status, 2, r.stderr);
    const out = JSON.parse(r.stdout) as { errors: Array<{ code: string; message: string }> };
    const codes = out.errors.map((e) => e.code).sort();
    assert.deepEqual(codes, ['ERR_COMMAND', 'ERR_COMMAND', 'ERR_CONFIG'], JSON.stringify(out.errors, null, 1));
    assert.ok(out.errors.some((e) => /dapr\.yaml:4: app producer: appDirPath .*nowhere does not exist: fix apps\[0\]\.appDirPath/.test(e.message)));
    assert.ok(out.errors.some((e) => /dapr\.yaml:8: app consumer: command '\.\/missing\.sh' cannot be started \(no executable file .*missing\.sh\)/.test(e.message)));
  });
});
