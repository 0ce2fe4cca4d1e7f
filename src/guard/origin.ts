/**
 * The Origin policy of WebSocket upgrades. Browsers always send `Origin`; other clients usually do not,
 * and nothing stops them from sending any value, so the policy protects browser users (a page on another
 * site cannot open a socket with their credentials), not the gateway itself.
 */
type OriginRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'exact'; readonly origin: string }
  | { readonly kind: 'subdomain'; readonly scheme: string; readonly suffix: string; readonly port: string };

/** scheme://host[:port] with nothing after it; host may be an [IPv6] literal. */
const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^/:?#[\]@\s]+)(?::(\d{1,5}))?$/;
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };

interface OriginParts {
  readonly scheme: string;
  readonly host: string;
  /** '' for the scheme's default port. */
  readonly port: string;
}

function split(text: string): OriginParts | null {
  const m = ORIGIN.exec(text.trim().toLowerCase());
  if (m === null) return null;
  const scheme = m[1] as string;
  const port = m[3] ?? '';
  return { scheme, host: m[2] as string, port: port === DEFAULT_PORTS[scheme] ? '' : port };
}

const joined = (p: OriginParts): string => `${p.scheme}://${p.host}${p.port === '' ? '' : ':' + p.port}`;

/** Parses `--allowed-origins`; null when an entry is malformed. '' is an empty list. */
export function parseOrigins(list: string): OriginRule[] | null {
  const rules: OriginRule[] = [];
  for (const entry of list.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    if (entry === '*') {
      rules.push({ kind: 'any' });
      continue;
    }
    const wildcard = entry.includes('://*.');
    const parts = split(wildcard ? entry.replace('://*.', '://') : entry);
    if (parts === null || parts.host.includes('*')) return null;
    rules.push(wildcard ? { kind: 'subdomain', scheme: parts.scheme, suffix: '.' + parts.host, port: parts.port } : { kind: 'exact', origin: joined(parts) });
  }
  return rules;
}

export class OriginPolicy {
  private constructor(private readonly rules: readonly OriginRule[]) {}

  static fromConfig(list: string): OriginPolicy {
    return new OriginPolicy(parseOrigins(list) ?? []);
  }

  /**
   * No Origin (not a browser): allowed. An Origin naming the host the request was sent to (the built-in
   * page, served by this gateway): allowed. Else it must match an entry.
   */
  allows(origin: string, host: string): boolean {
    if (origin === '') return true;
    const o = split(origin);
    // "null" (sandboxed frames, file://) and anything unparsable match only `*`.
    if (o === null) return this.rules.some((r) => r.kind === 'any');
    const own = split(`${o.scheme}://${host}`);
    if (own !== null && own.host === o.host && own.port === o.port) return true;
    const text = joined(o);
    return this.rules.some((r) => {
      switch (r.kind) {
        case 'any':
          return true;
        case 'exact':
          return r.origin === text;
        case 'subdomain':
          return r.scheme === o.scheme && r.port === o.port && o.host.endsWith(r.suffix);
      }
    });
  }
}
