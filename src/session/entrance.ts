import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Admitter } from '../auth/admission';
import { type Admission, isRefused } from '../auth/admitted';
import type { Grant } from '../auth/token-verifier';
import type { Config } from '../config/schema';
import type { AddressKey, UpgradeGuard } from '../guard/upgrade-guard';
import type { Stats, UpgradeResult } from '../metrics/stats';
import type { Codec } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { checkTopic } from '../protocol/topic';
import { bearer } from '../server/http-reply';
import { commaList, queryValue } from '../server/query';
import type { OpenTopics } from './session';

/** Why a connection is kept out, with the upgrade result it is counted as. */
export interface EntryRefusal {
  readonly result: Exclude<UpgradeResult, 'accepted'>;
  readonly error: GatewayError;
}

/** Past the synchronous checks: the address it counts under, its query topics, and who it is (maybe still being asked). */
export interface Knocking {
  readonly address: AddressKey;
  readonly topics: readonly string[];
  readonly admission: Admission | Promise<Admission>;
}

/** A connection let in: its grant, the topics to subscribe on open, and the address it counts under. */
export interface Entry {
  readonly grant: Grant;
  readonly opening: OpenTopics | null;
  readonly address: AddressKey;
}

export interface EntranceDeps {
  readonly config: Config;
  readonly stats: Stats;
  readonly guard: UpgradeGuard;
  readonly admitter: Admitter;
  readonly isDraining: () => boolean;
}

/** The first of `topics` the grant does not let the connection subscribe to (a loop: no closure per upgrade). */
const firstDenied = (subscribe: Grant['subscribe'], topics: readonly string[]): string | undefined => {
  for (const t of topics) if (!subscribe.allows(t)) return t;
  return undefined;
};

export const isEntryRefusal = (v: Knocking | EntryRefusal | Entry): v is EntryRefusal => 'result' in v;

const refusal = (result: EntryRefusal['result'], code: ErrorCode, reason: string): EntryRefusal => ({ result, error: new GatewayError(code, reason) });

/**
 * Who may open a session, the same for every door that takes `?topics=` and tokens (WebSocket, SSE):
 * drain, origin policy and per-address limits, the node's connection limit, the query topics, then the
 * token or the connect proxy. `maxTopics` is the door's bound on topics per connection.
 */
export class Entrance {
  constructor(private readonly deps: EntranceDeps) {}

  /** The upgrade checks' counts (a door's waiting upgrades are counted there too). */
  get guard(): UpgradeGuard {
    return this.deps.guard;
  }

  /**
   * The checks that read the request (valid only now); `query`: the raw query string (no `?`), read in
   * place (server/query.ts); `codec`: the one negotiated (null: none offered fits).
   */
  knock(res: HttpResponse, req: HttpRequest, query: string, codec: Codec | null, maxTopics: number): Knocking | EntryRefusal {
    const { config, guard, admitter } = this.deps;
    if (this.deps.isDraining()) return refusal('draining', ErrorCode.Draining, 'node is draining; connect to another');
    const address = guard.admit(res, req);
    if (address !== null && typeof address === 'object') return address;
    if (guard.full()) {
      return refusal('limit', ErrorCode.TooManyConnections, `node holds its limit of ${config.maxConnections} connections`);
    }
    if (codec === null) return refusal('bad_request', ErrorCode.UnsupportedSubprotocol, 'Sec-WebSocket-Protocol must offer wsgate.json or wsgate.msgpack');
    const topics = commaList(queryValue(query, 'topics'));
    if (topics.length > maxTopics) return refusal('bad_request', ErrorCode.TooManyTopics, `at most ${maxTopics} topics`);
    for (const t of topics) {
      const err = checkTopic(t, config.maxTopicLength);
      if (err !== null) return { result: 'bad_request', error: err };
    }
    const token = bearer(req.getHeader('authorization')) || (queryValue(query, 'token') ?? '');
    return { address, topics, admission: admitter.admit(token, req, res, query, codec) };
  }

  /** Lets an admitted connection in: query topics must be allowed, the application's topics are trusted. */
  enter(k: Knocking, admission: Admission, maxTopics: number): Entry | EntryRefusal {
    if (isRefused(admission)) return { result: admission.refused, error: admission.error };
    const { topics, address } = k;
    const denied = firstDenied(admission.grant.subscribe, topics);
    if (denied !== undefined) return refusal('forbidden', ErrorCode.Forbidden, `not allowed to subscribe to ${denied}`);
    if (topics.length + admission.serverTopics.length > maxTopics) return refusal('bad_request', ErrorCode.TooManyTopics, `at most ${maxTopics} topics`);
    const full = this.deps.guard.stillRoom(address);
    if (full !== null) return full;
    const opening = topics.length + admission.serverTopics.length === 0 ? null : { query: topics, server: admission.serverTopics };
    return { grant: admission.grant, opening, address };
  }
}
