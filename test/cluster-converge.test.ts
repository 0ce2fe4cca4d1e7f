import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { GatewayClient } from '../src/client/gateway-client';
import type { Reply } from '../src/protocol/codec';
import { AppBackend, json } from './helpers/app-backend';
import { BrokerServer, eventually, sleep } from './helpers/brokers';
import { FaultProxy } from './helpers/fault-proxy';
import { type ChildGateway, spawnGateway } from './helpers/gateway';
import { APP, pusherClient, subscribed } from './helpers/pusher-clients';

/**
 * The control plane converges (issue 20), with real brokers and real gateway processes: joins right
 * after a start, a node SIGKILLed and restarted under its reconnecting clients, a broker restart, and a
 * partition through the fault proxy. Timings are bounded by the heartbeat period (--node-ttl / 3).
 */
const SECRET = 'converge-secret';
const RULES = JSON.stringify([
  { match: 'chat.*', presence: true, joinLeave: true },
  { match: 'room.*', presence: true, joinLeave: true, presenceBy: 'user', presenceGrace: 300 },
]);
const NODE_TTL = 1500;
const HEARTBEAT = NODE_TTL / 3;
/** The documented bound (2 heartbeat periods) plus slack for this shared 2-core machine. */
const BOUND = 2 * HEARTBEAT + 1500;

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));
const readyz = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => ({ status: 0 }))).status;
const wsOf = (g: ChildGateway) => `ws://127.0.0.1:${g.port}/ws`;

type Notice = { op: string; t: string; p: { client: string; user: string } };

/** A client (user `sub`) that records the join/leave notices it gets. */
async function member(url: string, sub: string, topics: string[]) {
  const c = await GatewayClient.connect(url, { token: await token(sub) });
  const notices: Notice[] = [];
  c.onNotice = (r: Reply) => {
    const n = r as unknown as Notice;
    if (n.op === 'join' || n.op === 'leave') notices.push(n);
  };
  // One by one: each `ok` means live, so no notice after it is missed.
  for (const t of topics) await c.sub(t);
  /** `op:user` of the notices about `topic`, in order. */
  const seen = (topic: string, user?: string) => notices.filter((n) => n.t === topic && (user === undefined || n.p.user === user)).map((n) => `${n.op}:${n.p.user}`);
  return { c, notices, seen };
}

async function presenceUsers(c: GatewayClient, topic: string): Promise<string[]> {
  const r = (await c.command({ op: 'presence', topic })) as unknown as { presence: { user: string }[] };
  return r.presence.map((e) => e.user).sort();
}

function serve(broker: string, extra: string[] = []): Promise<ChildGateway> {
  return spawnGateway(['--broker', broker, '--jwt-secret', SECRET, '--topics', RULES, ...extra]);
}

async function ready(...nodes: ChildGateway[]): Promise<void> {
  await eventually('readyz 200', async () => (await Promise.all(nodes.map((n) => readyz(n.port)))).every((s) => s === 200), 20_000);
}

