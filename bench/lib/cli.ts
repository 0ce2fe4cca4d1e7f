/** Minimal `--name value` / `--flag` parsing shared by the bench entry points. */
export function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
}

export function argNumber(argv: readonly string[], name: string, fallback: number): number {
  const v = argValue(argv, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} expects a number, got ${v}`);
  return n;
}

export function argFlag(argv: readonly string[], name: string): boolean {
  return argv.includes(`--${name}`);
}

/** Comma-separated `topics` query value → topic list. */
export function topicsFromQuery(q: string | null | undefined): string[] {
  return q ? q.split(',').filter((t) => t.length > 0) : [];
}
