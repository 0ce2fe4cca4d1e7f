import type { ControlBus } from '../cluster/control-bus';

/**
 * Which connections a server-side call is about: every connection of a user, or one connection; or every
 * connection signed in as a user of a Pusher app (Pusher user ids are the app's, not token subjects).
 */
export type ControlTarget = { readonly user: string } | { readonly client: string } | { readonly pusherApp: string; readonly pusherUser: string };

export type ControlAction =
  | { readonly kind: 'disconnect'; readonly reconnect: boolean }
  | { readonly kind: 'subscribe'; readonly topic: string }
  | { readonly kind: 'unsubscribe'; readonly topic: string };

export type ControlKind = ControlAction['kind'];

/**
 * The front door's side: applies an action to its own matching connections and says how many it
 * changed. Each front door registers one (wsgate sockets, Pusher sockets).
 */
export type ApplyControl = (target: ControlTarget, action: ControlAction) => number;

const CONTROL = 'control';

/**
 * Server-side control (POST /disconnect, /subscribe, /unsubscribe): every node applies the action to its
 * matching connections, and the caller gets the number affected across the cluster.
 */
export class ServerControl {
  private readonly doors: ApplyControl[] = [];

  constructor(private readonly bus: ControlBus) {
    bus.handle(CONTROL, (body) => (isControl(body) ? this.applyLocally(body.target, body.action) : 0));
  }

  attach(door: ApplyControl): void {
    this.doors.push(door);
  }

  async run(target: ControlTarget, action: ControlAction): Promise<{ affected: number }> {
    const answers = await this.bus.gather(CONTROL, { target, action });
    let affected = 0;
    for (const a of answers) if (typeof a === 'number') affected += a;
    return { affected };
  }

  private applyLocally(target: ControlTarget, action: ControlAction): number {
    let n = 0;
    for (const door of this.doors) n += door(target, action);
    return n;
  }
}

/** Checks a control request arriving from another node (or HTTP): shape only, topics already checked at the edge. */
function isControl(v: unknown): v is { target: ControlTarget; action: ControlAction } {
  if (typeof v !== 'object' || v === null) return false;
  const { target, action } = v as { target: Record<string, unknown>; action: Record<string, unknown> };
  if (typeof target !== 'object' || target === null || typeof action !== 'object' || action === null) return false;
  const targetOk = typeof target.user === 'string' || typeof target.client === 'string' || (typeof target.pusherApp === 'string' && typeof target.pusherUser === 'string');
  const actionOk = action.kind === 'disconnect' ? typeof action.reconnect === 'boolean' : (action.kind === 'subscribe' || action.kind === 'unsubscribe') && typeof action.topic === 'string';
  return targetOk && actionOk;
}
