import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { packr, unpackr } from '../src/protocol/msgpack';
import { RawClient, type TestGateway, metric, sleep, startGateway, waitFor } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';

function token(claims: Record<string, unknown>, expiresIn: string | number = '1h', subject = 'alice', secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

type Frame = Record<string, unknown>;

/** One connection speaking JSON or msgpack, with its frames decoded. */
class Session {
  private constructor(
    readonly raw: RawClient,
    private readonly binary: boolean,
  ) {}

  static async open(g: TestGateway, jwt: string, codec: 'json' | 'msgpack' = 'json'): Promise<Session> {
    const raw = await RawClient.open(g.ws, codec === 'json' ? 'wsgate.json' : 'wsgate.msgpack', { authorization: `Bearer ${jwt}` });
    return new Session(raw, codec === 'msgpack');
  }

  frames(): Frame[] {
    return this.raw.messages.map((m) => (typeof m === 'string' ? JSON.parse(m) : unpackr.unpack(m)) as Frame);
  }

  send(cmd: Frame): void {
    this.raw.ws.send(this.binary ? packr.pack(cmd) : JSON.stringify(cmd));
  }

  /** Sends a command and waits for its reply (ok or err). */
  async command(cmd: Frame & { id: number }): Promise<Frame> {
    this.send(cmd);
    await waitFor(() => this.frames().some((f) => f.id === cmd.id), 5000, `reply to ${String(cmd.op)} #${cmd.id}`);
    return this.frames().find((f) => f.id === cmd.id) as Frame;
  }

  deliveries(topic: string): unknown[] {
    return this.frames()
      .filter((f) => f.t === topic && typeof f.s === 'number')
      .map((f) => f.d);
  }
}

describe('in-band token refresh', () => {
  let g: TestGateway;
  let publisher: Session;
  before(async () => {
    g = await startGateway(['--jwt-secret', SECRET, '--client-publish']);
    publisher = await Session.open(g, await token({ subscribe: [] }, '1h', 'publisher'));
  });
  after(async () => {
    publisher.raw.close();
    await g.stop();
  });

  let nextPub = 1000;
  const publish = (topic: string, data: unknown) => publisher.command({ op: 'pub', topic, data, id: nextPub++ });

  for (const codec of ['json', 'msgpack'] as const) {
    it(`${codec}: a new token replaces expiry and grants; topics it no longer allows end with a notice`, async () => {
      const c = await Session.open(g, await token({ subscribe: ['chat.*', 'news'] }, '2s'), codec);
      assert.equal((await c.command({ op: 'sub', topic: 'chat.a', id: 1 })).op, 'ok');
      assert.equal((await c.command({ op: 'sub', topic: 'news', id: 3 })).op, 'ok');

      const before = c.frames().length;
      const reply = await c.command({ op: 'refresh', token: await token({ subscribe: ['chat.*'] }, '1h'), id: 4 });
      assert.deepEqual(reply, { op: 'ok', id: 4 });
      assert.deepEqual(c.frames().slice(before), [{ op: 'unsubscribed', t: 'news', reason: 'the refreshed token does not allow this topic' }, { op: 'ok', id: 4 }], 'the notice comes before the ok');

      await publish('news', 'not for you');
      await publish('chat.a', 'still yours');
      await waitFor(() => c.deliveries('chat.a').length === 1, 5000, 'the chat delivery');
      assert.deepEqual(c.deliveries('news'), []);
      assert.equal((await c.command({ op: 'sub', topic: 'news', id: 5 })).code, 'forbidden', 'the new grant is in force');

      // Past the first token's 2 s expiry: the close timer follows the new token.
      await sleep(2600);
      assert.equal(c.raw.closeCode, null, 'not closed at the old expiry');
      assert.equal((await c.command({ op: 'ping', id: 6 })).op, 'ok');
      c.raw.close();
    });
  }

  it('a bad, expired, foreign or missing token answers err and leaves the old grant in place', async () => {
    const c = await Session.open(g, await token({ subscribe: ['news'] }));
    const forged = await token({ subscribe: ['*'] }, '1h', 'alice', 'another-secret-of-enough-length-1');
    assert.deepEqual(await c.command({ op: 'refresh', token: forged, id: 1 }), { op: 'err', id: 1, code: 'unauthorized', reason: 'invalid token: signature verification failed' });
    assert.deepEqual(await c.command({ op: 'refresh', token: await token({}, -10), id: 2 }), { op: 'err', id: 2, code: 'unauthorized', reason: 'invalid token: expired' });
    assert.deepEqual(await c.command({ op: 'refresh', token: await token({ subscribe: ['*'] }, '1h', 'mallory'), id: 3 }), {
      op: 'err',
      id: 3,
      code: 'forbidden',
      reason: 'the new token is for another subject',
    });
    assert.equal((await c.command({ op: 'refresh', id: 4 })).code, 'bad_request');
    assert.equal((await c.command({ op: 'refresh', token: 'x'.repeat(9000), id: 5 })).code, 'bad_request');
    assert.equal((await c.command({ op: 'sub', topic: 'news', id: 6 })).op, 'ok', 'the old grant still holds');
    assert.equal((await c.command({ op: 'sub', topic: 'sports', id: 7 })).code, 'forbidden', 'and was not widened');
    assert.equal(c.raw.closeCode, null);
    c.raw.close();
    assert.ok((await metric(g.http, 'wsgate_messages_received_total{op="refresh"}')) >= 3);
  });

  it('a connection that lets its refreshed token expire is still closed with 1008', async () => {
    const c = await Session.open(g, await token({}, '1h'));
    // exp is whole seconds: '1s' issued at x.98 s expired 20 ms later, before the refresh was checked.
    assert.deepEqual(await c.command({ op: 'refresh', token: await token({}, '2s'), id: 1 }), { op: 'ok', id: 1 });
    assert.equal(await c.raw.closed(6000), 1008);
    assert.equal(c.raw.closeReason, 'token expired');
  });

  it('is refused on a gateway without JWT auth', async () => {
    const open = await startGateway([]);
    try {
      const raw = await RawClient.open(open.ws);
      raw.ws.send(JSON.stringify({ op: 'refresh', token: 'a.b.c', id: 1 }));
      await raw.received(1);
      assert.deepEqual(raw.json()[0], { op: 'err', id: 1, code: 'bad_request', reason: 'this gateway does not use tokens: nothing to refresh' });
      raw.close();
    } finally {
      await open.stop();
    }
  });
});
