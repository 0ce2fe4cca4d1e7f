import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { UnsubscribedEvent } from '../src/client/sdk';
import { refreshDelayMs, tokenExpiryMs } from '../src/client/sdk/token-expiry';
import { type InProcessGateway, Publisher, Recorder, firstBreak, sleep, startGateway, waitFor } from './sdk-harness';
import { metric } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';
const LIFETIME_S = 3;

/** A token provider issuing short-lived tokens; `grants` decides each token's subscribe claim. */
function provider(grants: (call: number) => string[]) {
  const issued: string[] = [];
  const next = async () => {
    const t = await new SignJWT({ subscribe: grants(issued.length) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) + LIFETIME_S)
      .sign(new TextEncoder().encode(SECRET));
    issued.push(t);
    return t;
  };
  return { issued, next };
}

describe('SDK token refresh', () => {
  let g: InProcessGateway;
  before(async () => (g = await startGateway(['--jwt-secret', SECRET])));
  after(() => g.stop());

  it('reads exp and picks a delay at 80–90 % of the time left', () => {
    const t = `x.${Buffer.from(JSON.stringify({ exp: 2_000_000_000 })).toString('base64url')}.y`;
    assert.equal(tokenExpiryMs(t), 2_000_000_000_000);
    assert.equal(tokenExpiryMs('not-a-jwt'), undefined);
    assert.equal(tokenExpiryMs(`x.${Buffer.from('{"exp":"soon"}').toString('base64url')}.y`), undefined);
    assert.equal(refreshDelayMs(10_000, 0, 0), 8000);
    assert.equal(refreshDelayMs(10_000, 0, 0.999), 8999);
    assert.equal(refreshDelayMs(1000, 2000), undefined, 'already expired');
    assert.equal(refreshDelayMs(2 ** 32, 0), undefined, 'beyond what a timer can wait');
  });

  it(`keeps one connection across several ${LIFETIME_S} s tokens: refreshed in-band, no reconnect, no message lost`, async () => {
    const p = provider(() => ['chat.*']);
    const r = new Recorder({ url: g.ws, token: p.next });
    const pub = new Publisher(g.gw, 'chat.a');
    try {
      r.client.connect();
      await r.client.subscribe('chat.a');
      pub.start(20);
      // Two lifetimes and more: without refresh the server would close with 1008 after at most 3 s.
      await sleep(LIFETIME_S * 2000 + 1000);
      pub.stop();
      await r.untilSeq('chat.a', pub.sent);
      assert.equal(r.opens(), 1, `one open, no reconnect: ${JSON.stringify(r.states)}`);
      assert.ok(p.issued.length >= 3, `the provider was asked at connect and for at least two refreshes (${p.issued.length})`);
      assert.ok((await metric(g.http, 'wsgate_messages_received_total{op="refresh"}')) >= 2);
      assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="token_expired"}'), 0);
      assert.equal(firstBreak(r.seqs('chat.a'), 1), -1, 'every message, in order');
      assert.deepEqual(r.errors, []);
    } finally {
      pub.stop();
      r.client.close();
    }
  });

  it('a refreshed token that drops a topic ends that subscription with an unsubscribed event', async () => {
    const p = provider((call) => (call === 0 ? ['chat.*', 'news'] : ['chat.*']));
    const r = new Recorder({ url: g.ws, token: p.next });
    const ended: UnsubscribedEvent[] = [];
    r.client.on('unsubscribed', (e) => ended.push(e));
    try {
      r.client.connect();
      await r.client.subscribe('news');
      await r.client.subscribe('chat.b');
      await waitFor(() => ended.length === 1, LIFETIME_S * 1000 + 2000, 'the unsubscribed event');
      assert.deepEqual(ended, [{ topic: 'news', reason: 'the refreshed token does not allow this topic' }]);
      assert.deepEqual(Object.keys(r.client.positions()), ['chat.b'], 'the SDK forgot the topic, so it is not resubscribed on reconnect');
      assert.equal(r.opens(), 1);
    } finally {
      r.client.close();
    }
  });
});
