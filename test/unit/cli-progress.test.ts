import assert from 'node:assert/strict';
import { formatDuration, ProgressReporter, renderProgress } from '../../src/cli/progress';

describe('besh progress line', () => {
  it('renders the bar, percent, counts and ETA from counts and elapsed time', () => {
    // 450 of 1000 done in 9.818 s: the remaining 550 take 12 s at that rate.
    assert.equal(
      renderProgress({ total: 1000, completed: 447, failed: 3 }, 9818, 10),
      '[#####.....] 45% 450/1000 done, 3 failed, ETA 12s',
    );
    assert.equal(
      renderProgress({ total: 200, completed: 50, failed: 0 }, 30_000),
      '[#####...............] 25% 50/200 done, 0 failed, ETA 1m30s',
    );
  });

  it('shows ? before the first line is done, and never a full bar or 100% before the last', () => {
    assert.equal(
      renderProgress({ total: 20, completed: 0, failed: 0 }, 5000, 10),
      '[..........] 0% 0/20 done, 0 failed, ETA ?',
    );
    assert.equal(
      renderProgress({ total: 1000, completed: 999, failed: 0 }, 1000, 10),
      '[#########.] 99% 999/1000 done, 0 failed, ETA 1s',
    );
    assert.equal(
      renderProgress({ total: 20, completed: 17, failed: 3 }, 1000, 10),
      '[##########] 100% 20/20 done, 3 failed, ETA 0s',
    );
    assert.equal(
      renderProgress({ total: 0, completed: 0, failed: 0 }, 0, 4),
      '[....] 0% 0/0 done, 0 failed, ETA ?',
    );
  });

  it('formats durations for a person', () => {
    assert.deepEqual([400, 59_000, 60_000, 125_000, 3_599_000, 3_600_000, 3_720_000].map(formatDuration), [
      '1s',
      '59s',
      '1m00s',
      '2m05s',
      '59m59s',
      '1h00m',
      '1h02m',
    ]);
  });

  it('redraws one line in place on a terminal', () => {
    const out: string[] = [];
    const r = new ProgressReporter({ isTTY: true, write: (s) => out.push(s) }, () => 0);
    r.update('validating', { total: 0, completed: 0, failed: 0 });
    r.update('in_progress', { total: 4, completed: 2, failed: 0 });
    r.finish();
    assert.deepEqual(out, [
      '\rvalidating\x1b[K',
      '\rin_progress [##########..........] 50% 2/4 done, 0 failed, ETA ?\x1b[K',
      '\n',
    ]);
  });

  it('writes plain lines elsewhere: each status change at once, count changes at most every interval', () => {
    const out: string[] = [];
    let now = 0;
    const r = new ProgressReporter({ isTTY: false, write: (s) => out.push(s) }, () => now, 5000);
    const counts = (completed: number) => ({ total: 100, completed, failed: 0 });
    r.update('validating', { total: 0, completed: 0, failed: 0 });
    now = 1000;
    r.update('in_progress', counts(0)); // status changed: printed, and the clock for the ETA starts
    now = 2000;
    r.update('in_progress', counts(10)); // too soon after the last line
    now = 6000;
    r.update('in_progress', counts(10)); // the interval has passed and the counts moved
    now = 12_000;
    r.update('in_progress', counts(10)); // nothing changed
    now = 12_500;
    r.update('completed', counts(100));
    r.finish();
    assert.deepEqual(out, [
      'validating\n',
      'in_progress [....................] 0% 0/100 done, 0 failed, ETA ?\n',
      'in_progress [##..................] 10% 10/100 done, 0 failed, ETA 45s\n',
      'completed [####################] 100% 100/100 done, 0 failed, ETA 0s\n',
    ]);
  });
});
