import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { Stats } from '../metrics/stats';
import { type Aborted, watchAbort } from './http-reply';

/** What `res.upgrade` needs from the request, copied out while the handler runs (HttpRequest dies with it). */
export interface Handshake {
  readonly key: string;
  readonly protocol: string;
  readonly extensions: string;
  readonly context: us_socket_context_t;
}

export function readHandshake(req: HttpRequest, context: us_socket_context_t): Handshake {
  return {
    key: req.getHeader('sec-websocket-key'),
    protocol: req.getHeader('sec-websocket-protocol'),
    extensions: req.getHeader('sec-websocket-extensions'),
    context,
  };
}

/** Completes an upgrade, corked: outside the handler's own cork uWS would send the 101 uncorked. */
export function completeUpgrade<T>(res: HttpResponse, hs: Handshake, userData: T, subprotocol: string): void {
  res.cork(() => res.upgrade(userData, hs.key, subprotocol, hs.extensions, hs.context));
}

/**
 * Upgrades that wait for something asynchronous (token check, connect proxy). Every one registers
 * onAborted before its handler returns (without it uWS aborts the process when the client leaves),
 * and `finish` runs only while the client is still there. `stats.pendingUpgrades` counts them, so the
 * connection limit holds while they wait.
 */
export class AsyncUpgrades {
  constructor(private readonly stats: Stats) {}

  /** Failures should be values `finish` turns into a refusal; a rejection (a bug) only drops the request. */
  wait<T>(res: HttpResponse, work: Promise<T>, finish: (result: T, abort: Aborted) => void): void {
    const abort = watchAbort(res);
    this.stats.pendingUpgrades++;
    work.then(
      (result) => {
        this.stats.pendingUpgrades--;
        if (!abort.aborted) finish(result, abort);
      },
      () => {
        this.stats.pendingUpgrades--;
        if (!abort.aborted) res.close();
      },
    );
  }
}
