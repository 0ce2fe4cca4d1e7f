import type { Session } from '../session/session';
import { type Task, TaskQueue } from './task-queue';

// Publishes one connection may have waiting for the application; more are answered `unavailable`.
const MAX_WAITING_PUBLISHES = 64;

/**
 * Runs `task` after the connection's earlier publishes that wait for the application, so one connection's
 * publishes keep their order. The queue exists only while something waits. False when it is full.
 */
export function inOrder(conn: Session, task: Task): boolean {
  const queue = (conn.pubQueue ??= new TaskQueue(MAX_WAITING_PUBLISHES, () => (conn.pubQueue = null)));
  return queue.push(task);
}
