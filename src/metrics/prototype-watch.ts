/**
 * Notices prototype pollution: compares the own properties of the prototypes every plain value inherits
 * from against a snapshot taken at start. Runs only when read (scrape time), never on the message path.
 */
const WATCHED: readonly object[] = [Object.prototype, Array.prototype];

type Snapshot = Map<PropertyKey, PropertyDescriptor>;

function snapshot(target: object): Snapshot {
  const out: Snapshot = new Map();
  for (const key of Reflect.ownKeys(target)) out.set(key, Object.getOwnPropertyDescriptor(target, key) as PropertyDescriptor);
  return out;
}

function differs(a: PropertyDescriptor, b: PropertyDescriptor): boolean {
  return a.value !== b.value || a.get !== b.get || a.set !== b.set || a.writable !== b.writable || a.enumerable !== b.enumerable || a.configurable !== b.configurable;
}

export class PrototypeWatch {
  private readonly baseline = WATCHED.map(snapshot);

  /** Properties added, removed or replaced since construction, over all watched prototypes. */
  changes(): number {
    let n = 0;
    WATCHED.forEach((target, i) => {
      const before = this.baseline[i] as Snapshot;
      const now = snapshot(target);
      for (const [key, desc] of now) {
        const old = before.get(key);
        if (old === undefined || differs(old, desc)) n++;
      }
      for (const key of before.keys()) if (!now.has(key)) n++;
    });
    return n;
  }
}
