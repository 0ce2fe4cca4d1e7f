import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Broker, PublishOutcome } from '../broker/broker';
import type { Config } from '../config/schema';
import type { Stats } from '../metrics/stats';
import { decodeBounded } from '../protocol/codec';
import { GatewayError } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import { type Aborted, readBody, watchAbort } from '../server/http-reply';
import type { ServerControl } from '../session/server-control';
import type { PusherApp, PusherApps } from './apps';
import type { PusherChannelQueries } from './channel-queries';
import { channelKind } from './channels';
import type { PusherLimits } from './limits';
import { verifyRestRequest } from './signature';
import { publishStart } from '../metrics/publish-clock';

/** What both Pusher doors (sockets and REST) are built from. */
export interface PusherCommonDeps {
  readonly config: Config;
  readonly apps: PusherApps;
  readonly limits: PusherLimits;
  readonly broker: Broker;
  readonly stats: Stats;
}

export interface PusherRestDeps extends PusherCommonDeps {
  /** Channel counts and presence users over the cluster. */
  readonly channelQueries: PusherChannelQueries;
  /** terminate_connections reaches every node through it. */
  readonly control: ServerControl;
}

/** A refusal with Pusher's status and a plain-text message, as Pusher's API answers. */
class RestError {
  constructor(
    readonly status: string,
    readonly message: string,
  ) {}
}

const bad = (message: string) => new RestError('400 Bad Request', message);

/** Which `info` attributes a call asked for. */
interface InfoAttributes {
  readonly subscriptionCount: boolean;
  readonly userCount: boolean;
}

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
  const rest = new PusherRest(deps);
  publishRoutes(app, deps, rest);
  queryRoutes(app, deps, rest);
}

/** The calls that publish: events and batch_events (with the `info` they may ask for). */
function publishRoutes(app: TemplatedApp, deps: PusherRestDeps, rest: PusherRest): void {
  rest.route(app, 'post', '/apps/:id/events', (a, _p, _q, body) => {
    const e = rest.parseEvent(parseJson(body, deps.config.maxDepth), 'event');
    const attrs = e.info === undefined ? null : rest.infoAttributes(e.info, e.channels);
    const pending = rest.publishEvent(a, e);
    if (attrs === null) return pending.length === 0 ? {} : rest.settle(pending, {});
    return rest.settle(pending, rest.channelInfo(a, e.channels, attrs).then((info) => ({ channels: Object.fromEntries(e.channels.map((c, i) => [c, info[i]])) })));
  });

  rest.route(app, 'post', '/apps/:id/batch_events', (a, _p, _q, body) => {
    const raw = parseJson(body, deps.config.maxDepth) as { batch?: unknown };
    if (!Array.isArray(raw?.batch) || raw.batch.length === 0) throw bad('batch must be a non-empty array');
    if (raw.batch.length > deps.limits.maxBatchSize) throw bad(`at most ${deps.limits.maxBatchSize} events per batch`);
    // Every event is checked before any is published: a bad one publishes nothing.
    const events = raw.batch.map((item: unknown, i: number) => {
      const r = item as Record<string, unknown>;
      if (Array.isArray(r?.channels)) throw bad(`batch[${i}]: one channel per batch event`);
      return rest.parseEvent(item, `batch[${i}]`);
    });
    const attrs = events.map((e) => (e.info === undefined ? null : rest.infoAttributes(e.info, e.channels)));
    const pending = events.flatMap((e) => rest.publishEvent(a, e));
    if (attrs.every((x) => x === null)) return pending.length === 0 ? {} : rest.settle(pending, {});
    const infos = events.map((e, i) => (attrs[i] === null ? {} : rest.channelInfo(a, e.channels, attrs[i] as InfoAttributes).then((info) => info[0])));
    return rest.settle(pending, Promise.all(infos).then((batch) => ({ batch })));
  });
}

