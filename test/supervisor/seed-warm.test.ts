/**
 * `qscale up` on the seed itself (examples/seed: its Kubernetes YAML and its run file, whose consumer fixes appPort
 * 6000), with the embedded queue: the consumer's first scale from zero is served by the standby sidecar started ahead
 * on the consumer's fixed port. Real processes throughout. Needs the seed's ports (5000, 6000) free on this machine;
 * when another program holds one, the test is skipped and says which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { portFree } from '../../src/supervisor/ports.js';
import { ROOT, copySeedManifests, startUp, tempFolder, writeFiles } from '../e2e/harness.js';

const SEED = path.join(ROOT, 'examples/seed');

/** The seed's run file, its appDirPath made absolute for a copy next to the seed's YAML in a temp folder. */
function seedRunFile(): string {
  const text = readFileSync(path.join(SEED, 'dapr.yaml'), 'utf8');
  assert.match(text, /appPort: 6000/, 'the seed consumer fixes appPort 6000');
  return text.replaceAll('appDirPath: ../../', `appDirPath: ${ROOT}`);
}

function argAfter(pid: number, flag: string): string | undefined {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

test('up - the seed: the first scale from zero adopts the standby sidecar waiting on the consumer\'s appPort 6000', { timeout: 150_000 }, async (t) => {
  const busy = [];
  for (const p of [5000, 6000]) if (!(await portFree(p))) busy.push(p);
  if (busy.length) {
    t.skip(`port ${busy.join(', ')} of the seed's run file is in use by another program on this machine`);
    return;
  }
  const folder = tempFolder('qscale-seed-warm-');
  copySeedManifests(folder);
  writeFiles(folder, { 'dapr.yaml': seedRunFile() });
  const up = await startUp(folder, ['--embedded', '--hpa-sync-period', '1s']);
  try {
    const before = await up.waitFor((s) => s.replicas.some((r) => r.appId === 'producer' && r.ready) && (s.warmSidecars ?? []).some((w) => w.appId === 'consumer'), 60_000, 'the producer Ready and a standby sidecar for the consumer');
    assert.equal(before.replicas.filter((r) => r.appId === 'consumer').length, 0, 'the consumer at 0 replicas');
    const standby = before.warmSidecars!.find((w) => w.appId === 'consumer')!;
    assert.equal(argAfter(standby.pid!, '--app-port'), '6000', 'the standby waits to dial the seed consumer\'s appPort');

    const res = await request('http://127.0.0.1:5000/MessageProducer', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: '*/*' },
      body: JSON.stringify({ count: 2, intervalMilliseconds: 0 }),
    });
    assert.equal(res.statusCode, 200, await res.body.text());
    const s = await up.waitFor((st) => st.replicas.some((r) => r.appId === 'consumer' && r.ready), 60_000, 'the first consumer replica Ready');
    const first = s.replicas.find((r) => r.appId === 'consumer' && r.ready)!;
    assert.equal(first.pids.sidecar, standby.pid, "the first replica's sidecar is the standby started ahead");
    assert.equal(first.name, standby.name);
    assert.equal(first.appPort, 6000);
    assert.match(readFileSync(`/proc/${first.pids.app!}/environ`, 'utf8'), /(^|\0)APP_PORT=6000(\0|$)/, 'the consumer app listens on 6000');
    await up.waitForLine(/Hello World -- Received at: .* -- Finished at: /, 60_000);
  } finally {
    await up.stop();
  }
});
