import { CloseCode } from '../protocol/codes';

/** What the close codes the gateway sends mean to someone at a terminal (docs/protocol.md, "Close codes"). */
const CLOSE_MEANING: Record<number, string> = {
  [CloseCode.Normal]: 'normal closure',
  [CloseCode.PolicyViolation]: 'the token expired',
  [CloseCode.TooBig]: 'a message was over --max-payload',
  [CloseCode.InternalError]: 'internal error in the gateway',
  [CloseCode.ServiceRestart]: 'the gateway is draining (restart or shutdown)',
  [CloseCode.SlowConsumer]: 'slow consumer: this client read too slowly',
  1006: 'the connection was cut without a close frame',
};

export function describeClose(code: number, reason: string): string {
  const meaning = CLOSE_MEANING[code] ?? 'unknown close code';
  return `connection closed by the gateway: ${code} (${meaning})${reason ? `: ${reason}` : ''}`;
}

/** Turns the HTTP error body `{"code","reason"}` the gateway answers with into `code: reason`. */
export function describeHttpError(status: number, body: string): string {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; reason?: unknown };
    if (typeof parsed.code === 'string') return `HTTP ${status} ${parsed.code}${typeof parsed.reason === 'string' ? `: ${parsed.reason}` : ''}`;
  } catch {
    // not the gateway's JSON error body (a proxy's page, say): show it as it is
  }
  return `HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the gateway running on that port?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: self-signed certificate in chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: certificate not verifiable',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: certificate does not match the host name',
  EPROTO: 'TLS handshake failed (is it plain ws:// or http://?)',
};

/** A transport failure (from `ws` or `fetch`, whose real error hides in `cause`) in plain words. */
export function describeNetworkError(url: URL, e: unknown): string {
  let err: unknown = e;
  for (let depth = 0; depth < 3 && err instanceof Error; depth++) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && NETWORK_CODES[code] !== undefined) return `cannot reach ${url.href}: ${NETWORK_CODES[code]}`;
    err = err.cause;
  }
  const message = e instanceof Error ? (e.cause instanceof Error ? `${e.message} (${e.cause.message})` : e.message) : String(e);
  return `cannot reach ${url.href}: ${message}`;
}
