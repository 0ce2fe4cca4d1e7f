import type { Stats } from '../metrics/stats';

/**
 * The connection limit (--max-connections, lowered to what the open-files limit holds): open
 * connections plus upgrades still waiting for their admission. One process, one count, whichever
 * worker thread holds the connections.
 */
export interface ConnectionCount {
  /**
   * Whether the limit is reached. When not, a slot is held for this caller until the end of the current
   * task (the upgrade handler or admission continuation), by which time the connection has opened or
   * its upgrade is counted as waiting: two workers cannot both take the last slot.
   */
  full(): boolean;
  /** A connection opened (+1) or closed (−1); an upgrade started (+1) or stopped (−1) waiting. */
  add(delta: number): void;
}

/** One thread: the node's own stats are the count (the check and the open run in one turn). */
export function localConnectionCount(stats: Stats, max: number): ConnectionCount {
  return {
    full: () => stats.connections + stats.pendingUpgrades >= max,
    add: () => {},
  };
}

/** Cells of the process-wide count: connections + waiting upgrades + slots held by checks in progress. */
export const CONNECTION_COUNT_BYTES = 4;

/** Workers mode: one Int32 in shared memory, changed with Atomics by every worker. */
export class SharedConnectionCount implements ConnectionCount {
  private readonly cell: Int32Array;
  private readonly release = (): void => void Atomics.sub(this.cell, 0, 1);

  constructor(
    sab: SharedArrayBuffer,
    private readonly max: number,
  ) {
    this.cell = new Int32Array(sab, 0, 1);
  }

  full(): boolean {
    for (;;) {
      const held = Atomics.load(this.cell, 0);
      if (held >= this.max) return true;
      if (Atomics.compareExchange(this.cell, 0, held, held + 1) === held) break;
    }
    // uWS.js runs the microtask queue as each handler returns: the slot is given back right after the
    // connection it stood for was counted (opened, or waiting).
    queueMicrotask(this.release);
    return false;
  }

  add(delta: number): void {
    Atomics.add(this.cell, 0, delta);
  }

  /** The process's count (tests, metrics). */
  get value(): number {
    return Atomics.load(this.cell, 0);
  }
}
