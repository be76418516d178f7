/**
 * The dashboard in a real browser: Debian's chromium (installed by .ci/run, never a downloaded build) driven by
 * playwright-core opens the dashboard of a running `qscale up` over a copy of the seed, sends 30 messages from the
 * form, and sees the consumer's replicas rise on the chart and in the table, the enqueue → ack latency drawn, and the
 * replicas fall back to 0; then the supervisor goes away (the page says its data is stale) and comes back on the same
 * address (the page recovers on its own).
 * The screenshot taken during the burst is docs/dashboard.png (rewritten with QSCALE_UPDATE_SCREENSHOT=1, or written
 * when missing). That run tells the seed's story: it sends the seed's burst of 50 instead of 30, and takes the
 * screenshot once the replicas have risen and the latency chart has values.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, copySeedManifests, runFile, startUp, tempFolder, writeFiles, type UpProcess } from '../e2e/harness.js';
import { consumerScaledObject, embeddedComponent } from '../supervisor/up-support.js';
import { closedPort } from '../support/brokers.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'docs/dashboard.png');
const UP_ARGS = ['--embedded', '--hpa-sync-period', '1s', '--downscale-stabilization', '5s', '--grace-period', '10s'];
/** The screenshot run sends the seed's burst (README: `qscale produce --count 50`); the test's own run sends 30. */
const WRITES_SCREENSHOT = process.env.QSCALE_UPDATE_SCREENSHOT === '1' || !existsSync(SCREENSHOT);
const BURST = WRITES_SCREENSHOT ? 50 : 30;

interface ChartData {
  x: number[]; ready: Array<number | null>; inFlight: Array<number | null>; desired: number[]; actual: number[]; processedPerSecond: Array<number | null>;
  latencyP50Ms: Array<number | null>; latencyP95Ms: Array<number | null>;
}

/** The seed's files with a short polling interval and cooldown, so the way back to 0 fits in a test. */
function seedCopy(): string {
  const folder = tempFolder('qscale-dashboard-');
  copySeedManifests(folder);
  const scaling = path.join(folder, 'consumer-scaling.yaml');
  const text = readFileSync(scaling, 'utf8');
  const patched = text.replace(/^ {2}minReplicaCount: 0$/m, '  pollingInterval: 1\n  cooldownPeriod: 5\n  minReplicaCount: 0');
  assert.notEqual(patched, text, "the seed's ScaledObject still sets minReplicaCount: 0 under spec");
  writeFileSync(scaling, patched);
  writeFiles(folder, { 'dapr.yaml': runFile({ WORK_MS: '3000' }) });
  return folder;
}

async function chart(page: Page, so: string): Promise<ChartData> {
  return page.evaluate((name) => (window as unknown as { qscaleDashboard: { chartData(n: string): ChartData } }).qscaleDashboard.chartData(name), so);
}

/** What the chart must show: its latest actual / desired replicas, the most actual replicas it drew, a latency drawn. */
interface ChartWant { actualLast?: number; desiredLast?: number; actualMaxAtLeast?: number; latencyDrawn?: boolean }

/** Waits until the chart's data, read from the page, shows what is wanted (the page's CSP allows no eval). */
async function waitForChart(page: Page, so: string, want: ChartWant, what: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction(([name, w]) => {
    const d = (window as unknown as { qscaleDashboard?: { chartData(n: string): ChartData | undefined } }).qscaleDashboard?.chartData(name);
    if (!d || d.actual.length === 0) return false;
    return (w.actualLast === undefined || d.actual[d.actual.length - 1] === w.actualLast)
      && (w.desiredLast === undefined || d.desired[d.desired.length - 1] === w.desiredLast)
      && (w.actualMaxAtLeast === undefined || Math.max(...d.actual) >= w.actualMaxAtLeast)
      && (w.latencyDrawn === undefined || d.latencyP50Ms.some((v) => v !== null) === w.latencyDrawn);
  }, [so, want] as const, { timeout, polling: 250 }).catch((err: unknown) => {
    throw new Error(`the chart never showed ${what}: ${(err as Error).message}`);
  });
}

/** True when Debian's chromium is there; otherwise fails under CI=true and marks the test skipped elsewhere. */
function requireChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `${CHROMIUM} is not installed (apt-get install -y chromium; .ci/run installs it)`;
  if (process.env.CI === 'true') assert.fail(`CI must provide the browser: ${reason}`);
  t.skip(reason);
  return false;
}

/** Debian's chromium, headless, with a fresh profile and nothing of its own on the network. */
async function openBrowser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), 'qscale-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
  });
}

