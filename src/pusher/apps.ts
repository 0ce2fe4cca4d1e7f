/** One Pusher application: `id` in REST paths, `key` in client URLs and signatures, `secret` signs. */
export interface PusherApp {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
}

// Pusher's own ids are digits; keys and secrets are hex. Anything URL-safe without ':' or ',' works here.
const PART = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Parses `--pusher-apps id:key:secret[,id:key:secret…]`. Null when malformed or when an id or key repeats
 * (a key must name one app, or a client could be signed in with another app's secret).
 */
export function parsePusherApps(spec: string): PusherApp[] | null {
  if (spec === '') return [];
  const apps: PusherApp[] = [];
  for (const entry of spec.split(',')) {
    const parts = entry.trim().split(':');
    if (parts.length !== 3) return null;
    const [id, key, secret] = parts as [string, string, string];
    if (!PART.test(id) || !PART.test(key) || !PART.test(secret)) return null;
    if (apps.some((a) => a.id === id || a.key === key)) return null;
    apps.push({ id, key, secret });
  }
  return apps;
}

/** The configured apps, looked up by the key in a client URL or by the id in a REST path. */
export class PusherApps {
  private readonly byKey = new Map<string, PusherApp>();
  private readonly byId = new Map<string, PusherApp>();

  constructor(readonly list: readonly PusherApp[]) {
    for (const app of list) {
      this.byKey.set(app.key, app);
      this.byId.set(app.id, app);
    }
  }

  get size(): number {
    return this.list.length;
  }

  withKey(key: string): PusherApp | undefined {
    return this.byKey.get(key);
  }

  withId(id: string): PusherApp | undefined {
    return this.byId.get(id);
  }

  /**
   * The wsgate topic of `channel`: the channel itself with one app, so both front doors share topics;
   * `<appId>:<channel>` with several, so apps never see each other's channels.
   */
  topicOf(app: PusherApp, channel: string): string {
    return this.list.length === 1 ? channel : `${app.id}:${channel}`;
  }

  /** The app and channel a topic is, or null when it is no app's channel. */
  locate(topic: string): { app: PusherApp; channel: string } | null {
    if (this.list.length === 1) return { app: this.list[0] as PusherApp, channel: topic };
    const colon = topic.indexOf(':');
    const app = colon < 0 ? undefined : this.byId.get(topic.slice(0, colon));
    return app === undefined ? null : { app, channel: topic.slice(colon + 1) };
  }

  /** The channel of a topic seen by `app`, or null when the topic is not one of its channels. */
  channelOf(app: PusherApp, topic: string): string | null {
    if (this.list.length === 1) return topic;
    const prefix = `${app.id}:`;
    return topic.startsWith(prefix) ? topic.slice(prefix.length) : null;
  }
}
