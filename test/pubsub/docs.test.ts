import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PUBSUB_ERRORS, REASONS } from '../../src/sidecar/pubsub/errors.js';
import { ROOT } from '../sidecar/support.js';

test('docs - every pub/sub API error code and reason is documented in docs/pubsub.md', { timeout: 30_000 }, () => {
  const doc = readFileSync(path.join(ROOT, 'docs/pubsub.md'), 'utf8');
  assert.deepEqual([...Object.keys(PUBSUB_ERRORS), ...Object.values(REASONS)].filter((code) => !doc.includes(code)), []);
});
