/** What a channel's name prefix makes it: which auth it needs and what the server does for it. */
export interface ChannelKind {
  /** private- / private-encrypted- / presence-: the subscription needs `auth`. */
  readonly auth: boolean;
  readonly presence: boolean;
  /** private-encrypted-: payloads are end-to-end encrypted; the server passes them through untouched. */
  readonly encrypted: boolean;
  /** cache-, private-cache-, private-encrypted-cache-, presence-cache-: the last event is kept. */
  readonly cache: boolean;
  /** `#server-to-user-<id>`: the user id; only a connection signed in as that user may subscribe. */
  readonly user: string | null;
}

// Pusher's channel name rules: these characters, at most 164 of them.
const NAME = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;
// pusher-js subscribes to this channel after pusher:signin, and the SDK's sendToUser triggers on it. The
// user id is held to the channel charset: the name becomes a topic, and every broker can carry those.
const SERVER_TO_USER = '#server-to-user-';
const SERVER_TO_USER_KIND = { auth: false, presence: false, encrypted: false, cache: false } as const;

/** The kind of `channel`, or null when the name is not a valid Pusher channel name. */
export function channelKind(channel: string): ChannelKind | null {
  if (channel.startsWith(SERVER_TO_USER)) {
    const user = channel.slice(SERVER_TO_USER.length);
    return NAME.test(user) ? { ...SERVER_TO_USER_KIND, user } : null;
  }
  if (!NAME.test(channel)) return null;
  const presence = channel.startsWith('presence-');
  const encrypted = channel.startsWith('private-encrypted-');
  const auth = presence || channel.startsWith('private-');
  const rest = presence ? channel.slice(9) : encrypted ? channel.slice(18) : auth ? channel.slice(8) : channel;
  return { auth, presence, encrypted, cache: rest.startsWith('cache-'), user: null };
}
