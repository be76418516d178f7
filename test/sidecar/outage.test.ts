import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outage, type OutageLevel } from '../../src/sidecar/outage.js';

type Step = ['fail', string] | ['ok'] | ['wait', number];

function run(steps: Step[]): Array<[OutageLevel, string]> {
  let now = 1_000_000;
  const printed: Array<[OutageLevel, string]> = [];
  const outage = new Outage(
    { failing: (c) => `failing: ${c}`, changed: (c) => `now: ${c}`, recovered: (s) => `back after ${s} s` },
    (level, line) => printed.push([level, line]),
    () => now,
  );
  for (const step of steps) {
    if (step[0] === 'fail') outage.failed(step[1]);
    else if (step[0] === 'ok') outage.succeeded();
    else now += step[1];
  }
  return printed;
}

describe('outage report - one line per change, never one per retry', { timeout: 10_000 }, () => {
  const cases: Array<[string, Step[], Array<[OutageLevel, string]>]> = [
    ['working calls print nothing', [['ok'], ['ok']], []],
    ['the first failure is one error line', [['fail', 'connection refused']], [['error', 'failing: connection refused']]],
    ['the same cause again, a hundred times, prints nothing more', Array.from({ length: 100 }, (): Step => ['fail', 'connection refused']), [['error', 'failing: connection refused']]],
    ['a cause that differs only in numbers is the same cause', [['fail', 'no answer within 5000 ms (attempt 1)'], ['fail', 'no answer within 5001 ms (attempt 2)']], [['error', 'failing: no answer within 5000 ms (attempt 1)']]],
    ['another cause is one warning line', [['fail', 'connection refused'], ['fail', 'login refused'], ['fail', 'login refused']], [['error', 'failing: connection refused'], ['warn', 'now: login refused']]],
    ['recovery is one line with how long it lasted, once', [['fail', 'connection refused'], ['wait', 12_400], ['ok'], ['ok']], [['error', 'failing: connection refused'], ['info', 'back after 12 s']]],
    ['a failure after recovery is a new outage', [['fail', 'a'], ['ok'], ['fail', 'a']], [['error', 'failing: a'], ['info', 'back after 0 s'], ['error', 'failing: a']]],
  ];
  for (const [what, steps, expected] of cases) {
    it(`outage - ${what}`, () => {
      assert.deepEqual(run(steps), expected);
    });
  }

  it('outage - state names the latest cause and when the outage began', () => {
    let now = Date.parse('2026-12-01T10:00:00Z');
    const outage = new Outage({ failing: () => '', changed: () => '', recovered: () => '' }, () => undefined, () => now);
    assert.equal(outage.state, undefined);
    outage.failed('refused');
    now += 5000;
    outage.failed('timed out');
    assert.deepEqual(outage.state, { cause: 'timed out', since: '2026-12-01T10:00:00.000Z' });
    outage.succeeded();
    assert.equal(outage.state, undefined);
  });
});
