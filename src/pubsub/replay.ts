import type { CodecName } from '../protocol/codec';
import type { StreamPosition } from '../protocol/commands';
import type { DeliveryEncoder } from '../protocol/delivery';
import { packr, unpackr } from '../protocol/msgpack';
import { Payload } from '../protocol/payload';
import type { RetainedMessage } from '../broker/broker';
import type { HistoryFrames } from './history';
import type { TopicState } from './topic-state';

/** Sends one delivery frame; `seq` is the message's (a door whose stream carries positions reads it). */
export type SendFrame = (frame: Uint8Array, binary: boolean, seq: number) => void;

const scratch = new Payload();
const utf8 = new TextDecoder();

/**
 * The frame for `codec`: the stored one, or (when nobody of that codec was subscribed at publish time)
 * one converted from the other codec's frame. Conversion is the rare path, so it may allocate.
 */
function frameFor(codec: CodecName, topic: string, seq: number, frames: HistoryFrames, encoder: DeliveryEncoder): Uint8Array {
  if (codec === 'json') {
    if (frames.jsonFrame) return frames.jsonFrame;
    const { d } = unpackr.unpack(frames.packFrame as Uint8Array) as { d: unknown };
    return encoder.json(topic, seq, scratch.setValue(d, true).json());
  }
  if (frames.packFrame) return frames.packFrame;
  const { d } = JSON.parse(utf8.decode(frames.jsonFrame as Uint8Array)) as { d: unknown };
  return encoder.msgpack(topic, seq, packr.pack(d));
}

/** Whether a client at `since` can be brought up to date from history without a gap. */
export function canRecover(state: TopicState, since: StreamPosition): boolean {
  if (since.epoch !== state.epoch) return false;
  if (since.seq === state.seq) return true;
  const history = state.history;
  if (history === null) return false;
  history.evictExpired(Date.now());
  return history.covers(since.seq, state.seq);
}

/** Sends every retained message after `since` in order (call only when canRecover); returns the count. */
export function replayAfter(state: TopicState, since: number, codec: CodecName, encoder: DeliveryEncoder, send: SendFrame): number {
  let replayed = 0;
  state.history?.forEachAfter(since, (seq, frames) => {
    send(frameFor(codec, state.name, seq, frames, encoder), codec === 'msgpack', seq);
    replayed++;
  });
  return replayed;
}

/** Sends retained messages (a cluster broker's history, a latest message): framed without a decode in their own format. */
export function replayRetained(topic: string, messages: readonly RetainedMessage[], codec: CodecName, encoder: DeliveryEncoder, send: SendFrame): number {
  for (const m of messages) {
    const data = scratch.setRaw(m.data, 0, m.data.length, m.json);
    if (codec === 'msgpack') send(data.msgpackFrame(encoder, topic, m.seq), true, m.seq);
    else send(data.jsonFrame(encoder, topic, m.seq), false, m.seq);
  }
  return messages.length;
}
