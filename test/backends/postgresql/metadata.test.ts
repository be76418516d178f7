import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { PostgresBackend } from '../../../src/backends/postgresql/backend.js';
import { postgresqlBackend } from '../../../src/backends/postgresql/index.js';
import { parseConnection } from '../../../src/backends/postgresql/connection.js';
import { component, ctx, PG_URL } from './support.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test('postgresql metadata - missing queueName names the component, the field and the file:line', { timeout: 60_000 }, () => {
  const err = configError(() => new PostgresBackend(component({ connectionString: PG_URL }), ctx()));
  assert.match(err.message, /^components\/queue\.yaml:\d+: component message-queue \(bindings\.qscale\.postgresql\): missing required metadata 'queueName'/);
});

test('postgresql metadata - a bad visibilityTimeoutInSec points at its own line', { timeout: 60_000 }, () => {
  const err = configError(() =>
    new PostgresBackend(component({ connectionString: PG_URL, queueName: 'q', visibilityTimeoutInSec: 'soon' }), ctx()),
  );
  // connectionString is metadata item 0 (line 9), queueName item 1 (line 11), visibilityTimeoutInSec item 2 (line 13)
  assert.equal(err.line, 13);
  assert.match(err.message, /metadata 'visibilityTimeoutInSec' must be an integer, got 'soon'/);
});

test('postgresql metadata - a table name that is not an identifier is refused', { timeout: 60_000 }, () => {
  const err = configError(() =>
    new PostgresBackend(component({ connectionString: PG_URL, queueName: 'q', table: 'x; DROP TABLE y' }), ctx()),
  );
  assert.match(err.message, /metadata 'table' must be a plain SQL identifier/);
  assert.equal(err.line, 13);
});

test('postgresql metadata - an unparsable connection string is reported without its content', { timeout: 60_000 }, () => {
  const err = configError(() =>
    new PostgresBackend(component({ connectionString: "host=x password='s3cret", queueName: 'q' }), ctx()),
  );
  assert.match(err.message, /metadata 'connectionString' is not valid/);
  assert.doesNotMatch(err.message, /s3cret/);
});

test('postgresql metadata - the queue name is kept for --embedded and the connection string is redacted', { timeout: 60_000 }, () => {
  const c = component({ connectionString: PG_URL, queueName: 'msgqueue' });
  assert.equal(postgresqlBackend.queueName(c), 'msgqueue');
  assert.deepEqual(postgresqlBackend.types, ['bindings.qscale.postgresql']);
  const redacted = postgresqlBackend.metadata.redact(c.metadata);
  assert.equal(redacted.connectionString, '***');
  assert.equal(redacted.queueName, 'msgqueue');
});

test('postgresql connection - keyword/value strings with quoted values, as KEDA builds them', { timeout: 60_000 }, () => {
  const c = parseConnection("host=db.local port=5433 user=app dbname=jobs sslmode=disable password='a b\\'c'");
  assert.equal(c.config.host, 'db.local');
  assert.equal(c.config.port, 5433);
  assert.equal(c.config.password, "a b'c");
  assert.equal(c.describe, 'app@db.local:5433/jobs');
  const u = parseConnection('postgres://app:pw@db.local:5433/jobs?sslmode=disable');
  assert.equal(u.describe, 'app@db.local:5433/jobs');
  assert.equal(u.password, 'pw');
});
