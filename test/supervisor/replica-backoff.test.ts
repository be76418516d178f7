import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CRASH_BACKOFF_BASE_MS, crashBackoffBase, crashBackoffPolicy, planRestart, type BackoffEntry } from '../../src/supervisor/backoff.js';

/** Crashes `runMs` after each start, restarting when the plan says; returns the waits. */
function waits(crashes: number, runMs: number, policy = crashBackoffPolicy()): number[] {
  const out: number[] = [];
  let entry: BackoffEntry | undefined;
  let now = 0;
  for (let i = 0; i < crashes; i++) {
    now += runMs;
    const plan = planRestart(entry, now, now, policy);
    out.push(plan.waitMs);
    entry = plan.entry;
    now += plan.waitMs;
  }
  return out;
}

describe('crash back-off - the kubelet\'s CrashLoopBackOff', { timeout: 10_000 }, () => {
  it('crash back-off - first restart at once, then 10 s doubling, capped at 5 min', () => {
    assert.deepEqual(waits(10, 1000), [0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000]);
  });

  it('crash back-off - a replica that ran more than 10 min before crashing starts over', () => {
    const policy = crashBackoffPolicy();
    const p1 = planRestart(undefined, 0, 0, policy);
    const p2 = planRestart(p1.entry, 5_000, 5_000, policy);
    assert.equal(p2.waitMs, 10_000);
    const restartedAt = p2.entry.updatedAt;
    // Ran 10 min and a second: reset. Ran 9 min: the back-off keeps growing.
    assert.equal(planRestart(p2.entry, restartedAt + 601_000, restartedAt + 601_000, policy).waitMs, 0);
    assert.equal(planRestart(p2.entry, restartedAt + 540_000, restartedAt + 540_000, policy).waitMs, 20_000);
  });

  it('crash back-off - the wait counts from the exit, not from when the plan is made', () => {
    const policy = crashBackoffPolicy();
    const e = planRestart(undefined, 0, 0, policy).entry;
    assert.equal(planRestart(e, 1_000, 4_000, policy).waitMs, 7_000);
    assert.equal(planRestart(e, 1_000, 20_000, policy).waitMs, 0);
  });

  it('crash back-off - a shortened base keeps the shape (cap 30x, reset after 60x)', () => {
    assert.deepEqual(waits(8, 10, crashBackoffPolicy(100)), [0, 100, 200, 400, 800, 1600, 3000, 3000]);
    assert.deepEqual(crashBackoffPolicy(0), crashBackoffPolicy(CRASH_BACKOFF_BASE_MS), 'a nonsense base falls back to the kubelet\'s');
  });

  it('crash back-off - base: option, else QSCALE_CRASH_BACKOFF_MS, else 10 s', () => {
    assert.equal(crashBackoffBase(250, { QSCALE_CRASH_BACKOFF_MS: '50' }), 250);
    assert.equal(crashBackoffBase(undefined, { QSCALE_CRASH_BACKOFF_MS: '50' }), 50);
    assert.equal(crashBackoffBase(undefined, { QSCALE_CRASH_BACKOFF_MS: 'soon' }), CRASH_BACKOFF_BASE_MS);
    assert.equal(crashBackoffBase(undefined, {}), 10_000);
  });
});
