import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { API_ERRORS } from '../../src/sidecar/index.js';
import { redactSecrets } from '../../src/sidecar/redact.js';
import { ROOT, componentYaml, sidecarFor, tempDir, writeComponents } from './support.js';

describe('sidecar config - binding metadata read by the sidecar', { timeout: 60_000 }, () => {
  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['maxConcurrentHandlers -1', { maxConcurrentHandlers: '-1' }, /q\.yaml:\d+: component message-queue \(bindings\.qscale\.embedded\): metadata 'maxConcurrentHandlers' must be/],
  ];
  for (const [what, metadata, message] of bad) {
    it(`config - ${what} stops the start with an error naming file:line and field`, async () => {
      const dir = tempDir();
      writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'cfg', ...metadata }) });
      await assert.rejects(sidecarFor(dir), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('config - an unsupported binding type names the file and the supported types', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'x' }, 'bindings.nosuchbroker') });
    await assert.rejects(sidecarFor(dir), /q\.yaml:\d+: .*unsupported binding type 'bindings\.nosuchbroker'/);
  });
});

describe('sidecar config - secrets stay out of messages', { timeout: 60_000 }, () => {
  const meta = {
    connectionString: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abcDEF123+/=',
    host: 'amqp://guest:p%40ssw0rd@broker:5672',
    queueName: 'visible-queue',
  };
  const cases: Array<[string, string, string]> = [
    ['a connection string', `bad connection string ${meta.connectionString}`, 'bad connection string ***'],
    ['a URL password', `cannot connect to ${meta.host}`, 'cannot connect to amqp://guest:***@broker:5672'],
    ['a decoded URL password', 'auth failed for password p@ssw0rd', 'auth failed for password ***'],
    ['an unknown URL with a password', 'redis://u:other-secret@h:6379 refused', 'redis://u:***@h:6379 refused'],
    ['a plain value', 'queue visible-queue not found', 'queue visible-queue not found'],
  ];
  for (const [what, input, expected] of cases) {
    it(`redact - ${what}`, () => {
      assert.equal(redactSecrets(input, { metadata: meta }), expected);
    });
  }
});

describe('sidecar docs', { timeout: 60_000 }, () => {
  it('docs - every API error code is documented in docs/sidecar.md', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/sidecar.md'), 'utf8');
    const missing = Object.keys(API_ERRORS).filter((code) => !doc.includes(code));
    assert.deepEqual(missing, []);
  });
});
