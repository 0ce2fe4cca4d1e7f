import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Broker, PublishOutcome } from '../broker/broker';
import type { Config } from '../config/schema';
import type { Stats } from '../metrics/stats';
import { decodeBounded } from '../protocol/codec';
import { GatewayError } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { type Aborted, readBody, watchAbort } from '../server/http-reply';
import type { PusherApp, PusherApps } from './apps';
import { channelKind } from './channels';
import type { PusherLimits } from './limits';
import type { PusherSockets } from './pusher-behavior';
import { verifyRestRequest } from './signature';

export interface PusherRestDeps {
  readonly config: Config;
  readonly apps: PusherApps;
  readonly limits: PusherLimits;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly stats: Stats;
  /** This node's users of a presence channel's topic. */
  readonly members: { users(topic: string): string[] };
  readonly sockets: PusherSockets;
}

/** A refusal with Pusher's status and a plain-text message, as Pusher's API answers. */
class RestError {
  constructor(
    readonly status: string,
    readonly message: string,
  ) {}
}

const bad = (message: string) => new RestError('400 Bad Request', message);

/** One event to publish, validated. */
interface EventItem {
  readonly name: string;
  readonly data: string;
  readonly channels: readonly string[];
  readonly socketId: string | undefined;
  readonly info: string | undefined;
}

const SOCKET_ID = /^\d+\.\d+$/;

/**
 * Pusher's HTTP API, signed with the app's key and secret (auth_key, auth_timestamp, auth_version,
 * body_md5, auth_signature; anything else 401). The status is always written first: uWS fixes it at
 * the first header, so a refusal can never go out as 200.
 */
