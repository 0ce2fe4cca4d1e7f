import { randomBytes } from 'node:crypto';
import type { CodecName } from '../protocol/codec';
import type { TopicRule } from '../rules/topic-rules';
import { DeltaTopic } from './delta';
import type { TopicHistory } from './history';
import type { LastMessage } from './last-message';

/** A fresh epoch: it changes whenever a topic's sequence restarts, so stale positions are detectable. */
export const newEpoch = (): string => randomBytes(6).toString('base64url');

/** Everything the node knows about one topic. */
export class TopicState {
  seq = 0;
  jsonSubs = 0;
  packSubs = 0;
  /** Subscribers through the Pusher front door (their frames: src/pusher/pusher-wire.ts). */
  pusherSubs = 0;
  /** Subscribers through the SSE front door (fanned out by src/sse/sse-wire.ts). */
  sseSubs = 0;
  /** The latest message, kept only for topics whose rule has lastMessage. */
  last: LastMessage | null = null;
  /** uWS topic names per codec: subscribers of each codec get frames in their own encoding. */
  readonly jsonKey: string;
  readonly packKey: string;
  readonly pusherKey: string;
  /** Delta subscriptions and their chains: only on topics whose rule has `delta`. */
  readonly delta: DeltaTopic | null;

  constructor(
    readonly name: string,
    public epoch: string,
    readonly history: TopicHistory | null,
    /** The topic's rule, resolved once when the state is created. */
    readonly rule: TopicRule,
  ) {
    // A space cannot occur in a valid topic, so these keys never collide with each other.
    this.jsonKey = 'j ' + name;
    this.packKey = 'm ' + name;
    this.pusherKey = 'p ' + name;
    this.delta = rule.delta ? new DeltaTopic(name, this.jsonKey, this.packKey) : null;
  }

  key(codec: CodecName): string {
    return codec === 'json' ? this.jsonKey : this.packKey;
  }

  get subscribers(): number {
    return this.jsonSubs + this.packSubs + this.pusherSubs + this.sseSubs;
  }

  /** No subscribers and nothing retained: the state can go (the hub remembers its position). */
  get idle(): boolean {
    return this.subscribers === 0 && (this.history === null || this.history.count === 0) && this.last === null;
  }
}
