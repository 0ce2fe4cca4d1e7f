import { CommandError, GatewayClient, UpgradeRefused } from '../client/gateway-client';
import type { CodecName } from '../protocol/codec';
import { parseArgs, UsageError } from './args';
import { describeClose, describeHttpError, describeNetworkError } from './failure';
import { defaultUrl, resolveTarget, type Target } from './target';

export const SUB_HELP = `Usage: wsgate sub <topic…> [options]

Subscribes to one or more topics and prints every delivery as one JSON line
({"t":topic,"s":sequence,"d":data}) until Ctrl-C or until the gateway closes the connection.
When a topic's stream starts over (a new epoch: the broker lost its state), a line says so on stderr
before its first new message; messages published before it may have been missed.

Options:
  --url <url>        the gateway: ws://, wss://, http:// or https:// (default ws://127.0.0.1:$WSGATE_PORT/ws, port 8080)
  --codec json|msgpack   wire codec (default json)
  --token <jwt>      JWT for a gateway started with --jwt-secret / --jwt-public-key

Examples:
  npx wsgate sub demo news
  npx wsgate sub news --url ws://127.0.0.1:8081/ws
  npx wsgate sub chat.room1 --url https://gateway.example.com --token "$JWT"

Exit status: 0 after Ctrl-C or a normal close (1000); 1 when the gateway cannot be reached, refuses
the upgrade or a subscription (the HTTP status or error code is printed), or closes with another code;
2 for a usage mistake.`;

export const PUB_HELP = `Usage: wsgate pub <topic> <data> [options]

Publishes one message. <data> is taken as JSON when it parses ('{"a":1}', '42', '"text"'), else as a
string. By default it goes through the HTTP API (POST /publish) and prints the gateway's reply
({"results":[{"topic":…,"seq":…}]}); --via ws publishes over a WebSocket instead (the gateway needs
--client-publish).

Options:
  --url <url>        the gateway: http://, https://, ws:// or wss:// (default 127.0.0.1, port $WSGATE_PORT or 8080)
  --api-key <key>    the gateway's --api-key (default: env WSGATE_API_KEY)
  --via http|ws      HTTP API (default) or WebSocket
  --token <jwt>      JWT, with --via ws, for a gateway that requires one

Examples:
  npx wsgate pub news '{"headline":"hello"}'
  npx wsgate pub news 'plain text' --url http://127.0.0.1:8081 --api-key "$WSGATE_API_KEY"
  npx wsgate pub chat.room1 '{"text":"hi"}' --via ws --token "$JWT"

Exit status: 0 when published; 1 when the gateway cannot be reached or refuses (the HTTP status and
the gateway's error code are printed); 2 for a usage mistake.`;

/** Opens a connection, turning every way it can fail into one plain sentence. */
async function open(target: Target, codec: CodecName, token: string | undefined): Promise<GatewayClient> {
  try {
    return await GatewayClient.connect(target.ws.href, { codec, token });
  } catch (e) {
    if (e instanceof UpgradeRefused) throw new Error(`${target.ws.href} refused the WebSocket upgrade: ${describeHttpError(e.status, e.body)}`);
    throw new Error(describeNetworkError(target.ws, e));
  }
}

const refused = (what: string, e: unknown): Error =>
  e instanceof CommandError ? new Error(`${what} refused: ${e.code}: ${e.reason}`) : e instanceof Error ? e : new Error(String(e));

function codecOption(value: string | undefined): CodecName {
  if (value === undefined || value === 'json' || value === 'msgpack') return value ?? 'json';
  throw new UsageError(`--codec ${value}: expected json or msgpack`);
}

/** `wsgate sub <topic…>`: prints each delivery as one JSON line until interrupted. */
export async function sub(argv: readonly string[]): Promise<void> {
  const { positional, opts } = parseArgs(argv, ['url', 'codec', 'token']);
  if (positional.length === 0) throw new UsageError('name at least one topic');
  const target = resolveTarget(opts.get('url') ?? defaultUrl(process.env));
  const client = await open(target, codecOption(opts.get('codec')), opts.get('token'));
  let transportError = '';
  client.ws.on('error', (e) => (transportError = e.message));
  client.ws.on('close', (code, reason) => {
    if (code === 1000) process.exit(0);
    console.error(`wsgate sub: ${describeClose(code, reason.toString() || transportError)}`);
    process.exit(1);
  });
  client.onDelivery = (d) => console.log(JSON.stringify(d));
  client.onNotice = (n) => {
    const r = n as unknown as { op: string; t: string; p?: { epoch?: unknown; seq?: unknown } };
    if (r.op === 'reset') console.error(`wsgate sub: ${r.t} started over (epoch ${String(r.p?.epoch)}, next s ${Number(r.p?.seq) + 1}); messages before it may have been missed`);
  };
  for (const topic of positional) {
    await client.sub(topic).catch((e: unknown) => {
      throw refused(`subscription to ${topic}`, e);
    });
  }
  console.error(`subscribed to ${positional.join(', ')} at ${target.ws.href}; Ctrl-C to stop`);
  process.on('SIGINT', () => client.close().then(() => process.exit(0)));
}

/** `wsgate pub <topic> <data>`: data is JSON if it parses, else a string. HTTP API by default. */
export async function pub(argv: readonly string[]): Promise<void> {
  const { positional, opts } = parseArgs(argv, ['url', 'api-key', 'via', 'token']);
  const [topic, raw, extra] = positional;
  if (topic === undefined || raw === undefined || extra !== undefined) throw new UsageError('expected exactly <topic> <data>');
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    data = raw;
  }
  const via = opts.get('via') ?? 'http';
  if (via !== 'http' && via !== 'ws') throw new UsageError(`--via ${via}: expected http or ws`);
  const target = resolveTarget(opts.get('url') ?? defaultUrl(process.env));
  if (via === 'ws') {
    const client = await open(target, 'json', opts.get('token'));
    let closed = '';
    client.ws.on('close', (code, reason) => (closed = describeClose(code, reason.toString())));
    try {
      const r = await client.pub(topic, data);
      console.log(JSON.stringify({ results: [{ topic, seq: r.seq }] }));
    } catch (e) {
      throw closed !== '' && !(e instanceof CommandError) ? new Error(`publish not confirmed: ${closed}`) : refused('publish', e);
    } finally {
      await client.close();
    }
    return;
  }
  const key = opts.get('api-key') ?? process.env.WSGATE_API_KEY;
  const url = new URL('/publish', target.http);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ topic, data }),
    });
  } catch (e) {
    throw new Error(describeNetworkError(url, e));
  }
  const body = await res.text();
  if (!res.ok) throw new Error(`publish refused: ${describeHttpError(res.status, body)}`);
  console.log(body);
}