export function registerPusherRest(app: TemplatedApp, deps: PusherRestDeps): void {
  const { apps, limits, hub, broker, stats, members, config } = deps;
  const payload = new Payload();

  /** Reads the request synchronously (HttpRequest dies with the handler), then the body if any. */
  const route = (method: 'get' | 'post', pattern: string, handle: (app: PusherApp, params: string[], query: URLSearchParams, body: Buffer) => unknown | Promise<unknown>) => {
    app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
      const path = req.getUrl();
      const rawQuery = req.getQuery() ?? '';
      const params = Array.from({ length: pattern.split(':').length - 1 }, (_, i) => req.getParameter(i) ?? '');
      const abort = watchAbort(res);
      const run = (body: Buffer) => {
        const a = apps.withId(params[0] ?? '');
        if (a === undefined) return reply(res, abort, new RestError('404 Not Found', 'Unknown app'));
        const query = new URLSearchParams(rawQuery);
        const failure = verifyRestRequest({ method: method.toUpperCase(), path, params: new Map(query), body }, a.key, a.secret, Math.floor(Date.now() / 1000));
        if (failure !== null) {
          stats.pusherRestRefused++;
          return reply(res, abort, new RestError('401 Unauthorized', `Authentication failed: ${failure.replace(/_/g, ' ')}`));
        }
        let result: unknown;
        try {
          result = handle(a, params, query, body);
        } catch (e) {
          result = e instanceof RestError ? e : bad('malformed request');
        }
        if (result instanceof Promise) result.then((r) => reply(res, abort, r), () => reply(res, abort, new RestError('503 Service Unavailable', 'broker unavailable')));
        else reply(res, abort, result);
      };
      if (method === 'get') return run(Buffer.alloc(0));
      readBody(res, config.maxBody, abort, run, () => reply(res, abort, new RestError('413 Payload Too Large', 'Request body too large')));
    });
  };

  const parseEvent = (raw: unknown, where: string): EventItem => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`${where}: expected an object`);
    const r = raw as Record<string, unknown>;
    if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 200) throw bad(`${where}: name must be a string of 1..200 characters`);
    const data = typeof r.data === 'string' ? r.data : r.data === undefined ? undefined : JSON.stringify(r.data);
    if (data === undefined) throw bad(`${where}: data is required`);
    if (Buffer.byteLength(data) > limits.maxEventBytes) throw new RestError('413 Payload Too Large', `${where}: data over ${limits.maxEventBytes} bytes`);
    const channels = Array.isArray(r.channels) ? r.channels : typeof r.channel === 'string' ? [r.channel] : null;
    if (channels === null || channels.length === 0) throw bad(`${where}: channels (or channel) required`);
    if (channels.length > limits.maxChannelsPerEvent) throw bad(`${where}: at most ${limits.maxChannelsPerEvent} channels`);
    for (const c of channels) if (typeof c !== 'string' || channelKind(c) === null) throw bad(`${where}: invalid channel name ${String(c)}`);
    if (r.socket_id !== undefined && (typeof r.socket_id !== 'string' || !SOCKET_ID.test(r.socket_id))) throw bad(`${where}: invalid socket_id`);
    if (r.info !== undefined && typeof r.info !== 'string') throw bad(`${where}: info must be a string`);
    return { name: r.name, data, channels: channels as string[], socketId: r.socket_id as string | undefined, info: r.info as string | undefined };
  };

  const publishEvent = (a: PusherApp, e: EventItem): Promise<PublishOutcome>[] => {
    const pending: Promise<PublishOutcome>[] = [];
    const startedAt = performance.now();
    for (const channel of e.channels) {
      const value = e.socketId === undefined ? { event: e.name, data: e.data } : { event: e.name, data: e.data, socket_id: e.socketId };
      const outcome = broker.publish(apps.topicOf(a, channel), payload.setValue(value, false), 'http', startedAt);
      if (outcome instanceof Promise) pending.push(outcome);
      else if (outcome instanceof GatewayError) throw new RestError('503 Service Unavailable', outcome.reason);
    }
    return pending;
  };

  /** `info` attributes of a channel: subscription_count, and user_count on presence channels. */
  const channelInfo = (a: PusherApp, channel: string, info: string): Record<string, number> => {
    const topic = apps.topicOf(a, channel);
    const out: Record<string, number> = {};
    for (const attr of info.split(',')) {
      if (attr === 'subscription_count') out.subscription_count = hub.get(topic)?.pusherSubs ?? 0;
      else if (attr === 'user_count') {
        if (channelKind(channel)?.presence !== true) throw bad('user_count is available for presence channels only');
        out.user_count = members.users(topic).length;
      } else if (attr !== '') throw bad(`unknown info attribute ${attr}`);
    }
    return out;
  };

  const settle = (pending: Promise<PublishOutcome>[], body: unknown): unknown =>
    pending.length === 0
      ? body
      : Promise.all(pending).then((outcomes) => {
          const failed = outcomes.find((o): o is GatewayError => o instanceof GatewayError);
          return failed === undefined ? body : new RestError('503 Service Unavailable', failed.reason);
        });

  route('post', '/apps/:id/events', (a, _p, _q, body) => {
    const e = parseEvent(parseJson(body, config.maxDepth), 'event');
    const pending = publishEvent(a, e);
    const info = e.info === undefined ? {} : { channels: Object.fromEntries(e.channels.map((c) => [c, channelInfo(a, c, e.info as string)])) };
    return settle(pending, info);
  });

  route('post', '/apps/:id/batch_events', (a, _p, _q, body) => {
    const raw = parseJson(body, config.maxDepth) as { batch?: unknown };
    if (!Array.isArray(raw?.batch) || raw.batch.length === 0) throw bad('batch must be a non-empty array');
    if (raw.batch.length > limits.maxBatchSize) throw bad(`at most ${limits.maxBatchSize} events per batch`);
    // Every event is checked before any is published: a bad one publishes nothing.
    const events = raw.batch.map((item: unknown, i: number) => {
      const r = item as Record<string, unknown>;
      if (Array.isArray(r?.channels)) throw bad(`batch[${i}]: one channel per batch event`);
      return parseEvent(item, `batch[${i}]`);
    });
    const pending = events.flatMap((e) => publishEvent(a, e));
    const withInfo = events.some((e) => e.info !== undefined);
    return settle(pending, withInfo ? { batch: events.map((e) => (e.info === undefined ? {} : channelInfo(a, e.channels[0] as string, e.info))) } : {});
  });

  route('get', '/apps/:id/channels', (a, _p, q) => {
    const prefix = q.get('filter_by_prefix') ?? '';
    const info = q.get('info') ?? '';
    if (info.split(',').includes('user_count') && !prefix.startsWith('presence-')) throw bad('user_count requires filter_by_prefix=presence-');
    const channels: Record<string, Record<string, number>> = {};
    for (const [topic, state] of hub.entries()) {
      if (state.pusherSubs === 0 && state.jsonSubs + state.packSubs === 0) continue;
      const channel = apps.channelOf(a, topic);
      if (channel === null || !channel.startsWith(prefix) || channelKind(channel) === null) continue;
      channels[channel] = info === '' ? {} : channelInfo(a, channel, info);
    }
    return { channels };
  });

  route('get', '/apps/:id/channels/:name', (a, p, q) => {
    const channel = p[1] ?? '';
    if (channelKind(channel) === null) throw bad('invalid channel name');
    const subs = hub.get(apps.topicOf(a, channel))?.subscribers ?? 0;
    const info = q.get('info') ?? '';
    return { occupied: subs > 0, ...(info === '' ? {} : channelInfo(a, channel, info)) };
  });

  route('get', '/apps/:id/channels/:name/users', (a, p) => {
    const channel = p[1] ?? '';
    if (channelKind(channel)?.presence !== true) throw bad('users are listed for presence channels only');
    return { users: members.users(apps.topicOf(a, channel)).map((id) => ({ id })) };
  });

  route('post', '/apps/:id/users/:user/terminate_connections', (a, p) => {
    const user = p[1] ?? '';
    for (const ws of deps.sockets.values()) {
      const conn = ws.getUserData();
      if (conn.app.id === a.id && conn.userId === user && !conn.closed) {
        conn.closeReason = 'terminated';
        ws.end(4009, 'connection terminated by the application');
      }
    }
    return {};
  });
}

/** The body, nesting bounded like every other decode (a batch, its event, the event's data). */
function parseJson(body: Buffer, maxDepth: number): unknown {
  let value: unknown;
  try {
    value = decodeBounded(body, false, maxDepth + 3, maxDepth);
  } catch {
    throw bad('body is not JSON');
  }
  if (value instanceof GatewayError) throw bad(value.reason);
  return value;
}

function reply(res: HttpResponse, abort: Aborted, result: unknown): void {
  if (abort.aborted) return;
  res.cork(() => {
    if (result instanceof RestError) res.writeStatus(result.status).writeHeader('content-type', 'text/plain; charset=utf-8').end(result.message);
    else res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(JSON.stringify(result));
  });
}
