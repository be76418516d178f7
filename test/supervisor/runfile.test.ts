import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseRunFile } from '../../src/supervisor/runfile.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/srv/app/dapr.yaml';

test('run file - the seed run file: apps, ports, env, resources relative to the file', { timeout: 60_000 }, () => {
  const r = parseRunFile(`version: 1
common:
  resourcesPath: ./components
  env:
    LOG: debug
apps:
  - appID: producer
    appDirPath: ../
    appPort: 5000
    daprHTTPPort: 3500
    command: ["node", "dist/apps/producer/main.js"]
  - appID: consumer
    appDirPath: ./consumer
    appPort: 6000
    command: ["node", "main.js"]
    env:
      WORK_MS: 5000
`, FILE);
  assert.equal(r.apps.length, 2);
  const [p, c] = r.apps;
  assert.equal(p!.appId, 'producer');
  assert.equal(p!.appDir, '/srv');
  assert.equal(p!.appPort, 5000);
  assert.equal(p!.daprHttpPort, 3500);
  assert.deepEqual(p!.resourcesPaths, ['/srv/app/components']);
  assert.deepEqual(c!.env, { LOG: 'debug', WORK_MS: '5000' });
  assert.equal(c!.appDir, path.resolve('/srv/app/consumer'));
});

test('run file - appID defaults to the folder name; resources default to the file’s folder', { timeout: 60_000 }, () => {
  const r = parseRunFile(`version: 1\napps:\n  - appDirPath: ./worker\n    command: [node, w.js]\n`, FILE);
  assert.equal(r.apps[0]!.appId, 'worker');
  assert.deepEqual(r.apps[0]!.resourcesPaths, ['/srv/app']);
});

test('run file - every error names the file, the line and the field', { timeout: 60_000 }, () => {
  const cases: Array<[string, RegExp]> = [
    ['version: 2\napps: []\n', /dapr\.yaml:1: unsupported run file version '2'/],
    ['version: 1\n', /dapr\.yaml:1: apps must be a non-empty list/],
    ['version: 1\napps:\n  - appID: a\n    command: [node]\n', /dapr\.yaml:3: apps\[0\] is missing appDirPath/],
    ['version: 1\napps:\n  - appID: a\n    appDirPath: .\n    command: node x.js\n', /dapr\.yaml:5: apps\[0\] \(a\): command must be a non-empty list of strings/],
    ['version: 1\napps:\n  - appID: a\n    appDirPath: .\n    command: [node]\n    appPort: 70000\n', /dapr\.yaml:6: apps\[0\] \(a\): appPort must be a port number/],
    ['version: 1\napps:\n  - {appID: a, appDirPath: ., command: [n]}\n  - {appID: a, appDirPath: ., command: [n]}\n', /dapr\.yaml:4: app id 'a' appears twice/],
    ['version: 1\napps:\n  - appID: a\n    appDirPath: .\n    command: [n]\n    env: [1]\n', /dapr\.yaml:6: env must be a mapping/],
    ['apps: [\n', /dapr\.yaml:\d+: invalid YAML/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseRunFile(text, FILE), (err: unknown) => err instanceof ConfigError && re.test(err.message), text);
  }
});

test('run file - unknown app fields are noticed, not fatal', { timeout: 60_000 }, () => {
  const r = parseRunFile('version: 1\napps:\n  - appID: a\n    appDirPath: .\n    command: [n]\n    replicas: 3\n', FILE);
  assert.match(r.notices[0]!, /dapr\.yaml:6: apps\[0\]\.replicas is not a run file field; ignored/);
});
