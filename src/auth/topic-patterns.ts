/**
 * Topic permission patterns from token claims: an exact topic, a prefix ending in `*`
 * (`chat.*` matches `chat.room1`, not `chat`), or `*` alone. Compiled once per connection.
 */
export class TopicPatterns {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];
  private readonly all: boolean;

  constructor(patterns: readonly string[]) {
    let all = false;
    for (const p of patterns) {
      if (p === '*') all = true;
      else if (p.endsWith('*')) this.prefixes.push(p.slice(0, -1));
      else this.exact.add(p);
    }
    this.all = all;
  }

  static readonly any = new TopicPatterns(['*']);

  allows(topic: string): boolean {
    if (this.all || this.exact.has(topic)) return true;
    for (const prefix of this.prefixes) if (topic.length > prefix.length && topic.startsWith(prefix)) return true;
    return false;
  }
}
