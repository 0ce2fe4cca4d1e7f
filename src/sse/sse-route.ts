import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Admission } from '../auth/admitted';
import type { Config } from '../config/schema';
import { OriginPolicy } from '../guard/origin';
import type { Logger } from '../log';
import type { Stats } from '../metrics/stats';
import { jsonCodec } from '../protocol/codec';
import { GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { AsyncUpgrades } from '../server/async-upgrade';
import { answerInternalError, contained, containRoute, type FaultSink } from '../server/contain';
import type { Aborted } from '../server/http-reply';
import { queryValue } from '../server/query';
import { refuse } from '../server/socket-behavior';
import type { SessionCore } from '../session/core';
import { type Entry, type Knocking, isEntryRefusal } from '../session/entrance';
import { newSession } from '../session/session';
import type { SubAnswer } from '../session/subscriptions';
import { SSE_MAX_TOPICS, parseCursor } from './cursor';
import { SseDoor } from './sse-door';
import { SseStream } from './stream';

export interface SseDeps {
  readonly config: Config;
  readonly core: SessionCore;
  readonly stats: Stats;
  readonly log: Logger;
  readonly fault: FaultSink;
}

/** How long EventSource waits before reconnecting (the stream's `retry:` field), in ms. */
export const SSE_RETRY_MS = 2000;

/** What the handler copies out of the request (HttpRequest dies when it returns). */
interface SseRequest {
  readonly origin: string;
  readonly resume: readonly (StreamPosition | undefined)[];
}

/**
 * The SSE front door: `GET <--sse-path>?topics=a,b` (docs/protocol.md "Server-Sent Events"). Entry is
 * the WebSocket door's (token, connect proxy, origin policy, per-address and node limits); the stream
 * then carries deliveries, join/leave and the session's notices as events whose id resumes every topic.
 */
export function registerSse(app: TemplatedApp, deps: SseDeps): SseDoor {
  const { config, core, stats, fault } = deps;
  const door = new SseDoor(config, stats, core);
  core.attach(door);
  const origins = OriginPolicy.fromConfig(config.allowedOrigins);
  const upgrades = new AsyncUpgrades(stats, core.entrance.guard);
  const maxTopics = Math.min(config.maxTopicsPerConn, SSE_MAX_TOPICS);
  const start = (res: HttpResponse, sr: SseRequest, k: Knocking, a: Admission, abort?: Aborted) => {
    const entry = core.entrance.enter(k, a, maxTopics);
    if (isEntryRefusal(entry)) return refuse(stats, res, entry, abort);
    open(deps, door, res, sr, entry);
  };
  app.get(
    config.ssePath,
    containRoute(fault, (res, req) => {
      const query = req.getQuery() ?? '';
      const resume = parseCursor(req.getHeader('last-event-id') || (queryValue(query, 'lastEventId') ?? ''));
      if (resume instanceof GatewayError) return refuse(stats, res, { result: 'bad_request', error: resume });
      const origin = req.getHeader('origin');
      const sr: SseRequest = { origin: origin !== '' && origins.allows(origin, req.getHeader('host')) ? origin : '', resume };
      const k = core.entrance.knock(res, req, query, jsonCodec, maxTopics);
      if (isEntryRefusal(k)) return refuse(stats, res, k);
      const admission = k.admission;
      if (!(admission instanceof Promise)) return start(res, sr, k, admission);
      const finish = contained('upgrade', fault, (a: Admission, abort: Aborted) => start(res, sr, k, a, abort), (_a, abort) => !abort.aborted && answerInternalError(res));
      upgrades.wait(res, admission, finish);
    }),
  );
  // Preflight for fetch-based clients that send Authorization or Last-Event-ID (EventSource needs none).
  app.options(config.ssePath, (res, req) => preflight(res, req, origins));
  return door;
}

/** Starts the stream: headers, `retry:`, the session, then each topic subscribed from where the cursor says. */
function open(deps: SseDeps, door: SseDoor, res: HttpResponse, sr: SseRequest, entry: Entry): void {
  const { core, stats } = deps;
  const opening = entry.opening ?? { query: [], server: [] };
  const s = newSession(jsonCodec, entry.grant, null, entry.address);
  const topics = [...opening.query, ...opening.server];
  const h = new SseStream(res, s, topics, sr.resume);
  res.onAborted(() => {
    h.done = true;
    door.closed(h, 1000);
  });
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache').writeHeader('x-accel-buffering', 'no');
    if (sr.origin !== '') res.writeHeader('access-control-allow-origin', sr.origin).writeHeader('access-control-allow-credentials', 'true').writeHeader('vary', 'Origin');
    res.write(`retry: ${SSE_RETRY_MS}\n\n`);
  });
  door.streams.add(h);
  stats.sseConnections++;
  core.opened(door, h, s);
  topics.forEach((topic, i) => {
    const since = sr.resume[i];
    const answer = answered(door, h, i, topic, since);
    // The application gave the server topics (connect proxy): no grant check, no subscribe proxy.
    const err = core.subscriptions.subscribe(door, h, s, { topic, id: undefined, since }, answer, i >= opening.query.length);
    if (err !== null) answer(err);
  });
}

/**
 * A topic's subscription answer as an event: `subscribed` (with `since`: every missed message follows
 * it), or `gap` when the messages after the stream's position cannot all be replayed, or `refused`.
 */
function answered(door: SseDoor, h: SseStream, i: number, topic: string, since: StreamPosition | undefined): SubAnswer {
  return (o) => {
    if (o instanceof GatewayError) return door.event(h, 'refused', { t: topic, code: o.code, reason: o.reason });
    // Recovered: the cursor keeps the stream's position; the replayed events move it.
    if (o.recovered !== true) h.cursor.set(i, o.epoch, o.seq);
    if (since !== undefined && o.recovered !== true) return door.event(h, 'gap', { t: topic, seq: o.seq, epoch: o.epoch });
    door.event(h, 'subscribed', since === undefined ? { t: topic, seq: o.seq, epoch: o.epoch } : { t: topic, seq: o.seq, epoch: o.epoch, recovered: true });
  };
}

function preflight(res: HttpResponse, req: HttpRequest, origins: OriginPolicy): void {
  const origin = req.getHeader('origin');
  const allowed = origin !== '' && origins.allows(origin, req.getHeader('host'));
  res.cork(() => {
    res.writeStatus(allowed ? '204 No Content' : '403 Forbidden');
    if (allowed) {
      res.writeHeader('access-control-allow-origin', origin).writeHeader('access-control-allow-credentials', 'true').writeHeader('vary', 'Origin');
      res.writeHeader('access-control-allow-methods', 'GET').writeHeader('access-control-allow-headers', 'authorization, last-event-id, cache-control');
    }
    res.end();
  });
}
