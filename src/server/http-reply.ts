import type { HttpResponse } from 'uWebSockets.js';
import type { GatewayError } from '../protocol/codes';

/** Tracks whether the client went away, as uWS requires for any reply sent after the handler returns. */
export interface Aborted {
  aborted: boolean;
}

/** Registers onAborted (without it uWS aborts the process when the client leaves mid-request). */
export function watchAbort(res: HttpResponse): Aborted {
  const state = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  return state;
}

/** `close`: end the connection after the reply (a refused upgrade's client has no use for it, and it holds a descriptor). */
export function sendJson(res: HttpResponse, status: string, body: unknown, abort?: Aborted, close = false): void {
  if (abort?.aborted) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify(body), close);
  });
}

export function sendText(res: HttpResponse, status: string, body: string, contentType = 'text/plain; charset=utf-8', abort?: Aborted): void {
  if (abort?.aborted) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', contentType).end(body);
  });
}

export function sendError(res: HttpResponse, status: string, error: GatewayError, abort?: Aborted, close = false): void {
  sendJson(res, status, { code: error.code, reason: error.reason }, abort, close);
}

/** Extracts the token from `Authorization: Bearer <token>`; '' when absent. */
export function bearer(header: string): string {
  return header.startsWith('Bearer ') ? header.slice(7).trim() : '';
}

/**
 * Collects a request body up to `limit` bytes. uWS hands chunks that are only valid during the
 * callback, so each is copied; past the limit the request is answered 413 at once.
 */
export function readBody(res: HttpResponse, limit: number, abort: Aborted, onBody: (body: Buffer) => void, onTooLarge: () => void): void {
  // Most bodies arrive in one chunk: a list (and its backing store) is made only for a second one.
  let first: Buffer | null = null;
  let chunks: Buffer[] | null = null;
  let size = 0;
  let done = false;
  res.onData((chunk, isLast) => {
    if (done) return;
    size += chunk.byteLength;
    if (size > limit) {
      done = true;
      onTooLarge();
      return;
    }
    // A copy: uWS reuses the chunk's memory after this callback.
    const copy = Buffer.from(chunk.slice(0));
    if (first === null) first = copy;
    else (chunks ??= [first]).push(copy);
    if (isLast) {
      done = true;
      if (!abort.aborted) onBody(chunks === null ? copy : Buffer.concat(chunks));
    }
  });
}
