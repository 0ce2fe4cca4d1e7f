import type { Config } from '../config/schema';
import { type IdempotencyMemory, createIdempotencyMemory } from '../idempotency/shared-idempotency';
import { MAX_MEMBERSHIP_WORKERS, type MembershipMemory, SharedMembership, createMembershipMemory } from './membership-table';

/**
 * The tables the worker threads of one process share with the memory broker (with Redis or NATS each
 * worker is a node of that cluster and its state is the broker's): idempotency keys, topic occupancy
 * and webhook members. Made once by the supervisor; null where not needed.
 */
export interface ProcessTablesMemory {
  readonly idempotency: IdempotencyMemory | null;
  readonly occupancy: MembershipMemory | null;
  readonly members: MembershipMemory | null;
}

/** One worker's view: the memory and which worker it is. */
export interface ProcessTables extends ProcessTablesMemory {
  readonly worker: number;
}

export function createProcessTables(config: Config, workers: number): ProcessTablesMemory {
  if (config.broker !== 'memory') return { idempotency: null, occupancy: null, members: null };
  // Occupancy is followed for webhooks and the Pusher door's channel_occupied; members for join/leave webhooks.
  const occupancy = (config.webhookUrl !== '' || config.pusherApps !== '') && workers <= MAX_MEMBERSHIP_WORKERS;
  const members = config.webhookUrl !== '' && workers <= MAX_MEMBERSHIP_WORKERS;
  return {
    idempotency: createIdempotencyMemory(config.idempotencyMaxKeys),
    occupancy: occupancy ? createMembershipMemory(config.positionMaxTopics) : null,
    members: members ? createMembershipMemory(config.positionMaxTopics) : null,
  };
}

/** A replacement worker drops what its dead predecessor held, before it holds anything itself. */
export function forgetPredecessor(tables: ProcessTables): void {
  for (const memory of [tables.occupancy, tables.members]) if (memory !== null) new SharedMembership(memory, tables.worker).forgetWorker();
}
