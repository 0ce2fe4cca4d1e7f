/** One step of an ordered queue: a publish waiting for the application, or one queued behind it. */
export type Task = () => Promise<void> | void;

/**
 * Tasks run one at a time in arrival order, each possibly asynchronous (a proxy call). Bounded: push
 * answers false when `limit` tasks wait. `onIdle` runs when the last one is done, so its owner can drop
 * the queue and pay nothing while idle.
 */
export class TaskQueue {
  private readonly tasks: Task[] = [];
  private running = false;

  constructor(
    private readonly limit: number,
    private readonly onIdle: () => void,
  ) {}

  push(task: Task): boolean {
    if (this.tasks.length >= this.limit) return false;
    this.tasks.push(task);
    if (!this.running) void this.run();
    return true;
  }

  private async run(): Promise<void> {
    this.running = true;
    for (let task = this.tasks.shift(); task !== undefined; task = this.tasks.shift()) {
      try {
        await task();
      } catch {
        // A task reports its own failures; one that throws must not stall the tasks behind it.
      }
    }
    this.running = false;
    this.onIdle();
  }
}
