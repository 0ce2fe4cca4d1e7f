/** What happened when (member moves, watcher notices, webhooks, faults), to explain a failed invariant; bounded. */
export const trail: string[] = [];

export function note(line: string): void {
  if (trail.length < 200_000) trail.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
}
