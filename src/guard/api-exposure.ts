import { parseAddress } from './client-address';

/** Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean => {
  if (host === 'localhost') return true;
  const a = parseAddress(host);
  return a !== null && (a.family === 'ipv4' ? a.text.startsWith('127.') : a.text === '::1');
};

/**
 * Why `serve` must not start, or null. POST /publish (and every later server API route) writes to
 * every subscriber, so it must not be reachable without --api-key unless the operator says so: it is
 * unreachable from outside only when it lives on an --admin-port bound to a loopback address.
 */
export function openApiRefusal(c: { apiKey: string; apiInsecure: boolean; adminPort: number; adminHost: string }): string | null {
  if (c.apiKey !== '' || c.apiInsecure) return null;
  if (c.adminPort !== 0 && isLoopback(c.adminHost)) return null;
  const where = c.adminPort !== 0 ? `the admin listener ${c.adminHost}:${c.adminPort}` : 'the public port';
  return (
    `POST /publish would be reachable without an API key on ${where}. ` +
    'Set --api-key (WSGATE_API_KEY), or serve the API on a loopback --admin-port, or pass --api-insecure to run it open on purpose.'
  );
}
