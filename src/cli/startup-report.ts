import type { Config } from '../config/schema';
import { isLoopback } from '../guard/api-exposure';
import { parsePusherApps } from '../pusher/apps';

/** Shorter than this, a shared secret can be guessed or brute-forced offline (HMAC signatures). */
export const MIN_SECRET_LENGTH = 16;

/** Values copied from docs or examples rather than generated: `…`, `<key>`, `change-me`, `xxx`, `your-secret`. */
const PLACEHOLDER = /…|\.\.\.|^<.*>$|^(change[-_ ]?me|changeit|secret|password|xxx+|todo|example|test|app[-_]?(key|secret)|your[-_].*)$/i;

const weakness = (value: string, secret: boolean): string | null => {
  if (PLACEHOLDER.test(value)) return 'looks like a placeholder copied from an example';
  if (secret && value.length < MIN_SECRET_LENGTH) return `is shorter than ${MIN_SECRET_LENGTH} characters`;
  return null;
};

/**
 * Warnings about credentials that look copied or guessable (the value itself is never logged), and about
 * an open API on an address other machines can reach. Startup goes on: these are for the operator's eyes.
 */
export function startupWarnings(c: Config): string[] {
  const out: string[] = [];
  const check = (what: string, value: string, secret: boolean) => {
    const w = value === '' ? null : weakness(value, secret);
    if (w !== null) out.push(`${what} ${w}: generate one, e.g. openssl rand -hex 24`);
  };
  check('--api-key', c.apiKey, true);
  check('--jwt-secret', c.jwtSecret, true);
  check('--webhook-secret', c.webhookSecret, true);
  for (const app of parsePusherApps(c.pusherApps) ?? []) {
    check(`--pusher-apps: app ${app.id}'s key`, app.key, false);
    check(`--pusher-apps: app ${app.id}'s secret`, app.secret, true);
  }
  const apiHost = c.adminPort !== 0 ? c.adminHost : c.host;
  if (c.apiInsecure && c.apiKey === '' && !isLoopback(apiHost)) {
    out.push(`--api-insecure on ${apiHost}: anyone who can reach this machine can publish to every subscriber; set --api-key, or --host 127.0.0.1`);
  }
  return out;
}

/** Which front doors this node opens and where: one log line at startup. */
export function frontDoors(c: Config, port: number): Record<string, string> {
  const apps = parsePusherApps(c.pusherApps) ?? [];
  const api = c.adminPort !== 0 ? `${c.adminHost}:${c.adminPort}` : `${c.host}:${port}`;
  const auth = c.apiKey !== '' ? 'API key' : c.adminPort !== 0 && isLoopback(c.adminHost) ? 'no key, loopback only' : 'no key (--api-insecure)';
  return {
    websocket: `ws://${c.host}:${port}${c.wsPath}${c.clientPublish ? ' (clients may publish)' : ''}`,
    pusher: apps.length === 0 ? 'off' : `/app/<key>, ${apps.length} app${apps.length === 1 ? '' : 's'}`,
    httpApi: `http://${api}/publish, ${auth}`,
    page: c.page ? `http://${c.host}:${port}/` : 'off',
  };
}
