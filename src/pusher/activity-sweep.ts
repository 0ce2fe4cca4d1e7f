import * as frames from './frames';
import { PusherCode } from './frames';
import type { PusherSockets } from './connection';

/**
 * Pusher's liveness rule (server side): a connection silent for `activity_timeout` gets `pusher:ping`;
 * one that still says nothing within the pong timeout is closed with 4201.
 *
 * One coarse sweep over the node's Pusher sockets instead of a timer per connection: the message path
 * only stores the sweep's clock in the connection (`seenAt`), and the sweep runs every half of the
 * shorter timeout, so a close comes at most that much late. A frame stamped with the clock of the tick
 * that sent the ping came after it (the clock advances before the ping goes out). uWS's own idleTimeout with automatic
 * WebSocket pings cannot do this job: it closes without a close frame (1006), so the client never sees
 * 4201, and a client that answers WebSocket pings but not pusher:ping would never be closed.
 */
export class ActivitySweep {
  /** Seconds since the sweep started, advanced once per tick: the clock connections are stamped with. */
  now = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly tickS: number;

  constructor(
    private readonly sockets: PusherSockets,
    private readonly activityTimeoutS: number,
    private readonly pongTimeoutS: number,
  ) {
    this.tickS = Math.max(0.5, Math.min(activityTimeoutS, pongTimeoutS) / 2);
    this.timer = setInterval(() => this.tick(), this.tickS * 1000);
    this.timer.unref();
  }

  private tick(): void {
    this.now += this.tickS;
    const now = this.now;
    for (const ws of this.sockets.values()) {
      const conn = ws.getUserData();
      if (conn.closed) continue;
      if (conn.pingAt >= 0) {
        if (conn.seenAt >= conn.pingAt) conn.pingAt = -1;
        else if (now - conn.pingAt >= this.pongTimeoutS) {
          conn.closeReason = 'pong_timeout';
          ws.end(PusherCode.PongTimeout, 'Pong reply not received');
        }
        continue;
      }
      if (now - conn.seenAt >= this.activityTimeoutS) {
        conn.pingAt = now;
        ws.send(frames.ping, false);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
