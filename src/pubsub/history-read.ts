import type { HistoryPage } from '../broker/broker';
import type { HistoryMessage } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { unpackr } from '../protocol/msgpack';
import type { HistoryFrames } from './history';
import type { TopicState } from './topic-state';

const utf8 = new TextDecoder();

export const unrecoverable = (since: StreamPosition): GatewayError =>
  new GatewayError(ErrorCode.UnrecoverablePosition, `since is from epoch ${since.epoch}, which the topic no longer has: its stream restarted`);

/** A retained delivery frame's data (the rare path: decoding allocates). */
export function dataOf(frames: HistoryFrames): unknown {
  if (frames.packFrame !== null) return (unpackr.unpack(frames.packFrame) as { d: unknown }).d;
  return (JSON.parse(utf8.decode(frames.jsonFrame as Uint8Array)) as { d: unknown }).d;
}

/**
 * Up to `limit` messages of the node's history of a topic: the newest ones, or with `since` the first
 * ones after it, oldest first. History holds a contiguous run of sequences, so "newest `limit`" are
 * those after seq − limit.
 */
export function readLocalHistory(state: TopicState, limit: number, since: StreamPosition | undefined): HistoryPage | GatewayError {
  if (since !== undefined && since.epoch !== state.epoch) return unrecoverable(since);
  const messages: HistoryMessage[] = [];
  const history = state.history;
  if (history !== null) {
    history.evictExpired(Date.now());
    const after = since === undefined ? state.seq - limit : since.seq;
    history.forEachAfter(after, (s, frames) => {
      if (messages.length < limit) messages.push({ s, d: dataOf(frames) });
    });
  }
  return { seq: state.seq, epoch: state.epoch, messages };
}
