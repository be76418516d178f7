/**
 * How a replica starts: its app and its sidecar are started together (the sidecar never waits for the app's port, as
 * a pod's containers start together), so a scale from zero pays for one process start, not two in a row.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, embeddedComponent, fixture, only, waitUntil } from './replica-support.js';

/** An app that opens its port only once its sidecar's API answers: it deadlocks a supervisor that starts them in turn. */
const WAITS_FOR_SIDECAR = `
import http from 'node:http';
const sidecar = 'http://127.0.0.1:' + process.env.DAPR_HTTP_PORT + '/v1.0/healthz/outbound';
for (;;) {
  try {
    if ((await fetch(sidecar)).status === 204) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 20));
}
console.log('sidecar answered before the app listened');
http.createServer((req, res) => { req.resume(); req.on('end', () => res.end()); })
  .listen(Number(process.env.APP_PORT), '127.0.0.1', () => console.log('app listening on ' + process.env.APP_PORT));
process.on('SIGTERM', () => process.exit(0));
`;

describe('replica - start', { timeout: 120_000 }, () => {
  after(cleanup, { timeout: 60_000 });

  it('replica - the sidecar starts with the app, before the app opens its port: an app that waits for its sidecar gets Ready', { timeout: 60_000 }, async () => {
    const f = fixture(`  - appID: worker\n    appDirPath: ./\n    command: ["node", "waits.mjs"]\n`, { 'q.yaml': embeddedComponent('q', { queueName: 'start' }) });
    writeFileSync(path.join(f.folder, 'waits.mjs'), WAITS_FOR_SIDECAR);
    const d = f.deployment();
    await d.scaleTo(1);
    const spawned = only(d);
    assert.ok(spawned.pids.app !== undefined && spawned.pids.sidecar !== undefined, 'both processes exist once scaleTo resolved');
    await waitUntil('the replica Ready', () => only(d).ready, 45_000, f.logs);
    assert.ok(f.logs.output.some((l) => l.includes('sidecar answered before the app listened')), f.logs.all());
    await d.stopAll();
  });
});
