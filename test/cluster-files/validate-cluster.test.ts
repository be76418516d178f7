/**
 * `qscale validate --cluster` on what `kubectl apply -k` would send: every example's render passes as the API server,
 * the CRDs and daprd would take it, and every local-only example is refused for the binding type its README names.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXAMPLES, MAIN, QSCALE_ONLY_TYPE, ROOT, componentTypes, exampleNames, kustomizationDirs, renderText, requireKubectl } from './support.js';

function qscale(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('cluster files - qscale validate --cluster', { timeout: 300_000 }, () => {
  test('examples - every kustomization\'s render passes qscale validate --cluster', async (t) => {
    if (!requireKubectl(t)) return;
    const dirs = kustomizationDirs();
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'qscale-cluster-files-'));
    t.after(() => rmSync(tmp, { recursive: true, force: true }));
    for (const dir of dirs) {
      const into = mkdtempSync(path.join(tmp, `${dir.replace(/\//g, '_')}-`));
      writeFileSync(path.join(into, 'rendered.yaml'), await renderText(dir));
      const r = qscale(['validate', '--cluster', into]);
      assert.equal(r.status, 0, `kubectl kustomize examples/${dir} | qscale validate --cluster:\n${r.output}`);
    }
  });

  test('examples - a local-only example is refused by qscale validate --cluster, naming its qscale-only binding type', () => {
    const localOnly = exampleNames().filter((n) => !existsSync(path.join(EXAMPLES, n, 'kustomization.yaml')));
    assert.ok(localOnly.length > 0);
    for (const name of localOnly) {
      const types = componentTypes(name).filter((ty) => QSCALE_ONLY_TYPE.test(ty));
      const r = qscale(['validate', '--cluster', `examples/${name}`]);
      assert.notEqual(r.status, 0, `qscale validate --cluster examples/${name} passed:\n${r.output}`);
      for (const ty of types) assert.ok(r.output.includes(ty), `qscale validate --cluster examples/${name} does not name ${ty}:\n${r.output}`);
    }
  });
});
