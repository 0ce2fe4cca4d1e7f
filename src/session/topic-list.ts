/** Above this many topics a connection's list becomes a Set (linear search is cheaper below it). */
const LIST_MAX = 16;

/**
 * The topics one connection holds, sized for idle connections being most of a gateway's memory: one
 * topic is the string itself, a few are a small array, only many make a Set. Callers store the hub's
 * own topic string, so a name is never held once per connection.
 */
export class TopicList implements Iterable<string> {
  private items: string | string[] | Set<string> | null = null;

  get size(): number {
    const v = this.items;
    return v === null ? 0 : typeof v === 'string' ? 1 : Array.isArray(v) ? v.length : v.size;
  }

  has(topic: string): boolean {
    const v = this.items;
    return v === null ? false : typeof v === 'string' ? v === topic : Array.isArray(v) ? v.includes(topic) : v.has(topic);
  }

  /** Adds a topic not yet held (callers check has() first). */
  add(topic: string): void {
    const v = this.items;
    if (v === null) this.items = topic;
    else if (typeof v === 'string') this.items = [v, topic];
    else if (Array.isArray(v)) {
      if (v.length < LIST_MAX) v.push(topic);
      else this.items = new Set([...v, topic]);
    } else v.add(topic);
  }

  /** Removes a topic; false when it was not held. */
  delete(topic: string): boolean {
    const v = this.items;
    if (v === null) return false;
    if (typeof v === 'string') {
      if (v !== topic) return false;
      this.items = null;
      return true;
    }
    if (!Array.isArray(v)) return v.delete(topic);
    const i = v.indexOf(topic);
    if (i < 0) return false;
    v.splice(i, 1);
    if (v.length === 1) this.items = v[0] as string;
    return true;
  }

  *[Symbol.iterator](): Iterator<string> {
    const v = this.items;
    if (v === null) return;
    if (typeof v === 'string') yield v;
    else yield* v;
  }
}
