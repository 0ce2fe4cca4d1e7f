import { MAX_TOKEN_LENGTH } from '../auth/token-verifier';
import { ErrorCode, GatewayError } from './codes';
import { checkIdempotencyKey } from './idempotency-key';
import { checkTopic } from './topic';

/** A position in a topic's stream, as remembered by a client. */
export interface StreamPosition {
  readonly seq: number;
  readonly epoch: string;
}

export type Command =
  | { readonly op: 'sub'; readonly topic: string; readonly id: number | undefined; readonly since: StreamPosition | undefined; readonly delta?: DeltaType }
  | { readonly op: 'unsub'; readonly topic: string; readonly id: number | undefined }
  | { readonly op: 'pub'; readonly topic: string; readonly id: number | undefined; readonly data: unknown; readonly idempotencyKey: string | undefined }
  | { readonly op: 'ping'; readonly id: number | undefined }
  | { readonly op: 'refresh'; readonly token: string; readonly id: number | undefined }
  | { readonly op: 'presence' | 'presence_stats'; readonly topic: string; readonly id: number | undefined }
  | { readonly op: 'history'; readonly topic: string; readonly id: number | undefined; readonly limit: number; readonly since: StreamPosition | undefined };

/** Items one history or list request returns at most, and how many without `limit`. */
export const MAX_PAGE_LIMIT = 1000;
export const DEFAULT_PAGE_LIMIT = 100;

/** A page `limit`: absent means the default; else an integer 1..MAX_PAGE_LIMIT (null: invalid). */
export function parseLimit(v: unknown): number | null {
  if (v === undefined) return DEFAULT_PAGE_LIMIT;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_PAGE_LIMIT ? v : null;
}

export type Op = Command['op'];

/** Delta encodings a subscription may ask for (docs/protocol.md, "Deltas"). */
export type DeltaType = 'fossil';

/** A sub's `delta`: absent, or a known type (null: unknown, a bad_request). */
function parseDelta(v: unknown): DeltaType | undefined | null {
  if (v === undefined) return undefined;
  return v === 'fossil' ? v : null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseSince(v: unknown, id: number | undefined): StreamPosition | GatewayError | undefined {
  if (v === undefined) return undefined;
  if (!isRecord(v) || !isSeq(v.seq) || typeof v.epoch !== 'string' || v.epoch.length > 64) {
    return new GatewayError(ErrorCode.BadSince, 'since must be {"seq":<integer >= 0>,"epoch":<string>}', id);
  }
  return { seq: v.seq, epoch: v.epoch };
}

/** Validates a decoded client frame into a command, or the error to reply with. */
export function parseCommand(frame: unknown, maxTopicLength: number): Command | GatewayError {
  if (!isRecord(frame)) return new GatewayError(ErrorCode.BadFrame, 'a command must be an object');
  const rawId = frame.id;
  if (rawId !== undefined && !isSeq(rawId)) {
    return new GatewayError(ErrorCode.BadRequest, 'id must be an integer between 0 and 2^53-1');
  }
  const id = rawId;
  const op = frame.op;
  if (op === 'ping') return { op, id };
  if (op === 'refresh') {
    if (typeof frame.token !== 'string' || frame.token === '' || frame.token.length > MAX_TOKEN_LENGTH) {
      return new GatewayError(ErrorCode.BadRequest, `refresh needs a token: a string of 1..${MAX_TOKEN_LENGTH} characters`, id);
    }
    return { op, token: frame.token, id };
  }
  if (op !== 'sub' && op !== 'unsub' && op !== 'pub' && op !== 'history' && op !== 'presence' && op !== 'presence_stats') {
    return new GatewayError(ErrorCode.UnknownOp, 'op must be one of sub, unsub, pub, ping, refresh, history, presence, presence_stats', id);
  }
  const topicError = checkTopic(frame.topic, maxTopicLength);
  if (topicError !== null) return topicError.withId(id);
  const topic = frame.topic as string;
  switch (op) {
    case 'sub': {
      const since = parseSince(frame.since, id);
      if (since instanceof GatewayError) return since;
      const delta = parseDelta(frame.delta);
      if (delta === null) return new GatewayError(ErrorCode.BadRequest, 'delta must be "fossil" (the only delta type)', id);
      return delta === undefined ? { op, topic, id, since } : { op, topic, id, since, delta };
    }
    case 'unsub':
    case 'presence':
    case 'presence_stats':
      return { op, topic, id };
    case 'history': {
      const since = parseSince(frame.since, id);
      if (since instanceof GatewayError) return since;
      const limit = parseLimit(frame.limit);
      if (limit === null) return new GatewayError(ErrorCode.BadRequest, `limit must be an integer 1..${MAX_PAGE_LIMIT}`, id);
      return { op, topic, id, limit, since };
    }
    case 'pub':
      if (!('data' in frame) || frame.data === undefined) {
        return new GatewayError(ErrorCode.BadRequest, 'pub needs data', id);
      }
      const idempotencyKey = checkIdempotencyKey(frame.idempotencyKey);
      if (idempotencyKey instanceof GatewayError) return idempotencyKey.withId(id);
      return { op, topic, id, data: frame.data, idempotencyKey };
  }
}
