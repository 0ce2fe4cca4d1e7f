import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { type MemberEvent, type MessageEvent, WsgateClient } from '../src/client/sdk';
import { eventually } from './helpers/brokers';
import { startGateway } from './helpers/gateway';

const SECRET = 'sdk-channels';
const KEY = 'k';
const token = (sub: string, info?: Record<string, unknown>) =>
  new SignJWT(info === undefined ? {} : { info }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

const post = (http: string, path: string, body: unknown) =>
  fetch(`${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) }).then((r) => r.json());

describe('SDK: presence, history, join/leave, server-side subscriptions', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  const clients: WsgateClient[] = [];
  before(async () => {
    g = await startGateway(['--jwt-secret', SECRET, '--api-key', KEY, '--topics', JSON.stringify([{ match: 'chat.*', presence: true, joinLeave: true }])]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await g.stop();
  });
  const client = async (sub: string, codec: 'json' | 'msgpack' = 'json', info?: Record<string, unknown>) => {
    const t = await token(sub, info);
    const c = new WsgateClient({ url: g.ws, codec, token: () => t, backoff: { minDelayMs: 20, baseDelayMs: 50, maxDelayMs: 200 } });
    clients.push(c);
    c.connect();
    return c;
  };

  it('typed presence and stats; join and leave events (both codecs)', async () => {
    for (const codec of ['json', 'msgpack'] as const) {
      const topic = `chat.${codec}`;
      const a = await client('ann', codec, { name: 'Ann' });
      const events: string[] = [];
      const record = (op: string) => (e: MemberEvent) => events.push(`${op}:${e.topic}:${e.member.user}`);
      a.on('join', record('join'));
      a.on('leave', record('leave'));
      await a.subscribe(topic);
      const b = await client('bob', codec);
      await b.subscribe(topic);
      const members = await a.presence(topic);
      assert.deepEqual(members.map((m) => m.user).sort(), ['ann', 'bob']);
      assert.deepEqual(members.find((m) => m.user === 'ann')?.info, { name: 'Ann' });
      assert.deepEqual(await b.presenceStats(topic), { clients: 2, users: 2, unlisted: 0 });
      await b.unsubscribe(topic);
      await eventually('events', () => events.length === 2);
      assert.deepEqual(events, [`join:${topic}:bob`, `leave:${topic}:bob`]);
    }
  });

  it('history without subscribing', async () => {
    for (let i = 1; i <= 4; i++) await post(g.http, '/publish', { topic: 'news', data: { i } });
    const c = await client('reader');
    const page = await c.history('news', { limit: 2 });
    assert.equal(page.seq, 4);
    assert.deepEqual(page.messages, [{ seq: 3, data: { i: 3 } }, { seq: 4, data: { i: 4 } }]);
    const after1 = await c.history('news', { since: { seq: 1, epoch: page.epoch } });
    assert.deepEqual(after1.messages.map((m) => m.seq), [2, 3, 4]);
  });

  it('a server-side subscription is announced, delivers, and is resumed after a reconnect', async () => {
    const c = await client('srv');
    const got: MessageEvent[] = [];
    const notices: string[] = [];
    c.on('message', (m) => got.push(m));
    c.on('subscribed', (e) => notices.push(`subscribed:${e.topic}`));
    c.on('unsubscribed', (e) => notices.push(`unsubscribed:${e.topic}`));
    // States as events: a prompt reconnect can pass through "reconnecting" faster than a poll looks.
    const states: string[] = [];
    c.on('state', (e) => states.push(e.state));
    await eventually('open', () => c.connectionState === 'open');
    assert.deepEqual(await post(g.http, '/subscribe', { user: 'srv', topic: 'inbox' }), { affected: 1 });
    await post(g.http, '/publish', { topic: 'inbox', data: 'one' });
    await eventually('first message', () => got.length === 1);
    assert.deepEqual(Object.keys(c.positions()), ['inbox']);
    // Closed by the application with "reconnect": the SDK reconnects and resumes the topic it was given.
    // Counted before the request: the close may reach the client before the answer does (with workers
    // the connection's worker closes it while the answering worker still collects the counts).
    const before = states.length;
    assert.deepEqual(await post(g.http, '/disconnect', { user: 'srv' }), { affected: 1 });
    await eventually('reconnected', () => states.slice(before).includes('reconnecting'), 5000);
    await eventually('open again', () => states.slice(before).includes('open') && c.connectionState === 'open', 5000);
    await post(g.http, '/publish', { topic: 'inbox', data: 'two' });
    await eventually('second message', () => got.length === 2, 5000);
    assert.deepEqual(got.map((m) => [m.seq, m.data]), [[1, 'one'], [2, 'two']]);
    await post(g.http, '/unsubscribe', { user: 'srv', topic: 'inbox' });
    await eventually('unsubscribed', () => notices.length === 2);
    assert.deepEqual(notices, ['subscribed:inbox', 'unsubscribed:inbox']);
    assert.deepEqual(c.positions(), {});
  });
});
