import type { Logger } from '../log';
import { CloseCode } from '../protocol/codes';
import type { Socket } from './socket-behavior';

const TICK_MS = 50;

/**
 * Closes every connection with 1012, spread evenly over `windowMs` so that clients do not all
 * reconnect to the remaining nodes in the same instant. Resolves when all are closed.
 */
export function closeSpread(sockets: Set<Socket>, windowMs: number, log: Logger): Promise<void> {
  const queue = [...sockets];
  const ticks = Math.max(1, Math.floor(windowMs / TICK_MS));
  const perTick = Math.ceil(queue.length / ticks);
  log.info({ connections: queue.length, windowMs }, 'draining connections');
  return new Promise((resolve) => {
    const step = () => {
      for (let i = 0; i < perTick && queue.length > 0; i++) {
        const ws = queue.pop() as Socket;
        const conn = ws.getUserData();
        if (conn.closed) continue;
        conn.closeReason = 'drain';
        ws.end(CloseCode.ServiceRestart, 'service restart');
      }
      if (queue.length > 0) setTimeout(step, TICK_MS);
      else resolve();
    };
    step();
  });
}
