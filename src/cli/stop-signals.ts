/**
 * How long after the first stop signal a repeat counts as the same request. One stop often arrives
 * twice within milliseconds: `npm start` passes on the SIGTERM/SIGINT it received itself, systemd
 * signals every process of the unit's control group, a terminal's Ctrl-C reaches npm and node alike.
 * Treating that echo as "stop now" cut drains short (7 of 8 sockets got 1006, not 1012; issue 21).
 */
export const REPEAT_GRACE_MS = 1000;

import type { Logger } from '../log';

export type StopSignal = 'SIGTERM' | 'SIGINT';

/** What a stop signal means given the signals before it. */
export type SignalVerdict = 'drain' | 'repeat' | 'exit_now';

/** Exit status of a stop cut short by a deliberate second signal (128 + signal number, as shells report). */
export const FORCED_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Classifies stop signals: the first starts the drain, one within REPEAT_GRACE_MS of the first is its echo
 * (ignored), any later one is deliberate and ends the process at once.
 */
export class StopSignals {
  private firstAt: number | null = null;

  constructor(
    private readonly graceMs = REPEAT_GRACE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  classify(): SignalVerdict {
    const t = this.now();
    if (this.firstAt === null) {
      this.firstAt = t;
      return 'drain';
    }
    return t - this.firstAt < this.graceMs ? 'repeat' : 'exit_now';
  }
}

/**
 * Listens for SIGTERM and SIGINT: the first calls `drain`, an echo within the grace period is logged and
 * ignored, a deliberate later one exits at once with FORCED_EXIT (one policy for serve and its workers).
 */
export function onStopSignals(log: Logger, drain: (signal: StopSignal) => void): void {
  const signals = new StopSignals();
  const onSignal = (signal: StopSignal): void => {
    const verdict = signals.classify();
    if (verdict === 'repeat') {
      log.info({ signal, graceMs: REPEAT_GRACE_MS }, 'stop signal repeated within the grace period (npm or systemd passing it on): still draining');
      return;
    }
    if (verdict === 'exit_now') {
      log.warn({ signal }, 'second stop signal: exiting now');
      process.exit(FORCED_EXIT[signal]);
    }
    drain(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
