import type { GatewayError } from '../protocol/codes';
import type { Payload } from '../protocol/payload';
import type { PublishSource } from '../metrics/stats';

/** A publish's outcome: the sequence it got, or why it could not be taken. */
export type PublishOutcome = number | GatewayError;

/**
 * Carries publishes to every node's Hub (this node's included). The memory broker is the embedded
 * single-node default; cluster brokers (NATS, Redis) implement the same contract.
 */
export interface Broker {
  readonly kind: string;
  start(): Promise<void>;
  /** Whether publishes can be taken now (readiness). */
  ready(): boolean;
  /**
   * Publishes `payload` to `topic`. Synchronous brokers return the outcome directly so the hot path
   * allocates no promise. `payload` is only valid during the call.
   */
  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome | Promise<PublishOutcome>;
  close(): Promise<void>;
}