// Redis and NATS side by side: each has its own broker, proxy, webhook receiver and nodes.
describe('control plane convergence', { concurrency: 2 }, () => {
  for (const kind of ['redis', 'nats'] as const) {
    describe(`via ${kind}`, { timeout: 120_000, concurrency: 1 }, () => {
      let broker: BrokerServer;
      let proxy: FaultProxy;
      let app: AppBackend;
      const started: ChildGateway[] = [];
      // Webhooks are at least once (docs/backend.md): a batch retried after a timeout (a node stopped mid-request)
      // arrives again, the same batch (Pusher) or the same event ids (generic), and counts once.
      const received = <E>(path: string) => [...new Map(app.at(path).map((r) => [JSON.stringify(r.body), r.body as { events: E[] }])).values()].flatMap((b) => b.events);
      const hooks = (name: string, topic: string) =>
        new Set(received<{ name: string; topic?: string; id: string }>('/hooks').filter((e) => e.name === name && e.topic === topic).map((e) => e.id)).size;
      // Distinct ids: delivery is at least once (an event a partitioned node sent may be sent again by the node that reaped its outbox).
      const pusherHooks = (name: string, channel: string) =>
        new Set(received<{ name: string; channel?: string; id: string }>('/pusher').filter((e) => e.name === name && e.channel === channel).map((e) => e.id)).size;
      const flags = (ttl = NODE_TTL) => [
        ...['--node-ttl', String(ttl), '--webhook-url', `${app.url}/hooks`, '--webhook-secret', 's', '--webhook-delay', '300'],
        ...['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-webhook-url', `${app.url}/pusher`],
      ];
      const viaProxy = () => broker.url.replace(`:${broker.port}`, `:${proxy.port}`);
      const spawn = async (url: string, extra: string[] = []) => {
        const g = await serve(url, extra);
        started.push(g);
        return g;
      };
      let shared: Promise<[ChildGateway, ChildGateway]> | null = null;
      /** A (direct) and B (through the fault proxy), shared by the cases that leave both alive. */
      const pair = async (): Promise<[ChildGateway, ChildGateway]> => {
        shared ??= Promise.all([spawn(broker.url, flags()), spawn(viaProxy(), flags())]);
        const [a, b] = await shared;
        await ready(a, b);
        return [a, b];
      };

      before(async () => {
        broker = await BrokerServer.start(kind, null, null, true);
        proxy = await FaultProxy.start(broker.port);
        app = await AppBackend.start();
        app.on('/hooks', (_r, res) => json(res, 200, {}));
        app.on('/pusher', (_r, res) => json(res, 200, {}));
      });
      after(async () => {
        await Promise.all(started.map((g) => g.stop()));
        await proxy.close();
        await app.stop();
        await broker.stop();
      });

      it('a join right after both nodes answer ready reaches the other node (issue reproduction)', async () => {
        // Default --node-ttl: the first periodic heartbeat is 3.3 s away, so only the start matters.
        const [a, b] = await Promise.all([spawn(broker.url), spawn(broker.url)]);
        await ready(a, b);
        const alice = await member(wsOf(a), 'alice', ['chat.r2', 'room.r2']);
        await sleep(300);
        const bob = await member(wsOf(b), 'bob', ['chat.r2', 'room.r2']);
        await eventually("alice sees bob's joins", () => alice.seen('chat.r2', 'bob').length === 1 && alice.seen('room.r2', 'bob').length === 1, 3000);
        assert.deepEqual(await presenceUsers(alice.c, 'chat.r2'), ['alice', 'bob']);
        await sleep(500);
        assert.deepEqual(alice.seen('chat.r2'), ['join:bob']);
        assert.deepEqual(alice.seen('room.r2'), ['join:bob']);
        assert.deepEqual(bob.seen('chat.r2'), [], 'bob joined after alice: no notice of her');
        await Promise.all([alice.c.close(), bob.c.close(), a.stop(), b.stop()]);
      });

      it('a node SIGKILLed and restarted: its reconnecting clients are seen everywhere within 2 s; no false leave', async () => {
        // A node TTL longer than a restart takes here, so the user is held again before the old node is gone.
        const ttl = 5000;
        const a = await spawn(broker.url, flags(ttl));
        let b = await spawn(broker.url, flags(ttl));
        await ready(a, b);
        const wA = await member(wsOf(a), 'wa', ['chat.k', 'room.k']);
        const u1 = await member(wsOf(b), 'u1', ['chat.k', 'room.k']);
        await eventually('u1 joined on A', () => wA.seen('chat.k', 'u1').length === 1 && wA.seen('room.k', 'u1').length === 1, 5000);
        const oldClient = (wA.notices.find((n) => n.t === 'chat.k') as Notice).p.client;

        b.child.kill('SIGKILL');
        await b.exited;
        void u1.c.close();
        b = await spawn(broker.url, flags(ttl));
        await ready(b);
        const reconnected = Date.now();
        const u1again = await member(wsOf(b), 'u1', ['chat.k', 'room.k']);
        await eventually("u1's new connection joined on A", () => wA.seen('chat.k', 'u1').filter((n) => n === 'join:u1').length === 2, 2000).catch((e: Error) => {
          throw new Error(`${e.message}: A saw ${JSON.stringify(wA.notices)}; B: ${b.output().slice(-2000)}`);
        });
        assert.ok(Date.now() - reconnected <= 2000, 'within 2 s');
        // The restarted node knows A's members at once.
        assert.deepEqual(await presenceUsers(u1again.c, 'chat.k'), ['u1', 'wa']);
        // The killed node's connection leaves once its node is gone; the user, held again, never leaves.
        await eventually("the old connection's leave", () => wA.notices.some((n) => n.op === 'leave' && n.p.client === oldClient), ttl * 2);
        await sleep(HEARTBEAT * 2);
        // The old connection's leave (node TTL) and the new one's join may come in either order.
        assert.deepEqual(wA.seen('chat.k', 'u1').sort(), ['join:u1', 'join:u1', 'leave:u1']);
        assert.deepEqual(wA.seen('room.k', 'u1'), ['join:u1'], 'user u1 stayed present');
        await Promise.all([wA.c.close(), u1again.c.close(), a.stop(), b.stop()]);
      });

      // Before the shared pair below exists: no other node may reap B.
      it('a node that took over a vacate and died before confirming it hands it on to whoever reaps it', async () => {
        const delay = ['--webhook-delay', '1500'];
        const [a, b, c] = await Promise.all([spawn(broker.url, [...flags(), ...delay]), spawn(broker.url, [...flags(), ...delay]), spawn(broker.url, [...flags(), ...delay])]);
        await ready(a, b, c);
        const solo = await member(wsOf(b), 'solo', ['solo.c']);
        await eventually('solo.c occupied', () => hooks('topic_occupied', 'solo.c') === 1, 5000);
        b.child.kill('SIGKILL');
        // A and C both reap B; the one that takes over the vacate says so, and dies within the delay.
        const taking = /vacating the topics of a node that stopped heartbeating/;
        let reaper: ChildGateway | undefined;
        await eventually('a reaper took over the vacate', () => (reaper = [a, c].find((g) => taking.test(g.output()))) !== undefined, NODE_TTL * 6).catch((e: Error) => {
          throw new Error(`${e.message}: A: ${a.output().slice(-1000)}; C: ${c.output().slice(-1000)}`);
        });
        (reaper as ChildGateway).child.kill('SIGKILL');
        const survivor = reaper === a ? c : a;
        assert.equal(hooks('topic_vacated', 'solo.c'), 0, 'the reaper died before confirming');
        await eventually('the survivor confirms the vacate', () => hooks('topic_vacated', 'solo.c') === 1, NODE_TTL * 3 + 1500 + 1000).catch((e: Error) => {
          throw new Error(`${e.message}: survivor: ${survivor.output().slice(-1500)}`);
        });
        await sleep(HEARTBEAT * 2);
        assert.equal(hooks('topic_vacated', 'solo.c'), 1);
        void solo.c.close();
        await Promise.all([a.stop(), b.stop(), c.stop()]);
      });

      it('changes lost while the broker restarts are repaired once it is back', async () => {
        const [a, b] = await pair();
        const wA = await member(wsOf(a), 'wa', ['chat.b', 'room.b']);
        const u5 = await member(wsOf(b), 'u5', ['chat.b', 'room.b']);
        await eventually('u5 joined on A', () => wA.seen('chat.b', 'u5').length === 1 && wA.seen('room.b', 'u5').length === 1, 5000);
        await broker.kill();
        await u5.c.close(); // its leaves cannot reach A now
        await sleep(700);
        await broker.spawn();
        await ready(a, b);
        const back = Date.now();
        await eventually('the lost leaves, repaired', () => wA.seen('chat.b', 'u5').length === 2 && wA.seen('room.b', 'u5').length === 2, BOUND);
        console.log(`# ${kind}: repaired ${Date.now() - back} ms after both nodes were ready again (bound ${2 * HEARTBEAT} ms)`);
        await sleep(HEARTBEAT * 2);
        assert.deepEqual(wA.seen('chat.b', 'u5'), ['join:u5', 'leave:u5']);
        assert.deepEqual(wA.seen('room.b', 'u5'), ['join:u5', 'leave:u5']);
        assert.deepEqual(await presenceUsers(wA.c, 'chat.b'), ['wa']);
        await wA.c.close();
      });

      it('a partitioned node keeps serving; when it returns, its members rejoin and its topic is occupied again, once', async () => {
        const [a, b] = await pair();
        const wA = await member(wsOf(a), 'wa', ['chat.p', 'room.p']);
        const u7 = await member(wsOf(b), 'u7', ['chat.p', 'room.p', 'solo.p']);
        // pusher-js: a member on each node of presence-p; B's also alone on presence-solo.
        const [pw, pm] = [pusherClient(a.port, { member: { user_id: 'pw' } }), pusherClient(b.port, { member: { user_id: 'pm' } })];
        const pwRoom = pw.subscribe('presence-p');
        const pwSaw: string[] = [];
        pwRoom.bind('pusher:member_added', (m: { id: string }) => pwSaw.push(`added:${m.id}`));
        pwRoom.bind('pusher:member_removed', (m: { id: string }) => pwSaw.push(`removed:${m.id}`));
        await subscribed(pwRoom);
        await Promise.all([subscribed(pm.subscribe('presence-p')), subscribed(pm.subscribe('presence-solo'))]);
        await eventually('u7 joined on A, solo.p occupied', () => wA.seen('room.p', 'u7').length === 1 && wA.seen('chat.p', 'u7').length === 1 && hooks('topic_occupied', 'solo.p') === 1, 5000);
        await eventually('pm added on A, presence-solo occupied', () => pwSaw.length === 1 && pusherHooks('channel_occupied', 'presence-solo') === 1, 5000);

        const cut = proxy.reset(NODE_TTL * 3);
        await eventually('A declares B gone: u7 leaves, solo.p vacated', () => wA.seen('room.p', 'u7').length === 2 && wA.seen('chat.p', 'u7').length === 2 && hooks('topic_vacated', 'solo.p') === 1, NODE_TTL * 4);
        await eventually('pm removed on A, presence-solo vacated', () => pwSaw.length === 2 && pusherHooks('channel_vacated', 'presence-solo') === 1, 2000);
        // B, cut off, still serves its clients and does not take A's members for gone.
        assert.deepEqual(u7.seen('room.p'), []);
        assert.deepEqual(u7.seen('chat.p'), []);
        await u7.c.command({ op: 'ping' });
        await cut;
        await ready(b);
        const back = Date.now();
        const rejoined = () => pwSaw.length === 3 && pusherHooks('channel_occupied', 'presence-solo') === 2;
        await eventually('u7 and pm rejoined on A, solo.p and presence-solo occupied again', () => wA.seen('room.p', 'u7').length === 3 && wA.seen('chat.p', 'u7').length === 3 && hooks('topic_occupied', 'solo.p') === 2 && rejoined(), BOUND).catch((e: Error) => {
          throw new Error(`${e.message}: A saw ${JSON.stringify(wA.notices)}; hooks ${JSON.stringify(app.at('/hooks').map((r) => r.body))}`);
        });
        console.log(`# ${kind}: partition repaired ${Date.now() - back} ms after B was ready again (bound ${2 * HEARTBEAT} ms)`);
        await sleep(HEARTBEAT * 2);
        assert.deepEqual(wA.seen('room.p', 'u7'), ['join:u7', 'leave:u7', 'join:u7']);
        assert.deepEqual(wA.seen('chat.p', 'u7'), ['join:u7', 'leave:u7', 'join:u7']);
        assert.equal(hooks('topic_occupied', 'solo.p'), 2, 'occupied again exactly once');
        assert.equal(hooks('topic_vacated', 'solo.p'), 1);
        assert.deepEqual(u7.seen('room.p'), [], "B's client never saw A's members leave");
        assert.deepEqual(pwSaw, ['added:pm', 'removed:pm', 'added:pm'], 'pusher-js on A: member_removed then member_added, once each');
        assert.equal(pusherHooks('channel_occupied', 'presence-solo'), 2, 'channel_occupied again exactly once');
        assert.equal(pusherHooks('channel_vacated', 'presence-solo'), 1);
        assert.equal(pusherHooks('channel_occupied', 'presence-p'), 1, 'presence-p was never vacated');
        pw.disconnect();
        pm.disconnect();

        // B's last subscriber of solo.p leaves, and B is cut off (shorter than a TTL: A reaps nothing) while
        // the vacate waits for its delay: the confirmation that failed is made again once B is back.
        await u7.c.unsub('solo.p');
        await sleep(100);
        const blip = proxy.reset(500);
        await sleep(400);
        assert.equal(hooks('topic_vacated', 'solo.p'), 1, 'not confirmed while cut off');
        await blip;
        await eventually('the failed confirmation, made again', () => hooks('topic_vacated', 'solo.p') === 2, BOUND + 1000).catch((e: Error) => {
          throw new Error(`${e.message}: hooks ${JSON.stringify(app.at('/hooks').map((r) => r.body))}; B: ${b.output().slice(-1500)}`);
        });
        assert.equal(wA.seen('room.p', 'u7').length, 3, 'A did not take B for gone');
        assert.equal(hooks('topic_occupied', 'solo.p'), 2);
        await Promise.all([wA.c.close(), u7.c.close()]);
      });

      it('a node whose event loop stalled takes nobody for gone when it resumes', async () => {
        const [a, b] = await pair();
        const alice = await member(wsOf(a), 'alice', ['chat.s']);
        const bob = await member(wsOf(b), 'bob', ['chat.s', 'solo.s']);
        await eventually('bob joined on A, solo.s occupied', () => alice.seen('chat.s', 'bob').length === 1 && hooks('topic_occupied', 'solo.s') === 1, 5000);
        // B's whole process stops for two TTLs: A rightly declares it gone; B, resuming, runs its heartbeat
        // timer before it reads the heartbeats that waited in its socket meanwhile.
        b.child.kill('SIGSTOP');
        await eventually('A declares B gone: bob leaves, solo.s vacated', () => alice.seen('chat.s', 'bob').length === 2 && hooks('topic_vacated', 'solo.s') === 1, NODE_TTL * 4);
        await sleep(HEARTBEAT);
        b.child.kill('SIGCONT');
        // B's broker connection never dropped: it learns from A's heartbeat that it was reaped, and re-asserts.
        await eventually('bob back on A, solo.s occupied again', () => alice.seen('chat.s', 'bob').length === 3 && hooks('topic_occupied', 'solo.s') === 2, BOUND).catch((e: Error) => {
          throw new Error(`${e.message}: hooks ${JSON.stringify(app.at('/hooks').map((r) => r.body))}`);
        });
        await sleep(HEARTBEAT * 2);
        assert.deepEqual(bob.seen('chat.s'), [], 'B never took A (alive all along) for gone');
        assert.deepEqual(alice.seen('chat.s', 'bob'), ['join:bob', 'leave:bob', 'join:bob']);
        assert.equal(hooks('topic_occupied', 'solo.s'), 2, 'occupied again exactly once');
        assert.equal(hooks('topic_vacated', 'solo.s'), 1);
        await Promise.all([alice.c.close(), bob.c.close()]);
      });
    });
  }
});
