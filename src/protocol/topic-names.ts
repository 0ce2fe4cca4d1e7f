/**
 * Topic names seen on the publish path, as strings, so a publish that names its topic in bytes does not
 * create a new string each time. A fixed direct-mapped table (a miss replaces the slot): bounded memory
 * whatever clients send, and the hit for a busy topic costs one hash and one compare.
 */
const SLOTS = 1024;

export class TopicNames {
  private readonly names: string[] = new Array<string>(SLOTS).fill('');

  /** The name held in bytes [start, end) (validated topic bytes: ASCII). */
  get(b: Buffer, start: number, end: number): string {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
    const slot = (h >>> 0) & (SLOTS - 1);
    const known = this.names[slot] as string;
    if (known.length === end - start) {
      let same = true;
      for (let i = 0; i < known.length && same; i++) same = known.charCodeAt(i) === b[start + i];
      if (same) return known;
    }
    const name = b.toString('latin1', start, end);
    this.names[slot] = name;
    return name;
  }
}
