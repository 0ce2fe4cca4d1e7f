import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import type { Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { checkTopic } from '../protocol/topic';
import type { ControlAction, ControlKind, ControlTarget, ServerControl } from '../session/server-control';
import { apiKeyCheck } from './api-key';
import { containRoute, type FaultSink } from './contain';
import { readBody, sendError, sendJson, watchAbort } from './http-reply';

/** Control bodies are a few fields. */
const MAX_BODY = 4096;
const MAX_ID = 256;

const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID;

/** Reads `{"user":…}` or `{"client":…}` and the kind's own fields; the error says what is expected. */
function parseControl(kind: ControlKind, body: unknown, maxTopicLength: number): { target: ControlTarget; action: ControlAction } | GatewayError {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return new GatewayError(ErrorCode.BadRequest, 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (id(b.user) === id(b.client)) return new GatewayError(ErrorCode.BadRequest, 'give either "user" or "client" (a string of 1..256 characters)');
  const target: ControlTarget = id(b.user) ? { user: b.user } : { client: b.client as string };
  if (kind === 'disconnect') {
    if (b.reconnect !== undefined && typeof b.reconnect !== 'boolean') return new GatewayError(ErrorCode.BadRequest, '"reconnect" must be true or false');
    return { target, action: { kind, reconnect: b.reconnect !== false } };
  }
  const invalid = checkTopic(b.topic, maxTopicLength);
  if (invalid !== null) return invalid;
  return { target, action: { kind, topic: b.topic as string } };
}

/**
 * POST /disconnect, /subscribe and /unsubscribe (API key as POST /publish): applied on every node,
 * answered with `{"affected":<connections changed across the cluster>}`.
 */
export function registerControlRoutes(app: TemplatedApp, config: Config, control: ServerControl, stats: Stats, fault: FaultSink): void {
  const authorized = apiKeyCheck(config.apiKey);
  for (const kind of ['disconnect', 'subscribe', 'unsubscribe'] as const) {
    app.post(
      `/${kind}`,
      containRoute(fault, (res: HttpResponse, req: HttpRequest) => {
        const abort = watchAbort(res);
        const refuse = (status: string, e: GatewayError) => {
          stats.serverApiRefused[kind]++;
          sendError(res, status, e, abort);
        };
        if (!authorized(req.getHeader('authorization'))) return refuse('401 Unauthorized', new GatewayError(ErrorCode.Unauthorized, 'Authorization: Bearer <api key> required'));
        readBody(
          res,
          MAX_BODY,
          abort,
          (raw) => {
            let body: unknown;
            try {
              body = JSON.parse(raw.toString('utf8'));
            } catch {
              return refuse('400 Bad Request', new GatewayError(ErrorCode.BadFrame, 'body is not valid JSON'));
            }
            const parsed = parseControl(kind, body, config.maxTopicLength);
            if (parsed instanceof GatewayError) return refuse('400 Bad Request', parsed);
            stats.serverApi[kind]++;
            void control.run(parsed.target, parsed.action).then((r) => sendJson(res, '200 OK', r, abort));
          },
          () => refuse('413 Payload Too Large', new GatewayError(ErrorCode.PayloadTooLarge, `body exceeds ${MAX_BODY} bytes`)),
        );
      }),
    );
  }
}
