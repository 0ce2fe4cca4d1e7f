import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BackoffOptions, backoffDelay, promptDelay } from '../src/client/sdk';

const o: BackoffOptions = { minDelayMs: 100, maxDelayMs: 30_000, baseDelayMs: 1000, promptDelayMs: 250 };

test('backoff: full jitter spans [min, base*2^attempt], never below min or above max', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const window = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** attempt);
    assert.equal(backoffDelay(attempt, o, () => 0), o.minDelayMs, `attempt ${attempt}: random 0 gives the floor`);
    assert.equal(backoffDelay(attempt, o, () => 0.999999), Math.round(Math.min(o.maxDelayMs, 0.999999 * window)), `attempt ${attempt}: top of window`);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(attempt, o);
      assert.ok(d >= o.minDelayMs && d <= Math.max(o.minDelayMs, window), `attempt ${attempt}: ${d} outside [${o.minDelayMs}, ${window}]`);
    }
  }
});

test('backoff: the window doubles per attempt and caps at max, also for huge attempt counts', () => {
  const top = (a: number) => backoffDelay(a, o, () => 1);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(top), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(top(5000), 30_000);
});

test('backoff: delays are spread (jitter), not lockstep', () => {
  const seen = new Set(Array.from({ length: 100 }, () => backoffDelay(6, o)));
  assert.ok(seen.size > 50, `only ${seen.size} distinct delays out of 100`);
});

test('prompt delay (after 1012/4008) stays within [0, promptDelayMs]', () => {
  assert.equal(promptDelay(o, () => 0), 0);
  assert.equal(promptDelay(o, () => 1), 250);
  for (let i = 0; i < 500; i++) {
    const d = promptDelay(o);
    assert.ok(d >= 0 && d <= 250, String(d));
  }
});