/** The calls that ask the cluster: channels, one channel, its users; and terminate_connections. */
function queryRoutes(app: TemplatedApp, deps: PusherRestDeps, rest: PusherRest): void {
  rest.route(app, 'get', '/apps/:id/channels', async (a, _p, q) => {
    const prefix = q.get('filter_by_prefix') ?? '';
    const attrs = rest.infoAttributes(q.get('info') ?? '', []);
    if (attrs.userCount && !prefix.startsWith('presence-')) throw bad('user_count requires filter_by_prefix=presence-');
    const listed: string[] = [];
    const subs: number[] = [];
    for (const { topic, subscribers } of await deps.channelQueries.active(deps.apps.topicOf(a, prefix))) {
      const channel = deps.apps.channelOf(a, topic);
      if (channel === null || channelKind(channel) === null) continue;
      listed.push(channel);
      subs.push(subscribers);
    }
    const info = attrs.subscriptionCount || attrs.userCount ? await rest.channelInfo(a, listed, attrs, subs) : null;
    return { channels: Object.fromEntries(listed.map((c, i) => [c, info?.[i] ?? {}])) };
  });

  rest.route(app, 'get', '/apps/:id/channels/:name', async (a, p, q) => {
    const channel = p[1] ?? '';
    if (channelKind(channel) === null) throw bad('invalid channel name');
    const attrs = rest.infoAttributes(q.get('info') ?? '', [channel]);
    const subs = await deps.channelQueries.subscribers([deps.apps.topicOf(a, channel)]);
    const [info] = await rest.channelInfo(a, [channel], attrs, subs);
    return { occupied: (subs[0] as number) > 0, ...info };
  });

  rest.route(app, 'get', '/apps/:id/channels/:name/users', async (a, p) => {
    const channel = p[1] ?? '';
    if (channelKind(channel)?.presence !== true) throw bad('users are listed for presence channels only');
    const [users] = await deps.channelQueries.users([deps.apps.topicOf(a, channel)]);
    return { users: (users as string[]).map((id) => ({ id })) };
  });

  rest.route(app, 'post', '/apps/:id/users/:user/terminate_connections', async (a, p) => {
    await deps.control.run({ pusherApp: a.id, pusherUser: p[1] ?? '' }, { kind: 'disconnect', reconnect: false });
    return {};
  });
}

/** What the REST routes share: the signed route wrapper, event checks, publishing and channel info. */
class PusherRest {
  private readonly payload = new Payload();

  constructor(private readonly deps: PusherRestDeps) {}


