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

export type LogFormat = 'auto' | 'json' | 'pretty';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
/** Fields every line carries that a person at a terminal does not need repeated. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'service', 'hostname', 'err']);

const fieldValue = (v: unknown): string => (typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v));

/**
 * One pino JSON line as `12:00:01.234 INFO  listening host=127.0.0.1 port=8080`, an error's stack
 * indented below. Hand-written rather than pino-pretty: a dozen lines against a dependency tree of its
 * own, for a handful of lines per run (startup, drain, warnings), never on a hot path.
 */
export function prettyLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = typeof o.level === 'number' ? o.level : 30;
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const name = LEVELS[level] ?? String(level);
  const tint = color ? COLORS[level] : undefined;
  const fields = Object.entries(o).filter(([k]) => !OMITTED.has(k)).map(([k, v]) => `${k}=${fieldValue(v)}`);
  const err = o.err as { message?: string; stack?: string } | undefined;
  const stack = err?.stack !== undefined ? `\n    ${err.stack.replace(/\n/g, '\n    ')}` : err?.message !== undefined ? ` err=${fieldValue(err.message)}` : '';
  return `${time} ${tint !== undefined ? `${tint}${name}\x1b[0m` : name} ${String(o.msg ?? '')}${fields.length > 0 ? '  ' + fields.join(' ') : ''}${stack}\n`;
}

/** `auto`: readable on a terminal, JSON otherwise (a supervisor, a pipe, a log collector). */
export const resolveLogFormat = (format: LogFormat, isTty: boolean): 'json' | 'pretty' => (format === 'auto' ? (isTty ? 'pretty' : 'json') : format);

/**
 * Logs on stdout: structured JSON, or (`pretty`) one readable line per entry; the level comes from
 * config. Every line passes through redactSecrets, whichever field a URL, query, header or error
 * message landed in.
 */
export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const options = { level, base: { service: 'wsgate', pid: process.pid }, hooks: { streamWrite: redactSecrets } };
  if (resolveLogFormat(format, process.stdout.isTTY === true) === 'json') return pino(options);
  const color = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
  return pino(options, { write: (line: string) => process.stdout.write(prettyLine(line, color)) });
}
