import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { MAX_PAGE_LIMIT, type StreamPosition, parseLimit } from '../protocol/commands';
import { checkTopic } from '../protocol/topic';
import type { Outcome, TopicQueries } from '../session/topic-queries';
import type { Presence } from '../session/presence';
import { apiKeyCheck } from './api-key';
import { containRoute, type FaultSink } from './contain';
import { type Aborted, sendError, sendJson, watchAbort } from './http-reply';

const STATUS: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.Unauthorized]: '401 Unauthorized',
  [ErrorCode.NotFound]: '404 Not Found',
  [ErrorCode.PresenceDisabled]: '404 Not Found',
  [ErrorCode.UnrecoverablePosition]: '409 Conflict',
  [ErrorCode.Unavailable]: '503 Service Unavailable',
};
const statusOf = (e: GatewayError): string => STATUS[e.code] ?? '400 Bad Request';

/** A query that answers one topic: its name and the request's query string. */
type TopicHandler = (topic: string, query: URLSearchParams) => Outcome<object>;

function sinceOf(query: URLSearchParams): StreamPosition | undefined | GatewayError {
  const seq = query.get('since_seq');
  const epoch = query.get('epoch');
  if (seq === null && epoch === null) return undefined;
  if (seq === null || epoch === null || !/^\d{1,15}$/.test(seq) || epoch.length > 64) {
    return new GatewayError(ErrorCode.BadSince, 'since_seq (an integer >= 0) and epoch go together');
  }
  return { seq: Number(seq), epoch };
}

function limitOf(query: URLSearchParams): number | GatewayError {
  const raw = query.get('limit');
  const limit = parseLimit(raw === null ? undefined : /^\d{1,7}$/.test(raw) ? Number(raw) : NaN);
  return limit ?? new GatewayError(ErrorCode.BadRequest, `limit must be an integer 1..${MAX_PAGE_LIMIT}`);
}

/**
 * The topics part of the HTTP API (API key as POST /publish): `GET /topics` (active topics, cluster-wide),
 * `GET /topics/<topic>/history`, `/presence` and `/presence/stats`. The topic may hold `/`, so the operation is read from the end of
 * the path.
 */
export function registerTopicRoutes(app: TemplatedApp, config: Config, queries: TopicQueries, presence: Presence, fault: FaultSink): void {
  const authorized = apiKeyCheck(config.apiKey);
  const operations: [suffix: string, handler: TopicHandler][] = [
    [
      '/history',
      (topic, query) => {
        const limit = limitOf(query);
        if (limit instanceof GatewayError) return limit;
        const since = sinceOf(query);
        if (since instanceof GatewayError) return since;
        return queries.history(null, topic, limit, since);
      },
    ],
    ['/presence/stats', (topic) => presence.stats(null, topic)],
    ['/presence', (topic) => presence.list(null, topic)],
  ];

  const reply = (res: HttpResponse, abort: Aborted, outcome: Outcome<object>) => {
    const done = (o: object | GatewayError) => (o instanceof GatewayError ? sendError(res, statusOf(o), o, abort) : sendJson(res, '200 OK', o, abort));
    if (outcome instanceof Promise) outcome.then(done, () => done(new GatewayError(ErrorCode.Unavailable, 'broker failed')));
    else done(outcome);
  };

  /** Watches for the client leaving and checks the API key; null when refused (already answered). */
  const admit = (res: HttpResponse, req: HttpRequest): Aborted | null => {
    const abort = watchAbort(res);
    if (authorized(req.getHeader('authorization'))) return abort;
    reply(res, abort, new GatewayError(ErrorCode.Unauthorized, 'Authorization: Bearer <api key> required'));
    return null;
  };

  app.get('/topics', containRoute(fault, (res: HttpResponse, req: HttpRequest) => {
    const abort = admit(res, req);
    if (abort === null) return;
    const query = new URLSearchParams(req.getQuery() ?? '');
    const limit = limitOf(query);
    if (limit instanceof GatewayError) return reply(res, abort, limit);
    const prefix = query.get('prefix') ?? '';
    const cursor = query.get('cursor') ?? '';
    if (prefix.length > config.maxTopicLength || cursor.length > config.maxTopicLength) {
      return reply(res, abort, new GatewayError(ErrorCode.BadRequest, `prefix and cursor are at most ${config.maxTopicLength} characters`));
    }
    reply(res, abort, queries.topics({ prefix, limit, cursor }));
  }));

  app.get('/topics/*', containRoute(fault, (res: HttpResponse, req: HttpRequest) => {
    const abort = admit(res, req);
    if (abort === null) return;
    const path = req.getUrl().slice('/topics/'.length);
    const query = new URLSearchParams(req.getQuery() ?? '');
    const op = operations.find(([suffix]) => path.endsWith(suffix));
    if (op === undefined) return reply(res, abort, new GatewayError(ErrorCode.NotFound, 'no such route'));
    let topic: string;
    try {
      topic = decodeURIComponent(path.slice(0, -op[0].length));
    } catch {
      return reply(res, abort, new GatewayError(ErrorCode.InvalidTopic, 'the topic is not valid percent-encoding'));
    }
    const invalid = checkTopic(topic, config.maxTopicLength);
    reply(res, abort, invalid ?? op[1](topic, query));
  }));
}
