import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { UpgradeGuard } from '../guard/upgrade-guard';
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

/**
 * Completes an upgrade, never inside res.cork. Inside the upgrade handler uWS has the socket corked
 * already (res.cork would only run its callback, and its closure is garbage per upgrade). After the
 * handler has returned (an async admission), uWS.js 20.57's res.cork() wrapped around an upgrade reads the
 * HTTP state through the socket the upgrade has just shrunk in place into a WebSocket and, when stale
 * bytes there look like `Connection: close`, closes the new connection right after open (1006; fixed in
 * uWebSockets PR #1929, after 20.57; the uncorked upgrade is upstream's advice until then). The price
 * there: the 101 leaves in several writes, and uWS.js prints a cork warning on stderr for each such upgrade.
 */
export function completeUpgrade<T>(res: HttpResponse, hs: Handshake, userData: T, subprotocol: string): void {
  res.upgrade(userData, hs.key, subprotocol, hs.extensions, hs.context);
}

/**
 * Upgrades that wait for something asynchronous (token check, connect proxy). Every one registers
 * onAborted before its handler returns (without it uWS aborts the process when the client leaves),
 * and `finish` runs only while the client is still there. `stats.pendingUpgrades` counts them, so the
 * connection limit holds while they wait.
 */
export class AsyncUpgrades {
  constructor(
    private readonly stats: Stats,
    private readonly guard: UpgradeGuard,
  ) {}

  /** Failures should be values `finish` turns into a refusal; a rejection (a bug) only drops the request. */
  wait<T>(res: HttpResponse, work: Promise<T>, finish: (result: T, abort: Aborted) => void): void {
    const abort = watchAbort(res);
    this.waiting(1);
    work.then(
      (result) => {
        this.waiting(-1);
        if (!abort.aborted) finish(result, abort);
      },
      () => {
        this.waiting(-1);
        if (!abort.aborted) res.close();
      },
    );
  }

  private waiting(delta: number): void {
    this.stats.pendingUpgrades += delta;
    this.guard.waiting(delta);
  }
}
