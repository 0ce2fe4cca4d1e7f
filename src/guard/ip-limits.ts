/** Per client-address state: open connections and a token bucket of upgrade attempts. */
interface AddressEntry {
  conns: number;
  tokens: number;
  /** ms timestamp of the last refill. */
  at: number;
}

/** The error code of a refused upgrade (protocol/codes.ts). */
export type AddressRefusal = 'too_many_connections_per_ip' | 'connect_rate_limited';

/**
 * Entries kept for addresses with no open connection (rate state only). Entries of addresses with open
 * connections are never dropped, and there are at most --max-connections of those, so the table holds
 * at most ADDRESS_TABLE_CAP + --max-connections entries (~150 bytes each).
 */
export const ADDRESS_TABLE_CAP = 65_536;
const SWEEP_EVERY_MS = 10_000;

/**
 * `--max-connections-per-ip` and `--connect-rate-per-ip`, as the upgrade guard consults them: once per
 * upgrade and once per close, never per message. AddressLimits for one thread, SharedAddressLimits
 * (shared-address-table.ts) for the worker threads of one process.
 */
export interface AddressLimiter {
  readonly enabled: boolean;
  /** Tracked addresses (gauge). */
  readonly size: number;
  /** Charges one upgrade attempt; the refusal when over a limit. Every attempt counts, refused or not. */
  admit(key: string, now: number): AddressRefusal | null;
  /** The connection limit alone, again right before an upgrade that waited completes. */
  room(key: string): AddressRefusal | null;
  opened(key: string, now: number): void;
  closed(key: string, now: number): void;
  stop(): void;
}

/** The burst of --connect-rate-per-ip: twice the rate at once, so a client reconnecting right after a drain is not refused. */
export const connectBurst = (ratePerSecond: number): number => ratePerSecond * 2;

/** One thread's table (a Map); with both limits off nothing is created or tracked. */
export class AddressLimits implements AddressLimiter {
  private readonly table = new Map<string, AddressEntry>();
  private readonly burst: number;
  private readonly sweeper: NodeJS.Timeout | null;

  constructor(
    private readonly maxConnections: number,
    private readonly ratePerSecond: number,
    private readonly cap = ADDRESS_TABLE_CAP,
  ) {
    this.burst = connectBurst(ratePerSecond);
    this.sweeper = ratePerSecond > 0 ? setInterval(() => this.sweep(Date.now()), SWEEP_EVERY_MS).unref() : null;
  }

  get enabled(): boolean {
    return this.maxConnections > 0 || this.ratePerSecond > 0;
  }

  get size(): number {
    return this.table.size;
  }

  admit(key: string, now: number): AddressRefusal | null {
    if (this.ratePerSecond > 0) {
      const e = this.entry(key, now);
      e.tokens = Math.min(this.burst, e.tokens + ((now - e.at) * this.ratePerSecond) / 1000);
      e.at = now;
      if (e.tokens < 1) return 'connect_rate_limited';
      e.tokens -= 1;
    }
    return this.room(key);
  }

  /** Others from the same address may have opened while an upgrade waited (token verification). */
  room(key: string): AddressRefusal | null {
    // Without a rate there is nothing to remember about an address until it holds a connection.
    return this.maxConnections > 0 && (this.table.get(key)?.conns ?? 0) >= this.maxConnections ? 'too_many_connections_per_ip' : null;
  }

  opened(key: string, now: number): void {
    const e = this.table.get(key);
    if (e !== undefined) e.conns++;
    else this.table.set(key, { conns: 1, tokens: this.burst, at: now });
  }

  closed(key: string, now: number): void {
    const e = this.table.get(key);
    if (e === undefined) return;
    e.conns--;
    if (e.conns <= 0 && this.idle(e, now)) this.table.delete(key);
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
  }

  /** No open connection and a bucket that would be full by now: the same as no entry. */
  private idle(e: AddressEntry, now: number): boolean {
    return e.conns <= 0 && (this.ratePerSecond === 0 || e.tokens + ((now - e.at) * this.ratePerSecond) / 1000 >= this.burst);
  }

  private entry(key: string, now: number): AddressEntry {
    let e = this.table.get(key);
    if (e === undefined) {
      if (this.table.size >= this.cap) this.makeRoom(now);
      e = { conns: 0, tokens: this.burst, at: now };
      this.table.set(key, e);
    }
    return e;
  }

  sweep(now: number): void {
    for (const [key, e] of this.table) if (this.idle(e, now)) this.table.delete(key);
  }

  /** At the cap: drop idle entries, then the oldest entries without connections (their buckets reset). */
  private makeRoom(now: number): void {
    this.sweep(now);
    for (const [key, e] of this.table) {
      if (this.table.size < this.cap) return;
      if (e.conns <= 0) this.table.delete(key);
    }
  }
}
