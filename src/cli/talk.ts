import { GatewayClient } from '../client/gateway-client';
import type { CodecName } from '../protocol/codec';

/** `--name value` pairs after the positional arguments. */
function options(argv: readonly string[], allowed: readonly string[]): { positional: string[]; opts: Map<string, string> } {
  const positional: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) positional.push(a);
    else if (allowed.includes(a.slice(2)) && argv[i + 1] !== undefined) opts.set(a.slice(2), argv[++i] as string);
    else throw new Error(`unknown or incomplete option ${a}; accepted: ${allowed.map((o) => '--' + o).join(', ')}`);
  }
  return { positional, opts };
}

const DEFAULT_WS = 'ws://127.0.0.1:8080/ws';
const DEFAULT_HTTP = 'http://127.0.0.1:8080';

/** `wsgate sub <topic…>`: prints each delivery as one JSON line until interrupted. */
export async function sub(argv: readonly string[]): Promise<void> {
  const { positional, opts } = options(argv, ['url', 'codec', 'token']);
  if (positional.length === 0) throw new Error('usage: wsgate sub <topic…> [--url ws://host:port/ws] [--codec json|msgpack] [--token JWT]');
  const client = await GatewayClient.connect(opts.get('url') ?? DEFAULT_WS, {
    codec: (opts.get('codec') ?? 'json') as CodecName,
    token: opts.get('token'),
  });
  client.onDelivery = (d) => console.log(JSON.stringify(d));
  for (const topic of positional) await client.sub(topic);
  console.error(`subscribed to ${positional.join(', ')}; Ctrl-C to stop`);
  client.ws.on('close', (code, reason) => {
    console.error(`connection closed: ${code} ${reason.toString()}`);
    process.exit(code === 1000 ? 0 : 1);
  });
  process.on('SIGINT', () => client.close().then(() => process.exit(0)));
}

/** `wsgate pub <topic> <data>`: data is JSON if it parses, else a string. HTTP API by default. */
export async function pub(argv: readonly string[]): Promise<void> {
  const { positional, opts } = options(argv, ['url', 'api-key', 'via', 'token']);
  const [topic, raw] = positional;
  if (topic === undefined || raw === undefined) {
    throw new Error('usage: wsgate pub <topic> <data> [--via http|ws] [--url …] [--api-key KEY] [--token JWT]');
  }
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    data = raw;
  }
  if (opts.get('via') === 'ws') {
    const client = await GatewayClient.connect(opts.get('url') ?? DEFAULT_WS, { token: opts.get('token') });
    const r = await client.pub(topic, data);
    console.log(JSON.stringify({ topic, seq: r.seq }));
    await client.close();
    return;
  }
  const key = opts.get('api-key') ?? process.env.WSGATE_API_KEY;
  const res = await fetch(`${opts.get('url') ?? DEFAULT_HTTP}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ topic, data }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`publish failed: HTTP ${res.status} ${body}`);
  console.log(body);
}