  /** Reads the request synchronously (HttpRequest dies with the handler), then the body if any. */
  route(app: TemplatedApp, method: 'get' | 'post', pattern: string, handle: (app: PusherApp, params: string[], query: URLSearchParams, body: Buffer) => unknown | Promise<unknown>) {
    app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
      const path = req.getUrl();
      const rawQuery = req.getQuery() ?? '';
      const params = Array.from({ length: pattern.split(':').length - 1 }, (_, i) => req.getParameter(i) ?? '');
      const abort = watchAbort(res);
      const run = (body: Buffer) => {
        const a = this.deps.apps.withId(params[0] ?? '');
        if (a === undefined) return reply(res, abort, new RestError('404 Not Found', 'Unknown app'));
        const query = new URLSearchParams(rawQuery);
        const failure = verifyRestRequest({ method: method.toUpperCase(), path, params: new Map(query), body }, a.key, a.secret, Math.floor(Date.now() / 1000));
        if (failure !== null) {
          this.deps.stats.pusherRestRefused++;
          return reply(res, abort, new RestError('401 Unauthorized', `Authentication failed: ${failure.replace(/_/g, ' ')}`));
        }
        let result: unknown;
        try {
          result = handle(a, params, query, body);
        } catch (e) {
          result = e instanceof RestError ? e : bad('malformed request');
        }
        if (result instanceof Promise) result.then((r) => reply(res, abort, r), (e) => reply(res, abort, e instanceof RestError ? e : new RestError('503 Service Unavailable', 'broker unavailable')));
        else reply(res, abort, result);
      };
      if (method === 'get') return run(Buffer.alloc(0));
      readBody(res, this.deps.config.maxBody, abort, run, () => reply(res, abort, new RestError('413 Payload Too Large', 'Request body too large')));
    });
  }

  parseEvent(raw: unknown, where: string): EventItem {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`${where}: expected an object`);
    const r = raw as Record<string, unknown>;
    if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 200) throw bad(`${where}: name must be a string of 1..200 characters`);
    const data = typeof r.data === 'string' ? r.data : r.data === undefined ? undefined : JSON.stringify(r.data);
    if (data === undefined) throw bad(`${where}: data is required`);
    if (Buffer.byteLength(data) > this.deps.limits.maxEventBytes) throw new RestError('413 Payload Too Large', `${where}: data over ${this.deps.limits.maxEventBytes} bytes`);
    const channels = Array.isArray(r.channels) ? r.channels : typeof r.channel === 'string' ? [r.channel] : null;
    if (channels === null || channels.length === 0) throw bad(`${where}: channels (or channel) required`);
    if (channels.length > this.deps.limits.maxChannelsPerEvent) throw bad(`${where}: at most ${this.deps.limits.maxChannelsPerEvent} channels`);
    for (const c of channels) if (typeof c !== 'string' || channelKind(c) === null) throw bad(`${where}: invalid channel name ${String(c)}`);
    if (r.socket_id !== undefined && (typeof r.socket_id !== 'string' || !SOCKET_ID.test(r.socket_id))) throw bad(`${where}: invalid socket_id`);
    if (r.info !== undefined && typeof r.info !== 'string') throw bad(`${where}: info must be a string`);
    return { name: r.name, data, channels: channels as string[], socketId: r.socket_id as string | undefined, info: r.info as string | undefined };
  }

  publishEvent(a: PusherApp, e: EventItem): Promise<PublishOutcome>[] {
    const pending: Promise<PublishOutcome>[] = [];
    const startedAt = publishStart();
    for (const channel of e.channels) {
      const value = e.socketId === undefined ? { event: e.name, data: e.data } : { event: e.name, data: e.data, socket_id: e.socketId };
      const outcome = this.deps.broker.publish(this.deps.apps.topicOf(a, channel), this.payload.setValue(value, false), 'http', startedAt);
      if (outcome instanceof Promise) pending.push(outcome);
      else if (outcome instanceof GatewayError) throw new RestError('503 Service Unavailable', outcome.reason);
    }
    return pending;
  }

  /** The attributes an `info` parameter asks for, checked before anything is asked of the cluster. */
  infoAttributes(info: string, channels: readonly string[]): InfoAttributes {
    const attrs = { subscriptionCount: false, userCount: false };
    for (const attr of info.split(',')) {
      if (attr === 'subscription_count') attrs.subscriptionCount = true;
      else if (attr === 'user_count') attrs.userCount = true;
      else if (attr !== '') throw bad(`unknown info attribute ${attr}`);
    }
    if (attrs.userCount && channels.some((c) => channelKind(c)?.presence !== true)) throw bad('user_count is available for presence channels only');
    return attrs;
  }

  /**
   * The attributes of each channel over the cluster: subscription_count counts every subscriber of the
   * channel's topic (Pusher and wsgate sockets alike, as `occupied` does), user_count the distinct users.
   * `known` are subscriber counts the caller already has.
   */
  async channelInfo(a: PusherApp, channels: readonly string[], attrs: InfoAttributes, known?: readonly number[]): Promise<Record<string, number>[]> {
    const topics = channels.map((c) => this.deps.apps.topicOf(a, c));
    const [subs, users] = await Promise.all([
      attrs.subscriptionCount ? (known ?? this.deps.channelQueries.subscribers(topics)) : undefined,
      attrs.userCount ? this.deps.channelQueries.users(topics) : undefined,
    ]);
    return channels.map((_, i) => ({
      ...(subs === undefined ? {} : { subscription_count: subs[i] as number }),
      ...(users === undefined ? {} : { user_count: (users[i] as string[]).length }),
    }));
  }

  /** The response of a call that published and may add `info`: 503 when a publish failed. */
  async settle(pending: Promise<PublishOutcome>[], body: unknown): Promise<unknown> {
    const [outcomes, value] = await Promise.all([Promise.all(pending), body]);
    const failed = outcomes.find((o): o is GatewayError => o instanceof GatewayError);
    return failed === undefined ? value : new RestError('503 Service Unavailable', failed.reason);
  }
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
