import PusherJS, { type Channel, type Options } from 'pusher-js';
import Pusher from 'pusher';
import WebSocket from 'ws';
import { waitFor } from './gateway';

export const APP = { appId: '1', key: 'app-key', secret: 'app-secret' };

/** The real `pusher` server SDK pointed at a gateway. */
export function serverSdk(port: number, app = APP): Pusher {
  return new Pusher({ ...app, host: '127.0.0.1', port: String(port), useTLS: false });
}

/**
 * pusher-js's channelAuthorization answered as an application's auth endpoint answers it: with the
 * server SDK's authorizeChannel (presence channels sign `member`).
 */
export function sdkAuthorization(sdk: Pusher, member: MemberData | undefined): NonNullable<Options['channelAuthorization']> {
  return {
    endpoint: '',
    transport: 'ajax',
    customHandler: (params, callback) => {
      try {
        callback(null, sdk.authorizeChannel(params.socketId, params.channelName, params.channelName.startsWith('presence-') ? member : undefined));
      } catch (e) {
        callback(e as Error, null);
      }
    },
  };
}

/**
 * pusher-js's userAuthentication answered as an application's user-auth endpoint answers it: with the
 * server SDK's authenticateUser for `user`.
 */
export function sdkUserAuthentication(sdk: Pusher, user: string): NonNullable<Options['userAuthentication']> {
  return { endpoint: '', transport: 'ajax', customHandler: (params, callback) => callback(null, sdk.authenticateUser(params.socketId, { id: user })) };
}

/** Signs pusher-js in and resolves once its `#server-to-user-<id>` channel is subscribed. */
export async function signedIn(client: PusherJS): Promise<void> {
  client.signin();
  await waitFor(() => client.user.serverToUserChannel?.subscribed === true, 5000, 'signed in and subscribed to #server-to-user');
}

/** What a presence subscription signs as its member. */
export interface MemberData {
  user_id: string;
  user_info?: Record<string, unknown>;
}

/**
 * The real pusher-js (Node build) against a gateway. Channel auth is produced by the real server SDK,
 * as an application's auth endpoint would (`authorizeChannel`); `member` signs presence subscriptions.
 */
export function pusherClient(port: number, opts: { member?: MemberData; key?: string; sdk?: Pusher; extra?: Partial<Options> } = {}): PusherJS {
  const sdk = opts.sdk ?? serverSdk(port);
  return new PusherJS(opts.key ?? APP.key, {
    cluster: 'local',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: sdkAuthorization(sdk, opts.member),
    ...opts.extra,
  });
}

/** Resolves when `channel` is subscribed; rejects with the subscription error's status. */
export function subscribed(channel: Channel): Promise<unknown> {
  return new Promise((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', resolve);
    channel.bind('pusher:subscription_error', (e: { status: number; error: string }) => reject(Object.assign(new Error(`subscription_error ${e.status}: ${e.error}`), { status: e.status })));
  });
}

/**
 * Runs `fn` with the 30 s timers it arms unreferenced. pusher-js's bundled faye-websocket client, told
 * to close a socket the server already closed with a 40xx code, arms a 30 s close timer that is never
 * cleared; it would hold the test process open after the suite (a client quirk, harmless otherwise).
 */
export async function withUnrefCloseTimers<T>(fn: () => Promise<T>): Promise<T> {
  const real = global.setTimeout;
  const patched = (handler: () => void, ms?: number, ...args: unknown[]) => {
    const t = real(handler, ms, ...args);
    if (ms === 30_000) (t as unknown as NodeJS.Timeout).unref();
    return t;
  };
  global.setTimeout = Object.assign(patched, real) as typeof global.setTimeout;
  try {
    return await fn();
  } finally {
    global.setTimeout = real;
  }
}

/** Resolves when the client's connection reaches `state`. */
export function connectionState(client: PusherJS, state: string): Promise<void> {
  return new Promise((resolve) => {
    if (client.connection.state === state) return resolve();
    const on = (s: { current: string }) => {
      if (s.current !== state) return;
      client.connection.unbind('state_change', on);
      resolve();
    };
    client.connection.bind('state_change', on);
  });
}

/** Collects events of `name` on `channel`. */
export function collect(channel: Channel, name: string): unknown[] {
  const got: unknown[] = [];
  channel.bind(name, (d: unknown) => got.push(d));
  return got;
}

/** A raw Pusher socket (no library): the frames exactly as the server sends them. */
export async function rawPusher(port: number, key = APP.key, query = 'protocol=7&client=js&version=8.4.0'): Promise<{ ws: WebSocket; frames: Record<string, unknown>[]; socketId: string | null }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${key}?${query}`);
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await waitFor(() => frames.length > 0, 2000, 'first frame');
  const first = frames[0] as { event: string; data: unknown };
  const socketId = first.event === 'pusher:connection_established' ? (JSON.parse(first.data as string) as { socket_id: string }).socket_id : null;
  return { ws, frames, socketId };
}

