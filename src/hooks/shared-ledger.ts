import type { SharedMembership } from '../shared/membership-table';
import { LocalLedger, type OccupancyLedger } from './occupancy';

/**
 * Occupancy for the worker threads of one process (memory broker): the first subscriber on any worker
 * occupies a topic, the last one gone on every worker vacates it, once for the process. A topic the
 * shared table cannot hold (its window full) is decided by this worker alone, as a lone node does.
 */
export class SharedLedger implements OccupancyLedger {
  private readonly local = new LocalLedger();
  /** Topics this worker decides alone (bounded by the topics it has subscribers of). */
  private readonly alone = new Set<string>();

  constructor(private readonly table: SharedMembership) {}

  occupy(topic: string): boolean {
    if (this.alone.has(topic)) return this.local.occupy(topic);
    const first = this.table.occupy(topic);
    if (first !== null) return first;
    this.alone.add(topic);
    return this.local.occupy(topic);
  }

  vacate(topic: string): boolean {
    if (this.alone.has(topic)) return this.local.vacate(topic);
    return this.table.vacate(topic) ?? false;
  }

  confirmVacated(topic: string): boolean {
    if (!this.alone.has(topic)) return this.table.confirm(topic);
    const vacated = this.local.confirmVacated(topic);
    if (vacated) this.alone.delete(topic);
    return vacated;
  }

  reap(): string[] {
    return []; // a worker that dies is replaced, and its replacement drops its memberships (forgetWorker)
  }

  reoccupy(): boolean {
    return false; // the in-process broker is never away
  }

  async close(): Promise<void> {}
}
