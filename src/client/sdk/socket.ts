/** What a transport reports about one socket. `close` is called exactly once, also when it never opened. */
export interface SocketEvents {
  open(): void;
  /** A text frame as a string, a binary frame as bytes. */
  frame(data: string | Uint8Array): void;
  /**
   * `refusedStatus`: the HTTP status of a refused upgrade, when the transport can see it (not browsers);
   * `refusedCode`: the error code from its JSON body (`origin_not_allowed`, …), when there was one.
   */
  close(code: number, reason: string, refusedStatus: number | undefined, refusedCode?: string): void;
  /** A transport failure with its message (connection refused, reset…), before the `close` it causes. */
  error(message: string): void;
}

export interface SocketHandle {
  send(data: string | Uint8Array): void;
  /** Closing handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection without a handshake, for a peer that stopped answering. */
  abort(): void;
}

export type SocketFactory = (url: URL, subprotocol: string, token: string | undefined, events: SocketEvents) => SocketHandle;

/**
 * The WHATWG WebSocket (browsers). It cannot set headers, so the token goes in `token=`,
 * and it hides the status of a refused upgrade (a 1006 close before open) and why a connection failed
 * (its error event has no detail, so `error` is never called).
 */
export const nativeSocket =
  (Native: typeof WebSocket): SocketFactory =>
  (url, subprotocol, token, events) => {
    if (token !== undefined) url.searchParams.set('token', token);
    const ws = new Native(url, subprotocol);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => events.open();
    ws.onmessage = (e: MessageEvent<string | ArrayBuffer>) => events.frame(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
    ws.onclose = (e: CloseEvent) => events.close(e.code, e.reason, undefined);
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
      // The browser API has no way to cut a socket; close() and stop listening is the closest.
      abort: () => {
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.close();
      },
    };
  };

const MAX_REFUSAL_BODY = 4096;

function refusalCode(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const code = typeof parsed === 'object' && parsed !== null ? (parsed as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `ws` package, used under Node (every version). Loaded on first use only, so a browser bundle never
 * contains it (the bundler marks it external). Sends the token as a header and, unlike Node 22+'s global
 * WebSocket, sees the HTTP status of a refused upgrade (a 401 stops reconnecting instead of looking like
 * a network failure).
 */
export async function wsPackageSocket(): Promise<SocketFactory> {
  const { default: WS } = await import('ws');
  return (url, subprotocol, token, events) => {
    const ws = new WS(url, subprotocol, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
    let refusedStatus: number | undefined;
    let refusedCode: string | undefined;
    ws.on('open', () => events.open());
    // A refused upgrade: keep its status and the body's error code (a few hundred bytes at most), then end.
    ws.on('unexpected-response', (_req, res) => {
      refusedStatus = res.statusCode;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_REFUSAL_BODY) body += chunk;
      });
      res.on('end', () => {
        refusedCode = refusalCode(body);
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => events.frame(isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString('utf8')));
    // A refused upgrade is reported by 'unexpected-response' above (ending it makes ws emit an error
    // about the early close, which is not news); other failures are followed by 'close'.
    ws.on('error', (e: Error) => refusedStatus === undefined && events.error(e.message));
    ws.on('close', (code: number, reason: Buffer) => events.close(code, reason.toString('utf8'), refusedStatus, refusedCode));
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
      abort: () => ws.terminate(),
    };
  };
}

/** Under Node the `ws` package; elsewhere the native WebSocket. */
export function defaultSocketFactory(): Promise<SocketFactory> {
  const runtime = globalThis as { WebSocket?: typeof WebSocket; process?: { versions?: { node?: string } } };
  if (runtime.process?.versions?.node !== undefined || runtime.WebSocket === undefined) return wsPackageSocket();
  return Promise.resolve(nativeSocket(runtime.WebSocket));
}