describe('dashboard - in a real browser', { timeout: 600_000 }, () => {
  test(`dashboard - ${BURST} messages from the form: replicas rise on the chart and in the table, latency is drawn, then they fall back to 0; stale while the supervisor is away`, { timeout: 400_000 }, async (t) => {
    if (!requireChromium(t)) return;
    const folder = seedCopy();
    let up: UpProcess | undefined;
    let again: UpProcess | undefined;
    let browser: BrowserContext | undefined;
    try {
      up = await startUp(folder, UP_ARGS);
      // Printed once its form works: with the producer's address, after the producer started.
      const producer = await up.waitForLine(/^qscale \| producer:\s+http/, 120_000);
      const line = up.lines.find((l) => /^qscale \| dashboard:\s+http/.test(l)) ?? '';
      const at = (l: string): number => up!.lines.indexOf(l);
      assert.ok(at(line) > at(up.lines.find((l) => /producer \(app producer\): starting/.test(l))!) && at(line) < at(producer), `the dashboard line comes with the producer's: ${line}`);
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)![1]!;

      browser = await openBrowser();
      const page = browser.pages()[0] ?? (await browser.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      const offsite: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(url) && !r.url().startsWith('data:')) offsite.push(r.url());
      });
      await page.goto(url);

      await page.waitForFunction(() => ((window as unknown as { qscaleDashboard?: { scaledObjects(): string[] } }).qscaleDashboard?.scaledObjects().length ?? 0) > 0, undefined, { timeout: 30_000 });
      const so = 'bindingconsumer-scaler';
      await waitForChart(page, so, { actualLast: 0 }, 'the consumer at 0 replicas before any message');
      assert.equal(await page.locator('#replicas tbody tr[data-name^="consumer-"]').count(), 0, 'no consumer replica in the table before any message');
      // The dead-letter panel has read GET /dlq, which qscale up now serves (what the panel shows is its own business).
      await page.waitForFunction(() => !/not read yet/.test(document.querySelector('#dead-letters')?.textContent ?? 'not read yet'), undefined, { timeout: 15_000 });
      assert.doesNotMatch((await page.locator('#dead-letters').textContent()) ?? '', /cannot be read|not available/, 'GET /dlq answered');

      // Before any ack there is no latency to show, and the page says so.
      await page.getByText(/^Enqueue → ack latency: no ack with an enqueue time in the last 30 s$/).waitFor({ timeout: 15_000 });

      // Send the burst through the form: labels, not selectors, as a user finds them.
      await page.getByLabel('Messages', { exact: true }).fill(String(BURST));
      await page.getByLabel('Interval between messages (ms)').fill('0');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByRole('status').filter({ hasText: new RegExp(`^sent ${BURST} messages`) }).waitFor({ timeout: 60_000 });

      // Up on the chart and in the table.
      await waitForChart(page, so, { actualMaxAtLeast: 3 }, 'at least 3 actual replicas');
      await page.waitForFunction(() => document.querySelectorAll('#replicas tbody tr[data-name^="consumer-"]').length >= 3, undefined, { timeout: 60_000 });
      // The burst under way: the backlog has an estimate at the rate being measured.
      await page.getByText(/^backlog \d+ messages?, ~\d+s at [\d.]+ msg\/s$/).first().waitFor({ timeout: 60_000 });
      if (WRITES_SCREENSHOT) {
        // The seed's story in one picture: replicas risen to their peak, the latency of the first acks drawn.
        await waitForChart(page, so, { actualMaxAtLeast: 6, latencyDrawn: true }, 'at least 6 actual replicas and a latency drawn');
        await page.getByText(/^Enqueue → ack latency: p50 /).waitFor({ timeout: 60_000 });
        // One more sample, so the latest point of every line is on the chart.
        await page.waitForTimeout(1500);
      }
      await page.screenshot({ path: path.join(folder, 'dashboard.png'), fullPage: true });
      const during = await chart(page, so);
      assert.ok(Math.max(...during.desired) >= 3, `desired replicas rose too: ${during.desired.slice(-20).join(',')}`);
      assert.ok(Math.max(...during.ready.map((v) => v ?? 0)) > 0, 'the queue had messages waiting');
      const decisions = await page.locator('.decisions li').allTextContents();
      assert.ok(decisions.some((d) => /keda\s+0 → 1/.test(d)), `the activation is listed with its reason: ${decisions.join(' | ')}`);

      // And back to 0: the queue drained, the processed rate was seen, the table empties of consumers.
      await waitForChart(page, so, { actualLast: 0, desiredLast: 0, actualMaxAtLeast: 3 }, 'the replicas back at 0', 180_000);
      await page.waitForFunction(() => document.querySelectorAll('#replicas tbody tr[data-name^="consumer-"]').length === 0, undefined, { timeout: 60_000 });
      const end = await chart(page, so);
      assert.equal(end.ready.at(-1), 0, 'the queue is empty');
      assert.ok(Math.max(...end.processedPerSecond.map((v) => v ?? 0)) > 0, 'messages processed per second were drawn');
      // Enqueue → ack latency: each message waited in the queue and took the consumer's 3 s of work, so p50 and p95
      // are at least that (a lower bound, not a speed), p95 never below p50; the latest figures are in words too.
      const p50 = end.latencyP50Ms.filter((v): v is number => v !== null);
      const p95 = end.latencyP95Ms.filter((v): v is number => v !== null);
      assert.ok(p50.length > 0 && p95.length === p50.length, `latency p50 and p95 were drawn: ${p50.length} / ${p95.length}`);
      assert.ok(Math.min(...p50) >= 2990, `every p50 covers the 3 s of work: ${p50.slice(-10).join(',')}`);
      assert.ok(end.latencyP95Ms.every((v, i) => v === null || v >= (end.latencyP50Ms[i] ?? 0)), 'p95 ≥ p50 in every sample');
      assert.equal(await page.locator('.latency-notes').first().textContent(), '', 'the embedded queue gives every message its enqueue time: no "no enqueue time" line');
      assert.deepEqual(offsite, [], 'every request of the page went to the supervisor');
      assert.deepEqual(pageErrors, [], 'no script error on the page');

      // The supervisor goes away: the page says its data is stale; it comes back on the same address: the page recovers.
      assert.equal(await page.locator('#stale').isVisible(), false);
      const port = new URL(url).port;
      assert.equal(await up.stop(), 0);
      await page.getByText(/^data is stale since \d{2}:\d{2}:\d{2}: the supervisor at .* does not answer/).waitFor({ timeout: 30_000 });
      again = await startUp(folder, [...UP_ARGS, '--control-port', port]);
      await again.waitForLine(/dashboard:\s+http/, 120_000);
      await page.locator('#stale').waitFor({ state: 'hidden', timeout: 30_000 });

      const shot = path.join(folder, 'dashboard.png');
      assert.deepEqual([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the screenshot is a PNG');
      if (WRITES_SCREENSHOT) copyFileSync(shot, SCREENSHOT);
    } finally {
      await browser?.close().catch(() => undefined);
      await again?.stop();
      await up?.stop();
    }
  });

  test('dashboard - a trigger that cannot be read: its error in red with since when, and KEDA\'s Ready condition', { timeout: 180_000 }, async (t) => {
    if (!requireChromium(t)) return;
    const folder = tempFolder('qscale-dashboard-');
    writeFiles(folder, {
      'queue.yaml': embeddedComponent('jobs'),
      'scaling.yaml': consumerScaledObject(`type: rabbitmq
    metadata:
      protocol: amqp
      host: amqp://guest:guest@127.0.0.1:${await closedPort()}
      queueName: jobs
      mode: QueueLength
      value: "5"
`, '  pollingInterval: 1\n  cooldownPeriod: 1\n  minReplicaCount: 0\n  maxReplicaCount: 3\n'),
      'dapr.yaml': runFile({ WORK_MS: '0' }),
    });
    let up: UpProcess | undefined;
    let browser: BrowserContext | undefined;
    try {
      // Not --embedded: the trigger reads the RabbitMQ it names, which is not there.
      up = await startUp(folder, ['--hpa-sync-period', '1s']);
      const line = await up.waitForLine(/^qscale \| dashboard:\s+http/, 120_000);
      browser = await openBrowser();
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.goto(/(http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)![1]!);
      const error = page.locator('.facts li.error', { hasText: /^trigger 0 \(rabbitmq\) cannot be read: .*(ECONNREFUSED|connection refused).* \(since \d{2}:\d{2}:\d{2}\)$/ });
      await error.waitFor({ timeout: 60_000 });
      await page.locator('.facts li.error', { hasText: /^Ready False \(TriggerError\): / }).waitFor({ timeout: 30_000 });
      assert.doesNotMatch(await page.locator('.facts').first().textContent() ?? '', /guest:guest/, 'no credentials on the page');
    } finally {
      await browser?.close().catch(() => undefined);
      await up?.stop();
    }
  });
});
