import { performance } from 'node:perf_hooks';
import type { Logger } from '../log';
import type { FixedHistogram } from '../metrics/histogram';
import type { Stats } from '../metrics/stats';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { Envelope, EnvelopeError, MsgpackCursor } from './envelope';

/** Wall-clock-anchored milliseconds with sub-ms resolution, comparable between nodes on one host. */
export const absoluteNow = (): number => performance.timeOrigin + performance.now();

/**
 * Turns a message from the broker into one local fan-out. The envelope is read in place and its data
 * handed to the hub as bytes in the format it was published in, so subscribers of that format get it
 * copied into their frame without a decode; one reused cursor, envelope and payload serve every message.
 */
export class EnvelopeReceiver {
  private readonly cursor = new MsgpackCursor();
  private readonly envelope = new Envelope();
  private readonly payload = new Payload();
  private warned = false;

  constructor(
    private readonly hub: Hub,
    private readonly stats: Stats,
    private readonly roundtrip: FixedHistogram,
    private readonly lag: FixedHistogram,
    /** Whether a message for `topic` is delivered now (the node holds interest and is not resyncing it). */
    private readonly accepts: (topic: string) => boolean,
    private readonly nodeId: string,
    /** True when the broker numbers messages cluster-wide (the envelope's seq/epoch are authoritative). */
    private readonly brokerSequenced: boolean,
    private readonly log: Logger,
    /** --max-depth: data from the broker is bounded like data from clients before anything decodes it. */
    private readonly maxDepth: number,
  ) {}

  receive(buf: Buffer): void {
    this.stats.brokerReceived++;
    this.stats.brokerBytesIn += buf.length;
    let env: Envelope;
    try {
      env = this.envelope.read(this.cursor.reset(buf));
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      return this.reject(e.message);
    }
    this.deliver(env);
  }

  /**
   * A stored run of envelopes (JetStream: one topic, contiguous seqs): each one numbered after `after`
   * is delivered in order. Returns the last seq delivered (else `after`).
   */
  receiveRun(buf: Buffer, after: number): number {
    this.stats.brokerReceived++;
    this.stats.brokerBytesIn += buf.length;
    const c = this.cursor.reset(buf);
    try {
      while (c.pos < buf.length) {
        const env = this.envelope.read(c);
        if (env.seq <= after) continue;
        this.deliver(env);
        after = env.seq;
      }
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      this.reject(e.message);
    }
    return after;
  }

  private deliver(env: Envelope): void {
    const check = env.checkData(this.maxDepth);
    if (check !== 'ok') {
      if (check === 'too_deep') this.stats.tooDeep.broker++;
      return this.reject(check === 'too_deep' ? `data nests deeper than ${this.maxDepth} levels` : `data is not well-formed ${env.json ? 'JSON' : 'msgpack'}`);
    }
    // A message still in flight after the interest was dropped has nobody to reach.
    if (!this.accepts(env.topic)) return;
    const now = performance.now();
    const own = env.origin === this.nodeId;
    (own ? this.roundtrip : this.lag).observe(Math.max(0, performance.timeOrigin + now - env.ts) / 1000);
    this.hub.deliver(
      env.topic,
      this.payload.setRaw(env.buf, env.dataStart, env.dataEnd, env.json),
      own ? env.source : 'broker',
      now,
      this.brokerSequenced ? env.seq : 0,
      this.brokerSequenced ? env.epoch : undefined,
    );
  }

  /** Someone else publishing on our subjects: counted, said once, never a crash of the receive path. */
  private reject(reason: string): void {
    this.stats.brokerRejected++;
    if (!this.warned) this.log.warn({ err: reason }, 'ignoring a broker message that is not a valid wsgate envelope');
    this.warned = true;
  }
}
