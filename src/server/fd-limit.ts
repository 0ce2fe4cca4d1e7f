import { readFileSync } from 'node:fs';

/**
 * Descriptors kept free of WebSocket connections: stdio and the event loop's own (about 20 at rest),
 * the listen socket, broker connections (NATS 1, Redis up to 3), and about 100 HTTP requests in flight
 * (health checks, scrapes, POST /publish, refused upgrades being answered).
 */
export const FD_RESERVE = 128;

/** The soft open-files limit from /proc/self/limits; null where unknown (not Linux) or unlimited. */
export function openFilesLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return m === null || m[1] === 'unlimited' ? null : Number(m[1]);
}

/** The connection limit where the open-files limit is unknown (not Linux): the value before it was automatic. */
export const FALLBACK_MAX_CONNECTIONS = 100_000;

/** `--max-connections 0` (the default): as many as the open-files limit holds with FD_RESERVE to spare. */
export const autoMaxConnections = (fdLimit: number | null): number => (fdLimit === null ? FALLBACK_MAX_CONNECTIONS : Math.max(1, fdLimit - FD_RESERVE));

export interface ConnectionBudget {
  /** The connection limit in force: --max-connections, or lower when the open-files limit cannot hold it. */
  maxConnections: number;
  /** Set when the limit was lowered: what to tell the operator. */
  warning: string | null;
}

/**
 * Past the open-files limit, accept() fails with EMFILE, the listen socket stays readable and the
 * event loop spins while clients wait in the backlog (issue 16). So a --max-connections set above what
 * the descriptors can hold is lowered, with FD_RESERVE to spare: the upgrades beyond it get the
 * documented 503 while descriptors remain for HTTP and health checks.
 */
export function connectionBudget(configured: number, fdLimit: number | null): ConnectionBudget {
  if (fdLimit === null || configured + FD_RESERVE <= fdLimit) return { maxConnections: configured, warning: null };
  const maxConnections = autoMaxConnections(fdLimit);
  return {
    maxConnections,
    warning: `--max-connections ${configured} is over what the open-files limit ${fdLimit} allows: accepting at most ${maxConnections} connections (raise ulimit -n / LimitNOFILE=, see deploy/README.md#file-descriptors)`,
  };
}
