import { createHash } from 'node:crypto';
import type { PublishOutcome } from '../broker/broker';
import { type Idempotency, scopedKey } from './idempotency';

/** A broker that stores a publish at most once per id within its window (JetStream's Nats-Msg-Id). */
export interface KeyedPublisher {
  keyed<T>(msgId: string, publish: () => T): T;
}

/** The broker as a KeyedPublisher when it de-duplicates itself, else null. */
export const keyedPublisher = (broker: object): KeyedPublisher | null => ('keyed' in broker && typeof broker.keyed === 'function' ? (broker as KeyedPublisher) : null);

/**
 * Cluster-wide keys with JetStream: the key travels as the stored message's Nats-Msg-Id, and the stream
 * de-duplicates within --idempotency-window, answering a repeat on any node with the first publish's
 * seq. Nothing is kept on the node. The id is a digest: a header value cannot hold every key character.
 */
export class JetStreamIdempotency implements Idempotency {
  constructor(private readonly broker: KeyedPublisher) {}

  once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): PublishOutcome | Promise<PublishOutcome> {
    return this.broker.keyed(createHash('sha256').update(scopedKey(topic, key)).digest('base64url'), publish);
  }

  async close(): Promise<void> {}
}
