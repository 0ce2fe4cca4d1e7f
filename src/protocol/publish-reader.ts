import { PublishScan } from './command-scan';
import { Payload } from './payload';
import { TopicNames } from './topic-names';

/**
 * The allocation-free front of a publish: locates a plain publish in the received bytes (PublishScan)
 * and presents its topic as an interned string and its data as a Payload over those bytes. One reader per
 * front door, reused for every message; what it returns is valid until its next read.
 */
export class PublishReader {
  private readonly scan: PublishScan;
  private readonly names = new TopicNames();
  private readonly payload = new Payload();
  private buf: Buffer = Buffer.alloc(0);
  private json = true;

  /**
   * `maxDepth` is the gateway's --max-depth: data nesting deeper is not refused here, it takes the general
   * decode path, which refuses it (bad_frame / HTTP 400) and counts it.
   */
  constructor(maxTopicLength: number, maxDepth: number, maxItems = 1) {
    this.scan = new PublishScan(maxTopicLength, maxDepth, maxItems);
  }

  /** A socket frame; true when it is a plain `pub` (then read id, topic(0), data(0)). */
  socketPub(buf: Buffer, json: boolean): boolean {
    this.buf = buf;
    this.json = json;
    return this.scan.socketPub(buf, buf.length, json);
  }

  /** A `POST /publish` body; true when every item is plain (then read count, topic(i), data(i)). */
  httpBody(buf: Buffer, json: boolean): boolean {
    this.buf = buf;
    this.json = json;
    return this.scan.httpBody(buf, buf.length, json);
  }

  /** After socketPub: the frame is well-formed and bounded, plain publish or not (PublishScan.wellFormed). */
  get wellFormed(): boolean {
    return this.scan.wellFormed;
  }

  /** The socket command's id, if it has one. */
  get id(): number | undefined {
    return this.scan.id === -1 ? undefined : this.scan.id;
  }

  get count(): number {
    return this.scan.count;
  }

  topic(i: number): string {
    return this.names.get(this.buf, this.scan.topicStart(i), this.scan.topicEnd(i));
  }

  topicLength(i: number): number {
    return this.scan.topicEnd(i) - this.scan.topicStart(i);
  }

  /** Copies item i's topic bytes to `to` at `p`; returns the position after them. */
  copyTopic(i: number, to: Buffer, p: number): number {
    return p + this.buf.copy(to, p, this.scan.topicStart(i), this.scan.topicEnd(i));
  }

  /** Item i's data (the same Payload instance for every item: use it before asking for the next). */
  data(i: number): Payload {
    return this.payload.setRaw(this.buf, this.scan.dataStart(i), this.scan.dataEnd(i), this.json);
  }
}
