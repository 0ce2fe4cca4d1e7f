const NONE: readonly string[] = [];

/**
 * The first value of `name` in a raw query string (no `?`), exactly as `new URLSearchParams(query).get(name)`
 * gives it. Queries with nothing to decode (no `%`, no `+`: the usual `?topics=a,b&token=<JWT>`) are read
 * in place, which allocates only the value: a URLSearchParams is ~280 B of garbage per upgrade.
 */
export function queryValue(query: string, name: string): string | null {
  if (query.includes('%') || query.includes('+')) return new URLSearchParams(query).get(name);
  for (let start = 0; start <= query.length; ) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (query.startsWith(name, start)) {
      const after = start + name.length;
      if (after === end) return '';
      if (query.charCodeAt(after) === 0x3d /* = */) return query.slice(after + 1, end);
    }
    start = end + 1;
  }
  return null;
}

/** `a,b,,c` → `[a, b, c]`; no array is made for an absent or empty list. */
export function commaList(value: string | null): readonly string[] {
  if (value === null || value === '') return NONE;
  if (!value.includes(',')) return [value];
  const out: string[] = [];
  for (const item of value.split(',')) if (item !== '') out.push(item);
  return out;
}
