import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { ClientCode, type WsgateError } from '../src/client/sdk';
import { createLogger } from '../src/log';
import { closeSpread } from '../src/server/drain';
import { type InProcessGateway, Publisher, Recorder, firstBreak, sleep, startGateway, waitFor } from './sdk-harness';

const SECRET = 'sdk-close-code-test-secret';
const sign = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

describe('SDK close-code handling against a real gateway', () => {
  let gw: InProcessGateway;
  const recorders: Recorder[] = [];
  const recorder = (options: Partial<ConstructorParameters<typeof Recorder>[0]>) => {
    // Slow backoff on purpose: a prompt reconnect must not be explained by a short backoff.
    const r = new Recorder({ url: gw.ws, backoff: { minDelayMs: 3000, baseDelayMs: 5000, maxDelayMs: 10_000, promptDelayMs: 100 }, ...options });
    recorders.push(r);
    return r;
  };

  before(async () => {
    gw = await startGateway(['--jwt-secret', SECRET, '--client-publish', '--max-payload', '1024']);
  });
  after(async () => {
    for (const r of recorders) r.client.close();
    await gw.stop();
  });

  test('1012 (drain): reconnects within the prompt window and resumes with no loss under continuous publishing', async () => {
    const topic = 'drained';
    const pub = new Publisher(gw.gw, topic);
    const r = recorder({ token: () => sign('drain') });
    r.client.connect();
    await r.client.subscribe(topic);
    pub.start(2, 1);
    await r.untilSeq(topic, 20);
    // The gateway's own drain step (1012 to every socket), without stopping the listener: a node
    // whose clients come back to it stands in for "another node" sharing the stream.
    const sockets = gw.gw['sockets'];
    const closedAt = Date.now();
    await closeSpread(sockets, 0, createLogger('silent'));
    await r.untilOpen(2, 2000);
    const reconnectMs = Date.now() - closedAt;
    await sleep(50);
    pub.stop();
    await r.untilSeq(topic, pub.sent);
    const reconnecting = r.states.find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 1012);
    assert.ok((reconnecting?.delayMs ?? Infinity) <= 100, `delay ${reconnecting?.delayMs}`);
    assert.ok(reconnectMs < 1000, `reconnected after ${reconnectMs} ms`);
    const seqs = r.seqs(topic);
    assert.equal(firstBreak(seqs, 1), -1);
    assert.equal(seqs.length, pub.sent);
    assert.deepEqual(r.gaps, []);
  });

  test('401 on upgrade: stops after one attempt and emits unauthorized when the provider has no new token', async () => {
    let calls = 0;
    const before = gw.gw.stats.upgrades.unauthorized;
    const r = recorder({
      token: () => {
        calls++;
        return 'not-a-valid-jwt';
      },
    });
    const sub = r.client.subscribe('x');
    r.client.connect();
    await assert.rejects(sub, (e: WsgateError) => e.code === ClientCode.Unauthorized && e.status === 401);
    await sleep(500);
    assert.equal(r.client.connectionState, 'closed');
    assert.equal(gw.gw.stats.upgrades.unauthorized - before, 1, 'exactly one upgrade attempt: no hammering');
    assert.equal(calls, 2, 'one token for the dial, one chance to yield a new token');
    assert.deepEqual(
      r.errors.map((e) => [e.code, e.status]),
      [[ClientCode.Unauthorized, 401]],
    );
  });

  test('401 then a fresh token from the provider: reconnects with it', async () => {
    const tokens = ['stale-token', await sign('fresh')];
    const r = recorder({ token: () => tokens.shift() ?? 'exhausted', backoff: { minDelayMs: 10, baseDelayMs: 20, maxDelayMs: 50 } });
    r.client.connect();
    const res = await r.client.subscribe('fresh-topic');
    assert.equal(res.seq, 0);
    assert.equal(r.client.connectionState, 'open');
    assert.deepEqual(r.errors, []);
  });

  test('1009: the too-big publish rejects with message_too_big, is not resent, and the client reconnects', async () => {
    const r = recorder({ token: () => sign('big'), backoff: { minDelayMs: 10, baseDelayMs: 20, maxDelayMs: 50 } });
    r.client.connect();
    await r.client.subscribe('big');
    const pubsBefore = gw.gw.stats.received.pub;
    await assert.rejects(r.client.publish('big', 'x'.repeat(2000)), (e: WsgateError) => e.code === ClientCode.MessageTooBig && e.status === 1009);
    await r.untilOpen(2);
    assert.deepEqual(await r.client.publish('big', 'small'), { seq: 1 });
    await sleep(100);
    assert.equal(gw.gw.stats.received.pub - pubsBefore, 1, 'only the small publish reached the server');
  });

  test('command errors are values with the server code (invalid_topic on subscribe, forbidden on publish)', async () => {
    const r = recorder({ token: () => new SignJWT({ publish: ['mine.*'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET)) });
    r.client.connect();
    await assert.rejects(r.client.subscribe('$bad'), (e: WsgateError) => e.code === 'invalid_topic');
    await assert.rejects(r.client.publish('other', 1), (e: WsgateError) => e.code === 'forbidden');
    assert.deepEqual(await r.client.publish('mine.a', 1), { seq: 1 });
    await waitFor(() => Object.keys(r.client.positions()).length === 0, 1000, 'failed subscription forgotten');
  });
});
