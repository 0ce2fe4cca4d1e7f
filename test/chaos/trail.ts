/** What happened when in one run (member moves, watcher notices, webhooks, faults), to explain a failed invariant; bounded. */
export class Trail {
  readonly lines: string[] = [];

  note(line: string): void {
    if (this.lines.length < 200_000) this.lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  }
}
