import type { Admitter } from '../auth/admission';
import type { Broker } from '../broker/broker';
import type { Config } from '../config/schema';
import type { UpgradeGuard } from '../guard/upgrade-guard';
import type { TopicProxies } from '../hooks/hooks';
import type { SessionEvents } from '../hooks/session-events';
import type { Idempotency } from '../idempotency/idempotency';
import type { Logger } from '../log';
import type { Stats } from '../metrics/stats';
import { CloseCode, GatewayError } from '../protocol/codes';
import type { Hub } from '../pubsub/hub';
import type { FaultSink } from '../server/contain';
import type { Door } from './door';
import { Entrance } from './entrance';
import type { Presence } from './presence';
import { Publishing } from './publishing';
import type { ControlAction, ControlTarget, ServerControl } from './server-control';
import { type Session, clientId } from './session';
import { type SubAnswer, Subscriptions } from './subscriptions';
import { armExpiry, refreshGrant } from './token-lifetime';
import type { TopicQueries } from './topic-queries';

export interface SessionCoreDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly queries: TopicQueries;
  readonly presence: Presence;
  readonly control: ServerControl;
  readonly stats: Stats;
  readonly admitter: Admitter;
  readonly proxies: TopicProxies;
  readonly events: SessionEvents | null;
  readonly idempotency: Idempotency;
  readonly log: Logger;
  readonly guard: UpgradeGuard;
  readonly isDraining: () => boolean;
  readonly fault: FaultSink;
}

/** For subscriptions made on open and by the server: no request to answer, but a later refusal is reported. */
const unasked =
  <H>(door: Door<H>, h: H, s: Session): SubAnswer =>
  (outcome) => {
    if (outcome instanceof GatewayError) door.failed(h, s, outcome);
  };

/**
 * The protocol-independent session layer every token-and-topics door uses (wsgate sockets, SSE): entry,
 * a session's life (open, token expiry and refresh, server-side control, close) and its operations
 * (subscriptions, publishes; topic queries and presence are `queries` and `presence`). Operations
 * return values; the door turns them into its wire format.
 */
export class SessionCore {
  readonly entrance: Entrance;
  readonly subscriptions: Subscriptions;
  readonly publishing: Publishing;
  readonly queries: TopicQueries;
  readonly presence: Presence;

  constructor(private readonly deps: SessionCoreDeps) {
    this.entrance = new Entrance(deps);
    this.subscriptions = new Subscriptions(deps);
    this.publishing = new Publishing(deps);
    this.queries = deps.queries;
    this.presence = deps.presence;
  }

  /** Registers a door's connections for server-side control. */
  attach<H>(door: Door<H>): void {
    this.deps.control.attach((target, action) => {
      let affected = 0;
      for (const h of door.each()) {
        const s = door.session(h);
        if (matches(s, target) && !s.closed && this.control(door, h, s, action)) affected++;
      }
      return affected;
    });
  }

  /** A session has opened: counted, its opening topics subscribed, its token's expiry armed. */
  opened<H>(door: Door<H>, h: H, s: Session): void {
    const { stats, guard } = this.deps;
    stats.upgrades.accepted++;
    stats.connections++;
    guard.opened(s.addressKey);
    const opening = s.opening;
    if (opening !== null) {
      s.opening = null;
      const subs = this.subscriptions;
      const answer = unasked(door, h, s);
      for (const topic of opening.query) subs.subscribe(door, h, s, { topic, id: undefined, since: undefined }, answer);
      // The application gave these (connect proxy): no grant check, no subscribe proxy.
      for (const topic of opening.server) subs.subscribe(door, h, s, { topic, id: undefined, since: undefined }, answer, true);
    }
    // No closure for sessions whose grant never expires (most): it would be garbage at once.
    if (s.grant.expiresAt !== undefined) armExpiry(s, this.expire(door, h, s));
  }

  /** A session has closed (`code`: the close code, 1006 when the transport broke). */
  closed<H>(door: Door<H>, h: H, s: Session, code: number): void {
    const { stats, guard, events, log } = this.deps;
    s.closed = true;
    stats.connections--;
    guard.closed(s.addressKey);
    stats.disconnects[s.closeReason ?? (code === 1006 ? 'error' : 'client')]++;
    if (s.expiry !== null) clearTimeout(s.expiry);
    if (s.closeTimer !== null) clearTimeout(s.closeTimer);
    for (const topic of s.topics) this.subscriptions.left(door, h, s, topic, true);
    events?.disconnected(s, code);
    log.debug({ code, reason: s.closeReason, subject: s.grant.subject }, 'connection closed');
  }

  /** Swaps the grant; topics it no longer allows end with an `unsubscribed` notice. Null when done. */
  refresh<H>(door: Door<H>, h: H, s: Session, token: string, id: number | undefined): GatewayError | null {
    const r = refreshGrant(this.deps.admitter.verifier, s, token, id);
    if (r instanceof GatewayError) return r;
    s.grant = r.grant;
    for (const t of r.revoked) {
      this.subscriptions.unsubscribe(door, h, s, t);
      door.notify(h, s, { op: 'unsubscribed', t, reason: 'the refreshed token does not allow this topic' });
    }
    armExpiry(s, this.expire(door, h, s));
    return null;
  }

  /** Server-side control of one session (POST /disconnect, /subscribe, /unsubscribe); whether it changed anything. */
  control<H>(door: Door<H>, h: H, s: Session, action: ControlAction): boolean {
    switch (action.kind) {
      case 'disconnect':
        s.closeReason = 'server';
        door.end(h, s, action.reconnect ? CloseCode.ServerDisconnect : CloseCode.ServerDisconnectTerminal, 'disconnected by the server');
        return true;
      case 'subscribe': {
        if (s.topics.has(action.topic)) return false;
        // The notice first: the deliveries (the latest message, if any) follow it.
        door.notify(h, s, { op: 'subscribed', t: action.topic });
        return this.subscriptions.subscribe(door, h, s, { topic: action.topic, id: undefined, since: undefined }, unasked(door, h, s), true) === null;
      }
      case 'unsubscribe':
        if (!this.subscriptions.unsubscribe(door, h, s, action.topic)) return false;
        door.notify(h, s, { op: 'unsubscribed', t: action.topic });
        return true;
    }
  }

  private expire<H>(door: Door<H>, h: H, s: Session): () => void {
    return () => {
      if (s.closed) return;
      s.closeReason = 'token_expired';
      door.end(h, s, CloseCode.PolicyViolation, 'token expired');
    };
  }
}

const matches = (s: Session, target: ControlTarget): boolean => ('user' in target ? s.grant.subject === target.user : 'client' in target && clientId(s) === target.client);
