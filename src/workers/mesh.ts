import { Doorbell, RingReader, RingWriter, createRing } from './ring';

/** Bytes of one ring (one direction of one worker pair): room for a burst of large messages. */
export const RING_BYTES = 4 * 1024 * 1024;

/** The shared memory of every worker pair, created by the main thread. */
export interface MeshMemory {
  /** rings[from][to]; null on the diagonal. */
  readonly rings: (SharedArrayBuffer | null)[][];
  readonly bells: SharedArrayBuffer[];
}

export function createMesh(count: number, ringBytes = RING_BYTES): MeshMemory {
  const rings = Array.from({ length: count }, (_, from) => Array.from({ length: count }, (_, to) => (from === to ? null : createRing(ringBytes))));
  return { rings, bells: Array.from({ length: count }, () => Doorbell.create()) };
}

/** Fresh rings to and from worker `index` (it was replaced): what was in the old ones belonged to the dead one. */
export function renewPeer(mesh: MeshMemory, index: number, ringBytes = RING_BYTES): void {
  const count = mesh.bells.length;
  for (let other = 0; other < count; other++) {
    if (other === index) continue;
    (mesh.rings[index] as (SharedArrayBuffer | null)[])[other] = createRing(ringBytes);
    (mesh.rings[other] as (SharedArrayBuffer | null)[])[index] = createRing(ringBytes);
  }
  mesh.bells[index] = Doorbell.create();
}

/** What one worker receives: from which worker, the record's kind and id, its bytes. */
export type MeshVisitor = (from: number, kind: number, id: number, bytes: Buffer, start: number, len: number) => void;

/**
 * One worker's end of the mesh: a ring to and from every other worker. Writes are immediate; each
 * written-to peer's doorbell is rung once at the end of the event-loop turn (or of the drain that wrote
 * them), so a burst of publishes wakes a peer once and it drains them as one batch.
 */
export class MeshLink {
  private readonly writers: (RingWriter | null)[];
  private readonly readers: (RingReader | null)[];
  private readonly visits: ((kind: number, id: number, bytes: Buffer, start: number, len: number) => void)[];
  private readonly bells: Doorbell[];
  private readonly toRing: boolean[];
  private ringScheduled = false;
  /** While the loop drains: records written meanwhile are announced when it ends, not at setImmediate. */
  private draining = false;
  private open = false;
  private visitor: MeshVisitor = () => {};
  /** Records not written because the peer's ring was full (the peer is a slow node). */
  full = 0;

  constructor(
    readonly index: number,
    mesh: MeshMemory,
  ) {
    const count = mesh.bells.length;
    this.writers = mesh.rings[index]?.map((sab) => (sab === null ? null : new RingWriter(sab))) ?? [];
    this.readers = mesh.rings.map((row) => (row[index] ? new RingReader(row[index] as SharedArrayBuffer) : null));
    this.bells = mesh.bells.map((sab) => new Doorbell(sab));
    this.toRing = new Array<boolean>(count).fill(false);
    this.visits = this.readers.map((_, from) => (kind, id, bytes, start, len) => this.visitor(from, kind, id, bytes, start, len));
  }

  get count(): number {
    return this.bells.length;
  }

  /** Writes one record to `to`; false when its ring is full (counted). */
  write(to: number, kind: number, id: number, src: Buffer, len: number): boolean {
    const w = this.writers[to];
    if (w === null || w === undefined || !w.write(kind, id, src, len)) {
      this.full++;
      return false;
    }
    this.toRing[to] = true;
    if (!this.ringScheduled && !this.draining) {
      this.ringScheduled = true;
      setImmediate(this.ringBells);
    }
    return true;
  }

  private readonly ringBells = (): void => {
    this.ringScheduled = false;
    for (let i = 0; i < this.toRing.length; i++) {
      if (!this.toRing[i]) continue;
      this.toRing[i] = false;
      this.bells[i]?.ring();
    }
  };

  /** Starts receiving: every record from every peer goes to `visitor`, in order per peer. */
  start(visitor: MeshVisitor): void {
    this.visitor = visitor;
    this.open = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    const bell = this.bells[this.index] as Doorbell;
    while (this.open) {
      const seen = bell.value;
      this.draining = true;
      try {
        this.drain();
      } finally {
        this.draining = false;
      }
      // What the batch wrote (numbered messages, replies) is announced at once, before sleeping.
      if (!this.ringScheduled) this.ringBells();
      const wake = bell.wait(seen);
      if (wake === null) continue;
      await wake;
      bell.awake();
    }
  }

  /** Reads everything the peers wrote so far. */
  drain(): void {
    for (let from = 0; from < this.readers.length; from++) this.readers[from]?.drain(this.visits[from] as never);
  }

  /** Worker `index` was replaced: use the fresh rings to and from it. */
  replacePeer(index: number, out: SharedArrayBuffer, inbound: SharedArrayBuffer, bell: SharedArrayBuffer): void {
    this.writers[index] = new RingWriter(out);
    this.readers[index] = new RingReader(inbound);
    this.bells[index] = new Doorbell(bell);
  }

  close(): void {
    this.open = false;
    this.bells[this.index]?.ring();
  }
}
