import { createServer } from 'node:net';
import type { ListenOptions, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Logger } from '../log';

/** Exit code of `serve` when a port cannot be bound (documented in README "Lifecycle"). */
export const EXIT_CANNOT_LISTEN = 3;

/** A port this process could not bind, with the reason in words (errors are values with stable codes). */
export class ListenError extends Error {
  readonly code = 'cannot_listen';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly errno: string,
    what: string,
  ) {
    super(`cannot listen on ${host}:${port} (${what}): ${describeErrno(errno, port, what)}`);
  }
}

/**
 * Starts a server (one gateway, or the workers' acceptor) and answers its port; a port it cannot bind is
 * logged as fatal and the process exits with EXIT_CANNOT_LISTEN once `close` has released what started.
 */
export async function startOrExit(start: () => Promise<number>, close: () => Promise<void>, log: Logger): Promise<number> {
  try {
    return await start();
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    log.fatal(e.message);
    await close();
    return process.exit(EXIT_CANNOT_LISTEN);
  }
}

function describeErrno(errno: string, port: number, what: string): string {
  switch (errno) {
    case 'EADDRINUSE':
      return `the port is in use by another process (find it with: ss -ltnp 'sport = :${port}'); choose another ${what}, or stop that process`;
    case 'EADDRNOTAVAIL':
      return 'no interface of this machine has that address';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    default:
      return errno;
  }
}

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT: its typings declare the enum, its module does not export it. */
const EXCLUSIVE_PORT = 1 as ListenOptions;

// uWS.js accepts (host, port, options, cb) at run time; its typings only declare (port, options, cb).
type ListenWithHost = (host: string, port: number, options: ListenOptions, cb: (s: us_listen_socket | false) => void) => TemplatedApp;

/**
 * Binds exclusively and synchronously (uWS calls back before listen() returns). uWS listens with
 * SO_REUSEPORT by default, so a second wsgate on a taken port would bind too and the kernel would split
 * connections between two unrelated nodes (issue 21); LIBUS_LISTEN_EXCLUSIVE_PORT makes the bind fail.
 */
export async function listenExclusive(app: TemplatedApp, host: string, port: number, what: string): Promise<us_listen_socket> {
  let socket: us_listen_socket | false = false;
  (app.listen as unknown as ListenWithHost).call(app, host, port, EXCLUSIVE_PORT, (s) => {
    socket = s;
  });
  if (socket !== false) return socket;
  throw new ListenError(host, port, await bindErrno(host, port), what);
}

/** uWS reports only failure; a bind attempt with node:net names the reason (EADDRINUSE, EACCES, …). */
function bindErrno(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve('the bind failed for a reason uWS does not report')));
  });
}
