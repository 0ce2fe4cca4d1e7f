import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Admission } from '../auth/admitted';
import { TopicPatterns } from '../auth/topic-patterns';
import { patternsClaim } from '../auth/token-verifier';
import type { Logger } from '../log';
import type { Codec } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { checkTopic } from '../protocol/topic';
import { type ProxyClient, ProxyFailure } from './proxy-client';

/** What the application hears about an upgrade (docs/backend.md, "Connect proxy"). */
export interface ConnectRequest {
  readonly remote: string;
  readonly headers: Record<string, string>;
  readonly query: Record<string, string>;
  readonly protocol: string;
}

const FORWARDED_HEADERS = ['cookie', 'authorization', 'origin', 'user-agent', 'x-forwarded-for'] as const;
// The application's reason is relayed to the client: bounded, so an answer cannot bloat refusals.
const MAX_REASON = 256;

const unavailable = (reason: string): Admission => ({ refused: 'proxy_unavailable', error: new GatewayError(ErrorCode.ProxyUnavailable, reason) });

/** Asks the application who an upgrading client is (`--connect-proxy-url`). */
export class ConnectProxy {
  constructor(
    private readonly client: ProxyClient,
    private readonly url: string,
    private readonly maxTopics: number,
    private readonly maxTopicLength: number,
    private readonly log: Logger,
  ) {}

  /** Reads the request synchronously: HttpRequest is invalid once the upgrade handler returns. */
  read(req: HttpRequest, res: HttpResponse, query: URLSearchParams, codec: Codec): ConnectRequest {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_HEADERS) {
      const v = req.getHeader(name);
      if (v !== '') headers[name] = v;
    }
    const q: Record<string, string> = {};
    for (const [k, v] of query) if (k !== 'token') q[k] = v;
    return { remote: Buffer.from(res.getRemoteAddressAsText()).toString(), headers, query: q, protocol: codec.name };
  }

  async admit(request: ConnectRequest): Promise<Admission> {
    const answer = await this.client.call('connect', this.url, request);
    if (answer instanceof ProxyFailure) {
      this.log.warn({ result: answer.result, reason: answer.reason }, 'connect proxy unavailable');
      return unavailable(`connect proxy: ${answer.reason}`);
    }
    if (answer.status === 401 || answer.status === 403) {
      this.client.count('connect', 'denied');
      const given = (answer.body as { reason?: unknown } | undefined)?.reason;
      const reason = typeof given === 'string' && given !== '' ? given.slice(0, MAX_REASON) : 'refused by the application';
      return answer.status === 401
        ? { refused: 'unauthorized', error: new GatewayError(ErrorCode.Unauthorized, reason) }
        : { refused: 'forbidden', error: new GatewayError(ErrorCode.Forbidden, reason) };
    }
    const admitted = answer.status === 200 ? this.parse(answer.body) : `status ${answer.status}`;
    if (typeof admitted === 'string') {
      this.client.count('connect', 'error');
      this.log.warn({ reason: admitted }, 'connect proxy answer unreadable');
      return unavailable(`connect proxy answer unreadable: ${admitted}`);
    }
    this.client.count('connect', 'allowed');
    return admitted;
  }

  /** The grants of a 200 answer, or what is wrong with it. Grants mean what the token claims mean. */
  private parse(body: unknown): Admission | string {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not a JSON object';
    const { user, info, subscribe, publish, topics, expiresAt } = body as Record<string, unknown>;
    if (user !== undefined && typeof user !== 'string') return 'user must be a string';
    const sub = patternsClaim(subscribe);
    const pub = patternsClaim(publish);
    if (sub === null || pub === null) return 'subscribe/publish must be arrays of strings';
    if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) return 'expiresAt must be unix seconds';
    const serverTopics = topics === undefined ? [] : topics;
    if (!Array.isArray(serverTopics) || serverTopics.length > this.maxTopics) return `topics must be an array of at most ${this.maxTopics}`;
    for (const t of serverTopics) if (checkTopic(t, this.maxTopicLength) !== null) return `topics: invalid topic ${JSON.stringify(t)}`;
    return {
      grant: { subject: user, info, expiresAt, subscribe: sub ?? TopicPatterns.any, publish: pub ?? TopicPatterns.any },
      serverTopics: serverTopics as string[],
    };
  }
}
