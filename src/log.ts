import pino from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs on stdout; the level comes from config. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'wsgate', pid: process.pid } });
}
