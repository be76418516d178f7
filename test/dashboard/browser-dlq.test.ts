/**
 * The dashboard's dead-letter panel in a real browser (Debian's chromium through playwright-core, as
 * browser.test.ts drives it): a message the consumer refuses appears in the panel with the app's answer; once the
 * app accepts, its "requeue" button sends it back and the consumer processes it; "purge" asks first, then deletes.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { queueBackend, startUp, tempFolder, writeFiles, type UpProcess } from '../e2e/harness.js';
import { componentYaml } from '../sidecar/support.js';
import { refusingConsumerRunFile } from '../dlq/support.js';

const CHROMIUM = '/usr/bin/chromium';

function chromiumThere(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `${CHROMIUM} is not installed (apt-get install -y chromium; .ci/run installs it)`;
  if (process.env.CI === 'true') assert.fail(`CI must provide the browser: ${reason}`);
  t.skip(reason);
  return false;
}

function system(accept: string): string {
  const folder = tempFolder('qscale-dashboard-dlq-');
  writeFiles(folder, {
    'binding.yaml': componentYaml('message-queue', { queueName: 'orders', maxDeliveryCount: '1' }),
    'dapr.yaml': refusingConsumerRunFile(accept),
  });
  return folder;
}

async function send(up: UpProcess, id: string): Promise<void> {
  const b = await queueBackend(up.folder, up.dataDir, false);
  try {
    await b.send(Buffer.from(JSON.stringify({ id })), {});
  } finally {
    await b.close();
  }
}

describe('dashboard dead letters - in a real browser', { timeout: 400_000 }, () => {
  test('dashboard dlq - a refused message appears with the app\'s answer; "requeue" sends it back and it is processed; "purge" asks, then deletes', { timeout: 300_000 }, async (t) => {
    if (!chromiumThere(t)) return;
    const accept = path.join(mkdtempSync(path.join(os.tmpdir(), 'qscale-accept-')), 'accept');
    const folder = system(accept);
    let up: UpProcess | undefined;
    let browser: BrowserContext | undefined;
    try {
      up = await startUp(folder);
      await up.waitForLine(/reading input binding message-queue/, 120_000);
      const url = (JSON.parse(readFileSync(path.join(up.dataDir, 'supervisor.json'), 'utf8')) as { controlUrl: string }).controlUrl;

      browser = await chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), 'qscale-chromium-')), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 1000 },
      });
      const page = browser.pages()[0] ?? (await browser.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${url}/`);
      const panel = page.locator('#dead-letters');
      await panel.getByText('no dead letters', { exact: true }).waitFor({ timeout: 30_000 });

      // Refused once (maxDeliveryCount 1): a dead letter, in the panel with the app's status and answer.
      await send(up, 'poison-1');
      const row = panel.locator('#dlq-table tbody tr').filter({ hasText: 'app answered 500: {"error":"bad order poison-1"}' });
      await row.waitFor({ timeout: 60_000 });
      const cells = await row.locator('td, th').allTextContents();
      assert.equal(cells[0], 'message-queue', 'its binding');
      assert.equal(cells[2], '1', 'its deliveries');
      assert.notEqual(cells[4], '—', 'when it was dead-lettered');

      writeFileSync(accept, '');
      await row.getByRole('button', { name: 'requeue' }).click();
      await panel.getByRole('status').filter({ hasText: /^requeued 1 dead letter at / }).waitFor({ timeout: 30_000 });
      await up.waitForLine(/processed poison-1 /, 60_000);
      await panel.getByText('no dead letters', { exact: true }).waitFor({ timeout: 30_000 });
      assert.equal(up.countLines(/processed poison-1 /), 1, 'processed once');

      // Purge: the page asks first; declined, nothing happens; accepted, the dead letter is gone for good.
      rmSync(accept);
      await send(up, 'poison-2');
      const row2 = panel.locator('#dlq-table tbody tr').filter({ hasText: 'bad order poison-2' });
      await row2.waitFor({ timeout: 60_000 });
      const asked: string[] = [];
      page.once('dialog', (d) => {
        asked.push(d.message());
        void d.dismiss();
      });
      await row2.getByRole('button', { name: 'purge' }).click();
      await page.waitForTimeout(500);
      assert.equal(asked.length, 1, 'purge asks first');
      assert.match(asked[0] ?? '', /purge dead letter .*deleted for good/);
      assert.equal(await row2.count(), 1, 'declined: still there');
      page.once('dialog', (d) => void d.accept());
      await row2.getByRole('button', { name: 'purge' }).click();
      await panel.getByRole('status').filter({ hasText: /^purged 1 dead letter at / }).waitFor({ timeout: 30_000 });
      await panel.getByText('no dead letters', { exact: true }).waitFor({ timeout: 30_000 });
      assert.equal(up.countLines(/processed poison-2 /), 0, 'purged, never processed');
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser?.close();
      if (up) await up.stop();
    }
  });
});
