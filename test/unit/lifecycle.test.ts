import assert from 'node:assert/strict';
import {
  BATCH_STATUSES,
  canMove,
  CANCELLABLE_STATUSES,
  IllegalTransition,
  INITIAL_STATUS,
  isTerminal,
  RUNNING_STATUSES,
  sourcesOf,
  STAMP,
  TERMINAL_STATUSES,
  transition,
  UNFINISHED_STATUSES,
  type BatchStatus,
} from '../../src/batches/lifecycle';

/** Every status reachable from `from` by legal moves. */
function reachable(from: BatchStatus): Set<BatchStatus> {
  const seen = new Set<BatchStatus>([from]);
  const todo = [from];
  while (todo.length) {
    const s = todo.pop()!;
    for (const t of BATCH_STATUSES) {
      if (!canMove(s, t) || seen.has(t)) continue;
      seen.add(t);
      todo.push(t);
    }
  }
  return seen;
}

describe('batch lifecycle', () => {
  it('splits the statuses into unfinished and terminal, with running and cancellable inside unfinished', () => {
    assert.deepEqual([...UNFINISHED_STATUSES, ...TERMINAL_STATUSES].sort(), [...BATCH_STATUSES].sort());
    for (const s of [...RUNNING_STATUSES, ...CANCELLABLE_STATUSES, INITIAL_STATUS] as BatchStatus[])
      assert.ok(UNFINISHED_STATUSES.includes(s), s);
  });

  it('never leaves a terminal status, and every unfinished status can still end', () => {
    for (const s of TERMINAL_STATUSES) assert.deepEqual(sourcesOf(s).filter(isTerminal), [], s);
    for (const s of BATCH_STATUSES) {
      if (isTerminal(s)) assert.equal(reachable(s).size, 1, `${s} is final`);
      else assert.ok([...reachable(s)].some(isTerminal), `${s} can end`);
    }
  });

  it('reaches every status from the initial one', () => {
    assert.deepEqual([...reachable(INITIAL_STATUS)].sort(), [...BATCH_STATUSES].sort());
  });

  it('follows OpenAI: cancelled only through cancelling, completed only through finalizing', () => {
    assert.deepEqual(sourcesOf('cancelled'), ['cancelling']);
    assert.deepEqual(sourcesOf('completed'), ['finalizing']);
    assert.deepEqual(sourcesOf('in_progress'), ['validating']);
    assert.equal(canMove('finalizing', 'cancelling'), false, 'a finalizing batch is no longer cancellable');
  });

  it('refuses an illegal move with the statuses named, and returns the target of a legal one', () => {
    assert.equal(transition('validating', 'in_progress'), 'in_progress');
    assert.throws(
      () => transition('completed', 'in_progress'),
      (e: unknown) =>
        e instanceof IllegalTransition &&
        e.from === 'completed' &&
        /completed to in_progress/.test(e.message),
    );
    assert.throws(() => transition('validating', 'validating'), IllegalTransition);
  });

  it('stamps every status but the initial one with a field of its own', () => {
    const stamps = BATCH_STATUSES.map((s) => STAMP[s]).filter((f) => f !== null);
    assert.equal(STAMP[INITIAL_STATUS], null);
    assert.equal(new Set(stamps).size, BATCH_STATUSES.length - 1);
  });
});
