import type { Logger } from '../log';
import type { ProxyKind } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { type ProxyClient, ProxyFailure } from './proxy-client';

/** Who is asking, as the application hears it. */
export interface Caller {
  readonly client: string;
  readonly user: string | undefined;
  readonly info: unknown;
}

/** What a publish proxy allowed: the data to publish (the client's, or the application's replacement). */
export interface Allowed {
  readonly data: unknown;
}

// The application's reason is relayed to the client: bounded.
const MAX_REASON = 256;

/** Whether a topic's rule turns a proxy on (`subscribeProxy` / `publishProxy`). */
export type ProxiedTopic = (topic: string) => boolean;

/** A proxy asked for the topics whose rule turns it on; answers are `{"allow":true|false,"reason"?,…}`. */
class TopicProxy {
  constructor(
    private readonly client: ProxyClient,
    private readonly kind: Exclude<ProxyKind, 'connect'>,
    private readonly url: string,
    readonly applies: ProxiedTopic,
    private readonly log: Logger,
  ) {}

  /** The answer object when allowed, else the error to reply (`forbidden` with the application's reason, or `unavailable`). */
  protected async verdict(body: object): Promise<Record<string, unknown> | GatewayError> {
    const { client, kind, log } = this;
    const answer = await client.call(kind, this.url, body);
    if (answer instanceof ProxyFailure) {
      log.warn({ kind, result: answer.result, reason: answer.reason }, 'proxy unavailable');
      return new GatewayError(ErrorCode.Unavailable, `${kind} proxy: ${answer.reason}`);
    }
    const allow = isObject(answer.body) ? answer.body.allow : undefined;
    if (answer.status !== 200 || typeof allow !== 'boolean') {
      client.count(kind, 'error');
      log.warn({ kind, status: answer.status }, 'proxy answer unreadable');
      return new GatewayError(ErrorCode.Unavailable, `${kind} proxy answer unreadable`);
    }
    const verdict = answer.body as Record<string, unknown>;
    if (!allow) {
      client.count(kind, 'denied');
      const given = verdict.reason;
      return new GatewayError(ErrorCode.Forbidden, typeof given === 'string' && given !== '' ? given.slice(0, MAX_REASON) : 'refused by the application');
    }
    client.count(kind, 'allowed');
    return verdict;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Asks the application before a subscription takes effect (`--subscribe-proxy-url`, rule `subscribeProxy`). */
export class SubscribeProxy extends TopicProxy {
  constructor(client: ProxyClient, url: string, applies: ProxiedTopic, log: Logger) {
    super(client, 'subscribe', url, applies, log);
  }

  /** null when allowed, else the error to reply. */
  async ask(caller: Caller, topic: string): Promise<GatewayError | null> {
    const v = await this.verdict({ client: caller.client, user: caller.user, topic, info: caller.info });
    return v instanceof GatewayError ? v : null;
  }
}

/** Asks the application before a client publish (`--publish-proxy-url`, rule `publishProxy`); it may replace the data. */
export class PublishProxy extends TopicProxy {
  constructor(client: ProxyClient, url: string, applies: ProxiedTopic, log: Logger) {
    super(client, 'publish', url, applies, log);
  }

  async ask(caller: Caller, topic: string, data: unknown): Promise<Allowed | GatewayError> {
    const v = await this.verdict({ client: caller.client, user: caller.user, topic, data });
    if (v instanceof GatewayError) return v;
    return 'data' in v ? { data: v.data } : { data };
  }
}
