/** What a channel's name prefix makes it: which auth it needs and what the server does for it. */
export interface ChannelKind {
  /** private- / private-encrypted- / presence-: the subscription needs `auth`. */
  readonly auth: boolean;
  readonly presence: boolean;
  /** private-encrypted-: payloads are end-to-end encrypted; the server passes them through untouched. */
  readonly encrypted: boolean;
  /** cache-, private-cache-, private-encrypted-cache-, presence-cache-: the last event is kept. */
  readonly cache: boolean;
}

// Pusher's channel name rules: these characters, at most 164 of them.
const NAME = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;

/** The kind of `channel`, or null when the name is not a valid Pusher channel name. */
export function channelKind(channel: string): ChannelKind | null {
  if (!NAME.test(channel)) return null;
  const presence = channel.startsWith('presence-');
  const encrypted = channel.startsWith('private-encrypted-');
  const auth = presence || channel.startsWith('private-');
  const rest = presence ? channel.slice(9) : encrypted ? channel.slice(18) : auth ? channel.slice(8) : channel;
  return { auth, presence, encrypted, cache: rest.startsWith('cache-') };
}
