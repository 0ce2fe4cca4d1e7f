import { once } from 'node:events';
import { applyDelta } from 'fossil-delta';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Codec = 'json' | 'msgpack';

/**
 * A third-party client written from docs/protocol.md ("Deltas"), independent of the SDK: it keeps the
 * data bytes of each delivery (for a full one, the frame's bytes after `"d":`; for a delta, fossil-delta's
 * applyDelta on the previous ones) by sequence, so tests compare them byte for byte.
 */
export class RawSubscriber {
  /** Data bytes by sequence, as delivered or reconstructed. */
  readonly data = new Map<number, Buffer>();
  readonly replies: Record<string, unknown>[] = [];
  fulls = 0;
  deltas = 0;
  /** Wire bytes of deliveries received. */
  wireBytes = 0;
  /** Deltas that did not follow the previous delivery (a test failure unless a gap was made on purpose). */
  broken = 0;
  private lastSeq = -1;

  private constructor(
    readonly ws: WebSocket,
    readonly codec: Codec,
  ) {
    ws.on('message', (raw: Buffer) => this.onFrame(raw));
  }

  static async connect(url: string, codec: Codec): Promise<RawSubscriber> {
    const ws = new WebSocket(url, codec === 'json' ? 'wsgate.json' : 'wsgate.msgpack');
    await once(ws, 'open');
    return new RawSubscriber(ws, codec);
  }

  send(cmd: Record<string, unknown>): void {
    this.ws.send(this.codec === 'json' ? JSON.stringify(cmd) : packr.pack(cmd));
  }

  /** Sends `sub` (with `delta` when given, and any `extra` fields such as `since`) and resolves with the reply. */
  async sub(topic: string, delta?: unknown, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.replies.length + 1000;
    this.send(delta === undefined ? { op: 'sub', topic, id, ...extra } : { op: 'sub', topic, id, delta, ...extra });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = this.replies.find((x) => x.id === id);
      if (r !== undefined) return r;
      if (Date.now() > deadline) throw new Error('no reply to sub');
      await new Promise((res) => setTimeout(res, 10));
    }
  }

  /** The data of delivery `seq`, decoded. */
  value(seq: number): unknown {
    const bytes = this.data.get(seq);
    if (bytes === undefined) return undefined;
    return this.codec === 'json' ? JSON.parse(bytes.toString('utf8')) : unpackr.unpack(bytes);
  }

  close(): void {
    this.ws.close();
  }

  private onFrame(raw: Buffer): void {
    const frame = (this.codec === 'json' ? JSON.parse(raw.toString('utf8')) : unpackr.unpack(raw)) as Record<string, unknown>;
    if (typeof frame.t !== 'string' || typeof frame.s !== 'number') {
      this.replies.push(frame);
      return;
    }
    const seq = frame.s;
    this.wireBytes += raw.length;
    if (frame.delta === true) {
      this.deltas++;
      const base = this.data.get(seq - 1);
      if (base === undefined || this.lastSeq !== seq - 1) {
        this.broken++;
        return;
      }
      // JSON: the string's characters are the delta's bytes (Latin-1); msgpack: bin.
      const delta = typeof frame.d === 'string' ? Buffer.from(frame.d, 'latin1') : Buffer.from(frame.d as Uint8Array);
      this.data.set(seq, Buffer.from(applyDelta(new Uint8Array(base), new Uint8Array(delta))));
    } else {
      this.fulls++;
      this.data.set(seq, dataBytes(raw, this.codec, frame.t, seq));
    }
    this.lastSeq = seq;
  }
}

/** The data bytes of a full delivery frame: JSON after `{"t":"<topic>","s":<seq>,"d":` up to the last `}`; msgpack after the key "d". */
export function dataBytes(raw: Buffer, codec: Codec, topic: string, seq: number): Buffer {
  if (codec === 'json') {
    const prefix = Buffer.byteLength(`{"t":"${topic}","s":${seq},"d":`);
    return Buffer.from(raw.subarray(prefix, raw.length - 1));
  }
  // fixmap 3, "t", the topic (fixstr or str8), "s", the seq (positive fixint, uint8/16/32 or float64), "d".
  const seqBytes = seq < 0x80 ? 1 : seq < 0x100 ? 2 : seq < 0x10000 ? 3 : seq < 0x100000000 ? 5 : 9;
  const start = 3 + (topic.length < 32 ? 1 : 2) + topic.length + 2 + seqBytes + 2;
  if (raw[start - 2] !== 0xa1 || raw[start - 1] !== 0x64) throw new Error('not a wsgate msgpack delivery frame');
  return Buffer.from(raw.subarray(start));
}
