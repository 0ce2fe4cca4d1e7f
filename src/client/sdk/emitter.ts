/** A minimal typed event emitter that works the same in browsers and Node (no EventEmitter import). */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners: { [K in keyof Events]?: Set<(value: Events[K]) => void> } = {};

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    const set = (this.listeners[event] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners[event];
    if (set === undefined) return;
    for (const listener of set) listener(value);
  }
}
