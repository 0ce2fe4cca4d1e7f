import { performance } from 'node:perf_hooks';

/**
 * One publish in TIMED_EVERY has its fan-out timed (wsgate_publish_fanout_duration_seconds). A publish
 * path that runs a few dozen times a second stays in V8's unoptimized tiers, where every clock read and
 * every fractional result is a new heap number: Node 20's performance.now() costs 88 B of heap per call
 * there (0 once optimized), and timing a publish (two reads, the difference, the histogram's bucket
 * search and sum) cost ~300 B of every publish; sampled, ~20 B on average.
 */
const TIMED_EVERY = 16; // a power of two: the turn wraps with a mask and stays a small integer
let turn = 0;

/** performance.now() for the one publish in TIMED_EVERY that is timed, else 0: when the publish entered the node. */
export function publishStart(): number {
  turn = (turn + 1) & (TIMED_EVERY - 1);
  return turn === 0 ? performance.now() : 0;
}

/** Wall-clock ms of a publish that entered at `startedAt` (publishStart's answer; now if it is not timed). */
export function publishWallTime(startedAt: number): number {
  return performance.timeOrigin + (startedAt > 0 ? startedAt : performance.now());
}
