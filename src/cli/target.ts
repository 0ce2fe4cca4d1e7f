import { UsageError } from './args';

/**
 * Where `sub`/`pub` find the gateway. `--url` may name it in any of its forms (ws://, wss://, http://,
 * https://): the WebSocket URL keeps a path other than `/` (a custom --ws-path), the HTTP API is always
 * at the origin's root.
 */
export interface Target {
  /** For the WebSocket: ws:// or wss://, path /ws unless the URL named one. */
  readonly ws: URL;
  /** For the HTTP API: http:// or https:// origin. */
  readonly http: URL;
}

const TO_WS: Record<string, string> = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' };
const TO_HTTP: Record<string, string> = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' };

/** The gateway a bare `wsgate sub`/`pub` talks to: this host, on WSGATE_PORT (as `serve` reads it) or 8080. */
export function defaultUrl(env: NodeJS.ProcessEnv): string {
  return `ws://127.0.0.1:${env.WSGATE_PORT ?? '8080'}/ws`;
}

export function resolveTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--url ${url} is not a URL; expected e.g. ws://127.0.0.1:8080/ws or http://127.0.0.1:8080`);
  }
  const wsScheme = TO_WS[u.protocol];
  const httpScheme = TO_HTTP[u.protocol];
  if (wsScheme === undefined || httpScheme === undefined) {
    throw new UsageError(`--url ${url}: the scheme must be ws://, wss://, http:// or https://`);
  }
  const ws = new URL(u.href);
  ws.protocol = wsScheme;
  if (ws.pathname === '/') ws.pathname = '/ws';
  const http = new URL(u.origin);
  http.protocol = httpScheme;
  return { ws, http };
}
