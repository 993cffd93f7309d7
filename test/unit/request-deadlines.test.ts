import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mock } from 'node:test';
import { DEADLINE_SLACK_MS, RequestDeadlines, type Abortable } from '../../activities/request-deadlines';

/** Records why it was aborted. */
class Request implements Abortable {
  reasons: Error[] = [];
  abort(reason: Error): void {
    this.reasons.push(reason);
  }
}

const TIMEOUT = 10_000;

describe('RequestDeadlines (fake timers)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('times a request out after its timeout, not before, and within the slack', () => {
    const deadlines = new RequestDeadlines(TIMEOUT);
    const request = new Request();
    deadlines.start(request, new AbortController().signal);

    mock.timers.tick(TIMEOUT - 1);
    assert.equal(request.reasons.length, 0, 'not before the timeout');
    mock.timers.tick(DEADLINE_SLACK_MS + 1);
    assert.equal(request.reasons.length, 1);
    assert.equal(request.reasons[0].name, 'TimeoutError');
  });

  it('times out the requests that share a timer together, and none that has ended', () => {
    const deadlines = new RequestDeadlines(TIMEOUT);
    const signal = new AbortController().signal;
    const [a, b, ended] = [new Request(), new Request(), new Request()];
    deadlines.start(a, signal);
    deadlines.start(b, signal);
    deadlines.end(deadlines.start(ended, signal));

    mock.timers.tick(TIMEOUT + DEADLINE_SLACK_MS);
    assert.deepEqual([a.reasons.length, b.reasons.length, ended.reasons.length], [1, 1, 0]);
  });

  it('aborts at once, with the reason, when the signal aborts; the others keep running', () => {
    const deadlines = new RequestDeadlines(TIMEOUT);
    const chunk = new AbortController();
    const other = new AbortController();
    const [a, b, c] = [new Request(), new Request(), new Request()];
    deadlines.start(a, chunk.signal);
    deadlines.start(b, chunk.signal);
    deadlines.start(c, other.signal);
    const reason = new Error('cancelled');

    chunk.abort(reason);

    assert.deepEqual([a.reasons, b.reasons, c.reasons], [[reason], [reason], []]);
  });

  it('aborts a request started on a signal that already aborted', () => {
    const deadlines = new RequestDeadlines(TIMEOUT);
    const chunk = new AbortController();
    const reason = new Error('halted');
    chunk.abort(reason);
    const request = new Request();
    deadlines.end(deadlines.start(request, chunk.signal));
    assert.deepEqual(request.reasons, [reason]);
  });

  it('listens once per signal, and stops listening once its requests have ended', () => {
    const deadlines = new RequestDeadlines(TIMEOUT);
    const chunk = new AbortController();
    const requests = Array.from({ length: 3 }, () => new Request());
    const tracked = requests.map((r) => deadlines.start(r, chunk.signal));
    assert.equal(getEventListeners(chunk.signal, 'abort').length, 1);
    for (const t of tracked) deadlines.end(t);
    assert.equal(getEventListeners(chunk.signal, 'abort').length, 0);

    chunk.abort(new Error('cancelled'));
    mock.timers.runAll();
    assert.deepEqual(
      requests.map((r) => r.reasons.length),
      [0, 0, 0],
    );
  });
});
