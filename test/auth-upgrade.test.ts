import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type ChildGateway, spawnGateway } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';
const CONNECTIONS = 400;
const PARALLEL = 8;

/**
 * glibc knobs that make the old early-1006 deterministic: with tcache off, freed chunks go to fastbins and
 * MALLOC_PERTURB_ fills them with 0x10. uWS.js 20.57's cork(), run around an upgrade made after the upgrade
 * handler returned, read the HTTP state word from the freed tail of the socket (shrunk in place to a
 * WebSocket): 0x10 is HTTP_CONNECTION_CLOSE without RESPONSE_PENDING, so it shut the new socket down.
 * With these knobs the old code lost every authenticated connection (400 of 400); the natural rate was
 * about one connection in one process out of ten. Without glibc the knobs do nothing and the loop still runs.
 */
const POISON_FREED_MEMORY = { GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0', MALLOC_PERTURB_: '16' };

type Outcome = 'ok' | `closed ${number}` | `refused ${number}` | 'timeout';

/** Opens a connection (with a token unless it is empty), sends a ping and waits for its answer: an early cut shows as `closed 1006`. */
function pingThroughNewConnection(url: string, token: string, codec: 'json' | 'msgpack'): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, codec === 'json' ? 'wsgate.json' : 'wsgate.msgpack', { headers: token === '' ? {} : { authorization: `Bearer ${token}` } });
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      resolve(o);
    };
    const timer = setTimeout(() => finish('timeout'), 5000);
    ws.on('open', () => {
      // {"op":"ping","id":1} in msgpack: a fixmap of two entries.
      ws.send(codec === 'json' ? '{"op":"ping","id":1}' : Buffer.from([0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0x01]));
    });
    ws.on('message', () => finish('ok'));
    ws.on('unexpected-response', (_req, res) => finish(`refused ${res.statusCode ?? 0}`));
    ws.on('close', (code) => finish(`closed ${code}`));
    ws.on('error', () => undefined);
  });
}

/** Opens `count` connections, `PARALLEL` at a time, each pinging once; counts the outcomes. */
async function pingMany(url: string, token: string, count: number): Promise<Record<string, number>> {
  const outcomes = new Map<Outcome, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) {
        const o = await pingThroughNewConnection(url, token, next++ % 2 === 0 ? 'json' : 'msgpack');
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }
    }),
  );
  return Object.fromEntries(outcomes);
}

describe('authenticated upgrades are never cut right after open', () => {
  let g: ChildGateway;
  before(async () => (g = await spawnGateway(['--jwt-secret', SECRET], POISON_FREED_MEMORY)));
  after(() => g.stop());

  it(`${CONNECTIONS} JWT connections (header token, JSON and msgpack) each answer a ping`, async () => {
    const token = await new SignJWT({ subscribe: ['chat.*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    assert.deepEqual(await pingMany(`ws://127.0.0.1:${g.port}/ws?topics=chat.a`, token, CONNECTIONS), { ok: CONNECTIONS });
    assert.equal(g.child.exitCode, null, g.output());
  });
});

describe('upgrades completed after the handler returned (connect proxy) are never cut right after open', () => {
  let app: Server;
  let g: ChildGateway;
  before(async () => {
    // The application admits everyone after a real HTTP round trip: the upgrade completes in a later turn.
    app = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"user":"u1","subscribe":["chat.*"]}'));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const proxy = `http://127.0.0.1:${(app.address() as { port: number }).port}/connect`;
    g = await spawnGateway(['--connect-proxy-url', proxy], POISON_FREED_MEMORY);
  });
  after(async () => {
    await g.stop();
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  });

  it('200 proxied connections each answer a ping', async () => {
    assert.deepEqual(await pingMany(`ws://127.0.0.1:${g.port}/ws?topics=chat.a`, '', 200), { ok: 200 });
    assert.equal(g.child.exitCode, null, g.output());
  });
});
