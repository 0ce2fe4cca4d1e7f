import type { JetStreamClient, JetStreamManager, NatsConnection, PubAck, StoredMsg } from 'nats';
import { nats } from '../optional-deps';

/**
 * The JetStream side of `--nats-jetstream`: one stream holds every topic, one subject per topic, and
 * the server republishes each stored message to a live subject the nodes subscribe to per topic of
 * interest. Only nats-server 2.9 features are used (per-subject limits, expected last subject sequence,
 * republish, message get, Nats-Msg-Id). Reads use no consumer: each stored message keeps, in the
 * Nats-Expected-Last-Subject-Sequence header it was stored with, the stream sequence of the topic's
 * message before it, so a topic's recent messages are read newest first by message get, one by one,
 * from the stream leader (no consumer to create: nothing for the meta layer of a NATS cluster to do).
 *
 * A stored message is a run of envelopes (envelope.ts) of one topic, one after the other, numbered
 * contiguously in one epoch: a node commits its publishes to a topic in groups (see jetstream-lanes.ts).
 * A marker (an envelope of seq 0) starts a topic's numbering when it is subscribed before any publish.
 */
export const STREAM = 'wsgate_topics';
const STORE_PREFIX = 'wsgate.s.';
const LIVE_PREFIX = 'wsgate.r.';

/** Topics may hold "." (a token separator); "%" cannot occur in a topic, so this is injective (as in NATS mode). */
const token = (topic: string): string => topic.replaceAll('.', '%');
export const storeSubject = (topic: string): string => STORE_PREFIX + token(topic);
export const liveSubject = (topic: string): string => LIVE_PREFIX + token(topic);

/** JetStream's error code for a failed `Nats-Expected-Last-Subject-Sequence`. */
const WRONG_LAST_SEQUENCE = 10071;
const NO_MESSAGE = 10037;
const PREVIOUS = 'Nats-Expected-Last-Subject-Sequence';

export interface StoreLimits {
  /** Stored messages kept per topic (the largest history size, plus one for the marker). */
  readonly perTopic: number;
  /** Age after which a stored message is dropped (the topic's position goes with its last message). */
  readonly maxAgeMs: number;
  /** Nats-Msg-Id de-duplication window (the idempotency window). */
  readonly duplicateWindowMs: number;
  readonly replicas: number;
}

/** One stored message of a topic. `body` is a view valid as long as the caller keeps it. */
export interface StoredMessage {
  readonly streamSeq: number;
  readonly body: Buffer;
  /** The stream sequence of the topic's message before this one (0: none; -1: unknown). */
  readonly previous: number;
}

/** Another writer got there first: the subject's last stream sequence is now `last`. */
export class Conflict extends Error {
  constructor(readonly last: number) {
    super(`wrong last sequence: ${last}`);
  }
}

const stored = (m: StoredMsg): StoredMessage => {
  const previous = Number(m.header?.get(PREVIOUS) || -1);
  return { streamSeq: m.seq, body: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), previous: Number.isSafeInteger(previous) ? previous : -1 };
};

export class TopicStore {
  private readonly js: JetStreamClient;

  private constructor(
    private readonly jsm: JetStreamManager,
    nc: NatsConnection,
    timeoutMs: number,
  ) {
    this.js = nc.jetstream({ timeout: timeoutMs });
  }

  /**
   * Creates the stream, or takes the existing one as it is (another node, or an operator, may have
   * set other limits: the first to create it decides; a differing one is reported, not overwritten).
   */
  static async open(nc: NatsConnection, limits: StoreLimits, timeoutMs: number): Promise<{ store: TopicStore; differs: string | null }> {
    const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
    const config = {
      name: STREAM,
      subjects: [STORE_PREFIX + '>'],
      retention: nats().RetentionPolicy.Limits,
      storage: nats().StorageType.File,
      discard: nats().DiscardPolicy.Old,
      max_msgs_per_subject: limits.perTopic,
      max_age: nats().nanos(limits.maxAgeMs),
      duplicate_window: nats().nanos(limits.duplicateWindowMs),
      num_replicas: limits.replicas,
      allow_direct: true,
      republish: { src: STORE_PREFIX + '>', dest: LIVE_PREFIX + '>' },
    };
    let differs: string | null = null;
    try {
      await jsm.streams.add(config);
    } catch (e) {
      const info = await jsm.streams.info(STREAM).catch(() => null);
      if (info === null) throw e;
      const c = info.config;
      if (c.republish?.dest !== config.republish.dest) throw new Error(`stream ${STREAM} exists without republishing to ${config.republish.dest}`);
      if (c.max_msgs_per_subject !== config.max_msgs_per_subject || c.max_age !== config.max_age || c.num_replicas !== config.num_replicas) {
        differs = `stream ${STREAM} exists with max_msgs_per_subject ${c.max_msgs_per_subject}, max_age ${c.max_age / 1e9} s, replicas ${c.num_replicas}`;
      }
    }
    return { store: new TopicStore(jsm, nc, timeoutMs), differs };
  }

  /** The topic's last stored message, or null when it has none. */
  async last(topic: string): Promise<StoredMessage | null> {
    try {
      return stored(await this.jsm.streams.getMessage(STREAM, { last_by_subj: storeSubject(topic) }));
    } catch (e) {
      if (e instanceof nats().NatsError && e.api_error?.err_code === NO_MESSAGE) return null;
      throw e;
    }
  }

  /** The stored message at `streamSeq`, or null when it is gone. */
  async at(streamSeq: number): Promise<StoredMessage | null> {
    try {
      return stored(await this.jsm.streams.getMessage(STREAM, { seq: streamSeq }));
    } catch (e) {
      if (e instanceof nats().NatsError && e.api_error?.err_code === NO_MESSAGE) return null;
      throw e;
    }
  }

  /**
   * `last` and the topic's messages before it, oldest first: read back one by one until `enough` holds
   * for the oldest read, the topic has no earlier message (or it is no longer retained), or `max` are read.
   */
  async back(last: StoredMessage, enough: (m: StoredMessage) => boolean, max: number): Promise<StoredMessage[]> {
    const out = [last];
    for (let m = last; !enough(m) && m.previous > 0 && out.length < max; ) {
      const before = await this.at(m.previous);
      if (before === null) break;
      out.push((m = before));
    }
    return out.reverse();
  }

  /**
   * Appends `body` if the topic's last stored message is still `expectLast` (0: none), else throws
   * Conflict. With `msgId`, a repeat within the window stores nothing (the ack says duplicate).
   */
  async append(topic: string, body: Buffer, expectLast: number, msgId: string | null): Promise<PubAck> {
    try {
      return await this.js.publish(storeSubject(topic), body, { expect: { lastSubjectSequence: expectLast }, ...(msgId === null ? {} : { msgID: msgId }) });
    } catch (e) {
      if (e instanceof nats().NatsError && e.api_error?.err_code === WRONG_LAST_SEQUENCE) {
        const last = Number(/(\d+)\s*$/.exec(e.api_error.description ?? '')?.[1] ?? NaN);
        throw new Conflict(Number.isSafeInteger(last) ? last : -1);
      }
      throw e;
    }
  }
}
