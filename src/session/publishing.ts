import type { Broker, PublishOutcome } from '../broker/broker';
import type { Config } from '../config/schema';
import type { TopicProxies } from '../hooks/hooks';
import { inOrder } from '../hooks/publish-order';
import type { SessionEvents } from '../hooks/session-events';
import type { Idempotency } from '../idempotency/idempotency';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { Command } from '../protocol/commands';
import { Payload } from '../protocol/payload';
import { type Session } from './session';
import { caller } from './subscriptions';

export type PubRequest = Extract<Command, { op: 'pub' }>;

/** A publish's outcome now, or when the broker (or the publish proxy) answers; never rejects. */
export type PubOutcome = PublishOutcome | Promise<PublishOutcome>;

export interface PublishingDeps {
  readonly config: Config;
  readonly broker: Broker;
  readonly proxies: TopicProxies;
  readonly events: SessionEvents | null;
  readonly idempotency: Idempotency;
}

const brokerFailed = (): GatewayError => new GatewayError(ErrorCode.Unavailable, 'broker failed');

/**
 * A session's publishes, for every door that lets clients publish: client publishing and the grant, the
 * publish proxy (in order per session), idempotency keys and the client_publish webhook. Outcomes are
 * values: the seq, or the error (without the request id: the door adds it).
 */
export class Publishing {
  // One reused Payload: operations run one at a time, and the broker is done with it when publish returns.
  private readonly payload = new Payload();

  constructor(private readonly deps: PublishingDeps) {}

  /** Why `s` may not publish to `topic` (client publishing off, or not in its grant), or null. */
  refusal(s: Session, topic: string): GatewayError | null {
    if (!this.deps.config.clientPublish) return new GatewayError(ErrorCode.Forbidden, 'publishing from clients is disabled');
    if (!s.grant.publish.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow publishing to this topic');
    return null;
  }

  /**
   * Whether a publish read in place (PublishReader) can go out as it is: the scan already refused an
   * idempotencyKey (unknown to it) and data deeper than --max-depth; what is left is anything that needs
   * the data decoded or the publish held back: the publish proxy (or this session's queue behind it)
   * and the client_publish webhook.
   */
  asRead(s: Session, topic: string): boolean {
    const { proxies, events } = this.deps;
    const proxy = proxies.publish;
    if (proxy !== null && (s.pubQueue !== null || proxy.applies(topic))) return false;
    return events === null || !events.publishHooked(topic);
  }

  /**
   * A publish read in place (see asRead): `data` is a view of the frame, valid during this call.
   * `quiet`: it has no id, so its sequence is answered to nobody (only a refusal is).
   */
  publishRead(s: Session, topic: string, data: Payload, startedAt: number, quiet: boolean): PubOutcome {
    const refused = this.refusal(s, topic);
    if (refused !== null) return refused;
    const outcome = this.deps.broker.publish(topic, data, 'socket', startedAt, quiet);
    return outcome instanceof Promise ? outcome.catch(brokerFailed) : outcome;
  }

  /** A decoded publish: behind the publish proxy when it applies (and every later one of this session while any waits). */
  publish(s: Session, req: PubRequest, startedAt: number): PubOutcome {
    const refused = this.refusal(s, req.topic);
    if (refused !== null) return refused;
    const proxy = this.deps.proxies.publish;
    if (proxy === null || (s.pubQueue === null && !proxy.applies(req.topic))) return this.publishNow(s, req, req.data, startedAt);
    return new Promise<PublishOutcome>((resolve) => {
      const queued = inOrder(s, async () => {
        if (!proxy.applies(req.topic)) return resolve(this.publishNow(s, req, req.data, startedAt));
        const allowed = await proxy.ask(caller(s), req.topic, req.data);
        resolve(allowed instanceof GatewayError ? allowed : this.publishNow(s, req, allowed.data, startedAt));
      });
      if (!queued) resolve(new GatewayError(ErrorCode.Unavailable, 'too many publishes waiting for the application'));
    });
  }

  private publishNow(s: Session, req: PubRequest, data: unknown, startedAt: number): PubOutcome {
    const { broker, idempotency, events } = this.deps;
    const { topic, idempotencyKey } = req;
    const payload = this.payload;
    // No closure on the plain path: only keyed publishes pay for idempotency.
    const outcome =
      idempotencyKey === undefined
        ? broker.publish(topic, payload.setValue(data, s.codec.binary), 'socket', startedAt)
        : idempotency.once(topic, idempotencyKey, () => broker.publish(topic, payload.setValue(data, s.codec.binary), 'socket', startedAt));
    if (typeof outcome === 'number') {
      events?.published(s, topic, outcome, data);
      return outcome;
    }
    if (!(outcome instanceof Promise)) return outcome;
    return outcome.then((o) => {
      if (typeof o === 'number') events?.published(s, topic, o, data);
      return o;
    }, brokerFailed);
  }
}
