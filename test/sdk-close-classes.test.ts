import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ClientCode, type WsgateError } from '../src/client/sdk';
import { CLOSE_RULES, REFUSAL_RULES, closeClass, refusalClass } from '../src/protocol/close-classes';
import { CloseCode } from '../src/protocol/codes';
import { createLogger } from '../src/log';
import { closeSpread } from '../src/server/drain';
import { type InProcessGateway, Recorder, sleep, startGateway, waitFor } from './sdk-harness';

describe('close-code scheme: one table in code and docs', () => {
  test('every close code the gateway sends has a class', () => {
    for (const code of Object.values(CloseCode)) assert.ok(CLOSE_RULES[code] !== undefined, `close code ${code}`);
  });

  test('the tables in docs/protocol.md and README.md are the table in code', () => {
    const expected = [
      ...Object.entries(CLOSE_RULES).map(([code, r]) => ['close', Number(code), r.class]),
      ...Object.entries(REFUSAL_RULES).map(([status, r]) => ['HTTP', Number(status), r.class]),
    ];
    for (const [file, heading] of [['docs/protocol.md', '## Close codes and refusals'], ['README.md', '## Close codes']] as const) {
      const doc = readFileSync(path.join(__dirname, '..', '..', file), 'utf8');
      const section = doc.split(`${heading}\n`)[1]?.split('\n## ')[0] ?? '';
      const rows = [...section.matchAll(/^\| (close|HTTP) (\d{3,4}) \|[^|]*\| `(\w+)` \|/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
      assert.deepEqual(rows, expected, file);
    }
  });

  test('refinements: origin_not_allowed is terminal whatever the status says; unknown codes', () => {
    assert.equal(refusalClass(403, 'origin_not_allowed'), 'terminal');
    assert.equal(refusalClass(403, 'forbidden'), 'new_token');
    assert.equal(refusalClass(418), 'terminal');
    assert.equal(refusalClass(502), 'reconnect');
    assert.equal(closeClass(4999), 'reconnect');
  });
});

describe('the SDK obeys the close classes against real gateways', () => {
  const gateways: InProcessGateway[] = [];
  const recorders: Recorder[] = [];
  const gateway = async (flags: string[]) => {
    const g = await startGateway(flags);
    gateways.push(g);
    return g;
  };
  const recorder = (options: ConstructorParameters<typeof Recorder>[0]) => {
    const r = new Recorder(options);
    recorders.push(r);
    return r;
  };
  after(async () => {
    for (const r of recorders) r.client.close();
    for (const g of gateways) await g.stop();
  });

  test('terminal refusal (HTTP 400 invalid_topic): one attempt, typed error with the server code, client closed', async () => {
    const g = await gateway([]);
    const r = recorder({ url: `${g.ws}?topics=%24reserved`, backoff: { minDelayMs: 10, baseDelayMs: 20, maxDelayMs: 50 } });
    const sub = r.client.subscribe('x');
    r.client.connect();
    await assert.rejects(sub, (e: WsgateError) => e.code === 'invalid_topic' && e.status === 400);
    await sleep(300);
    assert.equal(r.client.connectionState, 'closed');
    assert.equal(g.gw.stats.upgrades.bad_request, 1, 'no retry of a request that cannot succeed');
    assert.deepEqual(r.errors.map((e) => [e.code, e.status]), [['invalid_topic', 400]]);
    assert.deepEqual(r.states.map((s) => s.state), ['connecting', 'closed']);
  });

  test('terminal refusal without a body code (HTTP 404): stops with refused', async () => {
    const g = await gateway([]);
    const r = recorder({ url: `ws://127.0.0.1:${g.port}/not-the-ws-path` });
    r.client.connect();
    await waitFor(() => r.client.connectionState === 'closed' && r.errors.length > 0, 3000, 'closed');
    // The 404 body carries not_found: the server's code wins over the generic one.
    assert.deepEqual(r.errors.map((e) => [e.code, e.status]), [['not_found', 404]]);
    assert.ok(ClientCode.Refused === 'refused');
  });

  test('429 (per-address limit) is transient: the client keeps retrying with backoff and gets in once there is room', async () => {
    const g = await gateway(['--max-connections-per-ip', '1']);
    const first = recorder({ url: g.ws });
    first.client.connect();
    await first.untilOpen();
    const second = recorder({ url: g.ws, backoff: { minDelayMs: 50, baseDelayMs: 100, maxDelayMs: 200 } });
    second.client.connect();
    await waitFor(() => second.states.filter((s) => s.state === 'reconnecting' && s.code === 429).length >= 2, 5000, 'two 429 retries');
    first.client.close();
    await second.untilOpen(1, 5000);
    assert.ok(g.gw.stats.upgrades.ip_limit >= 2);
  });

  test('4029 (command flood): commands reject with rate_limited, then the client reconnects with backoff, not promptly', async () => {
    const g = await gateway(['--client-publish', '--max-commands-per-second', '5', '--command-burst', '3']);
    const r = recorder({ url: g.ws, backoff: { minDelayMs: 300, baseDelayMs: 400, maxDelayMs: 800, promptDelayMs: 10 } });
    r.client.connect();
    await r.untilOpen();
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => r.client.publish('flood', i)));
    const codes = results.map((x) => (x.status === 'fulfilled' ? 'ok' : (x.reason as WsgateError).code));
    assert.equal(codes.filter((c) => c === 'ok').length, 3);
    assert.equal(codes.filter((c) => c === 'rate_limited').length, 3);
    assert.ok(codes.slice(6).every((c) => c === ClientCode.ConnectionLost), codes.join(','));
    const reconnecting = r.states.find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 4029);
    assert.ok((reconnecting?.delayMs ?? 0) >= 300, `backoff delay ${reconnecting?.delayMs}`);
    await r.untilOpen(2, 3000);
  });

  test('1012 (drain) with default options: the first retry is prompt (under 250 ms of jitter)', async () => {
    const g = await gateway([]);
    const r = recorder({ url: g.ws });
    r.client.connect();
    await r.untilOpen();
    const closedAt = Date.now();
    await closeSpread(g.gw['sockets'], 0, createLogger('silent'));
    await r.untilOpen(2, 2000);
    const reconnecting = r.states.find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 1012);
    assert.ok((reconnecting?.delayMs ?? Infinity) <= 250, `delay ${reconnecting?.delayMs}`);
    assert.ok(Date.now() - closedAt < 1000);
  });
});
