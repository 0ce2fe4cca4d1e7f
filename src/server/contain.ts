import type { HttpRequest, HttpResponse, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { Logger } from '../log';
import type { HandlerName, Stats } from '../metrics/stats';
import { ErrorCode } from '../protocol/codes';

/** Records an unexpected exception: logged with where it happened, counted by handler. */
export type FaultSink = (where: HandlerName, e: unknown) => void;

export function faultSink(stats: Stats, log: Logger): FaultSink {
  return (where, e) => {
    stats.handlerErrors[where]++;
    log.error({ handler: where, err: e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : String(e) }, 'unexpected exception contained');
  };
}

const INTERNAL_BODY = JSON.stringify({ code: ErrorCode.Internal, reason: 'internal error' });

/**
 * Answers 500 unless the response was already sent or aborted (uWS then throws on any access, which
 * is exactly the case where nothing more is owed).
 */
export function answerInternalError(res: HttpResponse): void {
  try {
    res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end(INTERNAL_BODY));
  } catch {
    // already answered or aborted
  }
}

/** Handlers and callbacks wrapped by `contained` take at most five arguments (uWS's take up to three). */
type UpToFive = [] | [unknown] | [unknown, unknown] | [unknown, unknown, unknown] | [unknown, unknown, unknown, unknown] | [unknown, unknown, unknown, unknown, unknown];
type Five = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => void;

/**
 * `fn`, with an exception reported and handed to `recover` instead of escaping into uWS or a promise.
 * Five named parameters rather than `...args`: a rest array is an object per call (~40 B per received
 * message and per drain), which V8 does not elide in code it has not optimized (a handler called a few
 * hundred times a second stays unoptimized; bench/README.md "Allocation per publish and the JIT tier").
 */
export function contained<A extends UpToFive>(where: HandlerName, fault: FaultSink, fn: (...args: A) => void, recover: (...args: A) => void): (...args: A) => void {
  const call = fn as Five;
  const undo = recover as Five;
  const wrapped: Five = (a, b, c, d, e) => {
    try {
      call(a, b, c, d, e);
    } catch (err) {
      fault(where, err);
      undo(a, b, c, d, e);
    }
  };
  return wrapped as (...args: A) => void;
}

/** An HTTP route whose exceptions end in a 500 for that request (uWS aborts the process otherwise). */
export function containRoute(fault: FaultSink, route: (res: HttpResponse, req: HttpRequest) => void): (res: HttpResponse, req: HttpRequest) => void {
  return contained('http', fault, route, answerInternalError);
}

/**
 * A WebSocket behaviour whose handler exceptions stay with their connection: `end` closes it (1011).
 * An exception escaping a uWS handler reaches process 'uncaughtException' and, without a listener,
 * kills the process; a throwing upgrade also leaves the request unanswered, which uWS aborts on.
 */
export function containSocket<U>(b: WebSocketBehavior<U>, fault: FaultSink, end: (ws: WebSocket<U>) => void): WebSocketBehavior<U> {
  const { upgrade, open, message, drain, dropped, close } = b;
  return {
    ...b,
    ...(upgrade && { upgrade: contained('upgrade', fault, upgrade, answerInternalError) }),
    ...(open && { open: contained('open', fault, open, end) }),
    ...(message && { message: contained('message', fault, message, end) }),
    ...(drain && { drain: contained('drain', fault, drain, end) }),
    // Closing inside dropped() (uWS's publish loop) crashes: close once the publish returned.
    ...(dropped && { dropped: contained('dropped', fault, dropped, (ws) => queueMicrotask(() => end(ws))) }),
    // The connection is already gone; what is left is to record it.
    ...(close && { close: contained('close', fault, close, () => undefined) }),
  };
}
