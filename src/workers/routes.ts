/**
 * On a topic's owner worker: which other workers hold subscribers of it (they said so with an interest
 * record over the mesh). The owner sends a topic's numbered messages only to these. Bounded by the
 * topics with subscribers on other workers: an entry goes when its last worker withdraws.
 */
export class Routes {
  private readonly byTopic = new Map<string, number[]>();

  /** Workers to send `topic`'s messages to (empty: none). Do not keep or change the array. */
  of(topic: string): readonly number[] {
    return this.byTopic.get(topic) ?? NONE;
  }

  add(topic: string, worker: number): void {
    const list = this.byTopic.get(topic);
    if (list === undefined) this.byTopic.set(topic, [worker]);
    else if (!list.includes(worker)) list.push(worker);
  }

  remove(topic: string, worker: number): void {
    const list = this.byTopic.get(topic);
    if (list === undefined) return;
    const i = list.indexOf(worker);
    if (i < 0) return;
    if (list.length === 1) this.byTopic.delete(topic);
    else list.splice(i, 1);
  }

  /** Worker `worker` was replaced: its subscribers are gone with it. */
  dropWorker(worker: number): void {
    for (const topic of [...this.byTopic.keys()]) this.remove(topic, worker);
  }

  get size(): number {
    return this.byTopic.size;
  }

  clear(): void {
    this.byTopic.clear();
  }
}

const NONE: readonly number[] = [];
