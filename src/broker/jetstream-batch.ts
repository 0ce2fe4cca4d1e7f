import { Envelope, EnvelopeError, MsgpackCursor, encodeEnvelope } from './envelope';
import type { StoredMessage } from './jetstream-store';

/** Where a topic stands in the stream: its last stored message, and the seq/epoch that message ends at. */
export interface Position {
  readonly streamSeq: number;
  readonly seq: number;
  readonly epoch: string;
}

/** One retained message read back from the stream; `data` is a view of the stored body. */
export interface StoredEnvelope {
  readonly seq: number;
  readonly epoch: string;
  readonly ts: number;
  readonly json: boolean;
  readonly data: Buffer;
  /** The envelope's data as a msgpack-or-JSON view with its frame (for Payload.setRaw). */
  readonly buf: Buffer;
  readonly dataStart: number;
  readonly dataEnd: number;
}

/** A marker's data: msgpack nil. Markers (seq 0) carry only an epoch and are never delivered. */
const NIL = { isJson: false, dataLength: () => 1, copyData: (dst: Buffer, p: number) => ((dst[p] = 0xc0), p + 1) };

/** The stored message that starts a topic's numbering at seq 0 in `epoch`. */
export const encodeMarker = (topic: string, epoch: string, origin: string): Buffer => encodeEnvelope(topic, 0, epoch, Date.now(), origin, 'broker', NIL);

/**
 * Calls `each` for every envelope of a stored message, in order; throws EnvelopeError on anything else
 * (a message on our subject that is not ours). One reused cursor and envelope.
 */
export function forEachEnvelope(body: Buffer, cursor: MsgpackCursor, env: Envelope, each: (env: Envelope) => void): void {
  cursor.reset(body);
  if (body.length === 0) throw new EnvelopeError('empty stored message');
  while (cursor.pos < body.length) each(env.read(cursor));
}

/** The position a stored message ends at. */
export function positionOf(m: StoredMessage): Position {
  let seq = -1;
  let epoch = '';
  forEachEnvelope(m.body, new MsgpackCursor(), new Envelope(), (env) => {
    if (seq !== -1 && (env.seq !== seq + 1 || env.epoch !== epoch)) throw new EnvelopeError('stored run is not contiguous');
    seq = env.seq;
    epoch = env.epoch;
  });
  return { streamSeq: m.streamSeq, seq, epoch };
}

/**
 * The envelopes of stored messages, oldest first, markers left out; data checked like a client's
 * (`maxDepth`), so anything foreign makes the read fail (EnvelopeError) rather than reach anyone.
 */
export function envelopesOf(messages: readonly StoredMessage[], maxDepth: number): StoredEnvelope[] {
  const out: StoredEnvelope[] = [];
  const cursor = new MsgpackCursor();
  for (const m of messages) {
    forEachEnvelope(m.body, cursor, new Envelope(), (env) => {
      if (env.seq === 0) return;
      if (env.checkData(maxDepth) !== 'ok') throw new EnvelopeError('stored data is not well-formed or too deep');
      out.push({ seq: env.seq, epoch: env.epoch, ts: env.ts, json: env.json, data: env.data, buf: env.buf, dataStart: env.dataStart, dataEnd: env.dataEnd });
    });
  }
  return out;
}

/**
 * The retained run after `after` up to `seq` in `epoch`: all of it, contiguous and younger than
 * `oldest` (ms), or null when any of it is no longer retained.
 */
export function runAfter(envs: readonly StoredEnvelope[], epoch: string, after: number, seq: number, oldest: number): StoredEnvelope[] | null {
  const run: StoredEnvelope[] = [];
  for (const e of envs) {
    if (e.epoch !== epoch || e.seq <= after || e.seq > seq) continue;
    if (e.seq !== after + 1 + run.length || e.ts < oldest) return null;
    run.push(e);
  }
  return run.length === seq - after ? run : null;
}
