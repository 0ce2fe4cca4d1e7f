import type { HistoryPage, RetainedMessage } from '../broker/broker';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { packr, unpackr } from '../protocol/msgpack';
import { dataOf, readLocalHistory } from '../pubsub/history-read';
import type { Hub } from '../pubsub/hub';
import { canRecover } from '../pubsub/replay';

// What a topic's owner worker answers for a worker that does not receive the topic's messages (it holds
// no subscribers of it): its position, the retained messages a resume needs, its latest message, a
// history page. Rare paths (a subscribe without live interest, a `history` op), so they may allocate.

/** The owner's position of a topic at the cut, with what the asking worker cannot serve itself. */
export interface OwnerSnapshot {
  readonly seq: number;
  readonly epoch: string;
  /** With `since`: the messages after it, or null when the owner cannot serve them all either. */
  readonly replay: readonly RetainedMessage[] | null;
  /** The topic's latest message (rule lastMessage), if kept. */
  readonly last: RetainedMessage | null;
}

type Since = [epoch: string, seq: number] | null;
const sinceOf = (s: Since): StreamPosition | undefined => (s === null ? undefined : { epoch: s[0], seq: s[1] });
const since = (p: StreamPosition | undefined): Since => (p === undefined ? null : [p.epoch, p.seq]);

export const snapshotRequest = (topic: string, at: StreamPosition | undefined): Buffer => packr.pack([topic, since(at)]);
export const historyRequest = (topic: string, limit: number, at: StreamPosition | undefined): Buffer => packr.pack([topic, limit, since(at)]);

/** The topic a request names, or null when the record is not one (a peer is trusted, but checked). */
function requestTopic(req: unknown[]): string | null {
  return typeof req[0] === 'string' ? req[0] : null;
}

/** On the owner: answers a snapshot request. */
export function answerSnapshot(hub: Hub, bytes: Buffer): { topic: string; reply: Buffer } | null {
  const req = unpackr.unpack(bytes) as unknown[];
  const topic = requestTopic(req);
  if (topic === null) return null;
  const state = hub.acquire(topic);
  const at = sinceOf(req[1] as Since);
  let replay: [number, unknown][] | null = null;
  if (at !== undefined && canRecover(state, at)) {
    const messages: [number, unknown][] = [];
    state.history?.forEachAfter(at.seq, (s, frames) => messages.push([s, dataOf(frames)]));
    replay = messages;
  }
  const last = state.rule.lastMessage && state.last !== null ? [state.last.seq, state.last.data] : null;
  const reply = packr.pack([state.seq, state.epoch, replay, last]);
  hub.releaseIfIdle(state);
  return { topic, reply };
}

/** The position alone (the full answer did not fit the ring): the asker answers without a replay. */
export function bareSnapshot(hub: Hub, topic: string): Buffer {
  const state = hub.acquire(topic);
  const reply = packr.pack([state.seq, state.epoch, null, null]);
  hub.releaseIfIdle(state);
  return reply;
}

export function readSnapshot(bytes: Buffer): OwnerSnapshot {
  const [seq, epoch, replay, last] = unpackr.unpack(bytes) as [number, string, [number, unknown][] | null, [number, Uint8Array] | null];
  return {
    seq,
    epoch,
    replay: replay === null ? null : replay.map(([s, d]) => ({ seq: s, data: packr.pack(d), json: false })),
    last: last === null ? null : { seq: last[0], data: Buffer.from(last[1]), json: false },
  };
}

/** On the owner: answers a history request with the page or the error. */
export function answerHistory(hub: Hub, bytes: Buffer): Buffer {
  const req = unpackr.unpack(bytes) as unknown[];
  const topic = requestTopic(req);
  if (topic === null || typeof req[1] !== 'number') return packr.pack([ErrorCode.Unavailable, 'bad history request']);
  const state = hub.acquire(topic);
  const page = readLocalHistory(state, req[1], sinceOf(req[2] as Since));
  hub.releaseIfIdle(state);
  if (page instanceof GatewayError) return packr.pack([page.code, page.reason]);
  return packr.pack([page.seq, page.epoch, page.messages.map((m) => [m.s, m.d])]);
}

export function readHistory(bytes: Buffer): HistoryPage | GatewayError {
  const a = unpackr.unpack(bytes) as unknown[];
  if (a.length === 2) return new GatewayError(a[0] as ErrorCode, a[1] as string);
  const [seq, epoch, messages] = a as [number, string, [number, unknown][]];
  return { seq, epoch, messages: messages.map(([s, d]) => ({ s, d })) };
}
