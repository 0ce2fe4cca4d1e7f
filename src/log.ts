import pino from 'pino';

export type Logger = pino.Logger;

// What must never reach a log line: `token=` values (query strings, form bodies), Authorization
// credentials, anything shaped like a compact JWT, and passwords in URLs (user:pass@host).
const SECRETS: readonly [RegExp, string][] = [
  [/(token=)[^&\s"'\\]+/gi, '$1[redacted]'],
  [/\b(Bearer|Basic)\s+[^\s"'\\]+/gi, '$1 [redacted]'],
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted jwt]'],
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s"']+@/gi, '$1[redacted]@'],
];

/** Removes token values and credentials from text bound for a log. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRETS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * Structured JSON logs on stdout; the level comes from config. Every line passes through
 * redactSecrets, whichever field a URL, query, header or error message landed in.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'wsgate', pid: process.pid }, hooks: { streamWrite: redactSecrets } });
}
