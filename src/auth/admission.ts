import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { ConnectProxy } from '../hooks/connect-proxy';
import type { Admission, Admitted } from './admitted';
import type { Codec } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { openGrant, type TokenVerifier } from './token-verifier';

const NO_TOPICS: readonly string[] = [];
const open: Admitted = { grant: openGrant, serverTopics: NO_TOPICS };


/**
 * Decides who a connection is. A presented token is verified when tokens are configured (no proxy
 * call: clients holding a token skip the application); without one, the connect proxy decides when
 * configured; else a token is required when tokens are configured; else everyone is let in.
 */
export class Admitter {
  constructor(
    readonly verifier: TokenVerifier | null,
    private readonly proxy: ConnectProxy | null,
  ) {}

  /**
   * `query`: the raw query string (no `?`). Synchronous except for the connect proxy (tokens are verified synchronously, so a token upgrade
   * completes inside uWS's upgrade handler); reads all it needs from `req` before any await.
   */
  admit(token: string, req: HttpRequest, res: HttpResponse, query: string, codec: Codec): Admission | Promise<Admission> {
    if (this.verifier !== null && (token !== '' || this.proxy === null)) return this.verify(this.verifier, token);
    // The whole query is parsed only for the connect proxy, which forwards it.
    if (this.proxy !== null) return this.proxy.admit(this.proxy.read(req, res, new URLSearchParams(query), codec));
    return open;
  }

  private verify(verifier: TokenVerifier, token: string): Admission {
    const grant = verifier.verify(token);
    if (!(grant instanceof GatewayError)) return { grant, serverTopics: NO_TOPICS };
    return { refused: grant.code === ErrorCode.Unavailable ? 'unavailable' : 'unauthorized', error: grant };
  }
}
