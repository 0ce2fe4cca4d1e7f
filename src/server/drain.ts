import type { Logger } from '../log';
import { CloseCode } from '../protocol/codes';
import type { Socket } from './socket-door';

const TICK_MS = 50;

/**
 * Runs `close` on every item, spread evenly over `windowMs` so that clients do not all reconnect to
 * the remaining nodes in the same instant. Resolves when all are done.
 */
export function spreadOver<T>(items: Iterable<T>, windowMs: number, close: (item: T) => void): Promise<void> {
  const queue = [...items];
  const total = queue.length;
  const ticks = Math.max(1, Math.floor(windowMs / TICK_MS));
  return new Promise((resolve) => {
    let tick = 0;
    const step = () => {
      tick++;
      // Closes due by this tick, proportional to elapsed time: few connections are spaced across the
      // whole window rather than closed one per tick at its start.
      const due = Math.ceil((total * tick) / ticks) - (total - queue.length);
      for (let i = 0; i < due && queue.length > 0; i++) close(queue.pop() as T);
      if (queue.length > 0) setTimeout(step, TICK_MS);
      else resolve();
    };
    step();
  });
}

/** Closes every wsgate connection with 1012 over `windowMs` (see spreadOver). */
export function closeSpread(sockets: Set<Socket>, windowMs: number, log: Logger): Promise<void> {
  log.info({ connections: sockets.size, windowMs }, 'draining connections');
  return spreadOver(sockets, windowMs, (ws) => {
    const conn = ws.getUserData();
    if (conn.closed) return;
    conn.closeReason = 'drain';
    ws.end(CloseCode.ServiceRestart, 'service restart');
  });
}
