import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ownerOf } from '../src/broker/in-process-broker';
import { loadConfig } from '../src/config/load';
import { createLogger } from '../src/log';
import { Supervisor } from '../src/workers/supervisor';
import { runFuzz } from './fuzz/run';
import { AppBackend, json } from './helpers/app-backend';
import { BrokerServer } from './helpers/brokers';
import { APP, collect, pusherClient, serverSdk, subscribed } from './helpers/pusher-clients';
import { type ChildGateway, MAIN, RawClient, metric, sleep, spawnGateway as spawn, waitFor } from './helpers/gateway';

/** Worker threads each load the gateway's modules: on a loaded 2-core machine that can take seconds. */
const spawnGateway = (flags: readonly string[]): Promise<ChildGateway> => spawn(flags, {}, 40_000);

type Frame = Record<string, unknown>;

const last = (c: RawClient): Frame => c.json().at(-1) as Frame;

/** Sends a command and waits for the reply carrying its id. */
async function ask(c: RawClient, cmd: Frame, ms = 8000): Promise<Frame> {
  c.ws.send(JSON.stringify(cmd));
  let reply: Frame | undefined;
  await waitFor(() => (reply = c.json().find((m) => m.id === cmd.id && (m.op === 'ok' || m.op === 'err'))) !== undefined, ms, `reply to ${JSON.stringify(cmd)}`);
  return reply as Frame;
}

/** Deliveries of `topic` a client received, in arrival order. */
const deliveries = (c: RawClient, topic: string): Frame[] => c.json().filter((m) => m.t === topic && typeof m.s === 'number');

async function connectMany(url: string, n: number): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await RawClient.open(url));
  return clients;
}

/** The scenarios every worker count runs: the same guarantees a single node gives. */
function scenarios(workers: number): void {
  describe(`--workers ${workers}`, { timeout: 120_000 }, () => {
    let gw: ChildGateway;
    let url: string;
    let http: string;
    const clients: RawClient[] = [];

    before(async () => {
      gw = await spawnGateway(['--workers', String(workers), '--client-publish', '--history-size', '100', '--topics', '[{"match":"room.*","presence":true}]']);
      url = `ws://127.0.0.1:${gw.port}/ws`;
      http = `http://127.0.0.1:${gw.port}`;
      // Connections are handed round-robin: 2 per worker.
      clients.push(...(await connectMany(url, workers * 2)));
    });
    after(async () => {
      for (const c of clients) c.close();
      await gw.stop();
    });

    it('spreads connections over every worker and answers /metrics once for the process (promtool-clean)', async () => {
      await waitFor(async () => (await metric(http, 'wsgate_connections')) === workers * 2, 8000, 'connections counted');
      assert.equal(await metric(http, 'wsgate_workers'), workers);
      for (let w = 0; w < workers; w++) assert.equal(await metric(http, `wsgate_worker_connections{worker="${w}"}`), 2, `worker ${w}`);
      const text = await (await fetch(`${http}/metrics`)).text();
      execFileSync('promtool', ['check', 'metrics'], { input: text });
      assert.equal(text.split('\n').filter((l) => l.startsWith('# TYPE wsgate_connections ')).length, 1);
    });

    it('numbers every topic once: all subscribers on all workers see seq 1..n in one order, acks carry those seqs', async () => {
      const topics = ['alpha', 'beta', 'gamma', 'delta'];
      for (const [i, c] of clients.entries()) for (const t of topics) assert.equal((await ask(c, { op: 'sub', topic: t, id: 100 + i * 10 + topics.indexOf(t) })).op, 'ok');
      const epochs = new Map<string, Set<unknown>>();
      for (const c of clients) for (const m of c.json()) if (m.op === 'ok' && typeof m.epoch === 'string') {
        const t = topics[Number(m.id) % 10] as string;
        epochs.set(t, (epochs.get(t) ?? new Set()).add(m.epoch));
      }
      for (const t of topics) assert.equal(epochs.get(t)?.size, 1, `one epoch for ${t} across workers`);
      // Socket publishes from every connection and HTTP publishes, interleaved.
      const acks: Promise<Frame>[] = [];
      for (let round = 0; round < 5; round++) {
        for (const [i, c] of clients.entries()) for (const t of topics) acks.push(ask(c, { op: 'pub', topic: t, data: { from: i, round }, id: 1000 + round * 100 + i * 10 + topics.indexOf(t) }));
        const res = await fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(topics.map((t) => ({ topic: t, data: { http: round } }))) });
        assert.equal(res.status, 200);
      }
      const replies = await Promise.all(acks);
      assert.ok(replies.every((r) => r.op === 'ok' && typeof r.seq === 'number'), JSON.stringify(replies.find((r) => r.op !== 'ok')));
      const perTopic = 5 * clients.length + 5;
      for (const c of clients) await waitFor(() => topics.every((t) => deliveries(c, t).length >= perTopic), 10_000, 'every delivery');
      const reference = topics.map((t) => deliveries(clients[0] as RawClient, t));
      for (const c of clients) {
        for (const [k, t] of topics.entries()) {
          const got = deliveries(c, t);
          assert.deepEqual(got.map((m) => m.s), Array.from({ length: perTopic }, (_, i) => i + 1), `${t}: seq 1..${perTopic} once, in order`);
          assert.deepEqual(got, reference[k], `${t}: same data at each seq on every worker`);
        }
      }
      // Each ack's seq is the seq its message was delivered with.
      for (const r of replies.slice(0, 8)) {
        const id = Number(r.id);
        const t = topics[id % 10] as string;
        const round = Math.floor((id - 1000) / 100);
        const from = Math.floor(((id - 1000) % 100) / 10);
        const delivered = deliveries(clients[0] as RawClient, t).find((m) => JSON.stringify(m.d) === JSON.stringify({ from, round }));
        assert.equal(delivered?.s, r.seq);
      }
    });

    it('resumes and serves history on whichever worker a connection lands', async () => {
      const sub = await ask(clients[0] as RawClient, { op: 'sub', topic: 'alpha', id: 1 });
      const epoch = sub.epoch;
      const fresh = await connectMany(url, workers);
      try {
        for (const c of fresh) {
          const reply = await ask(c, { op: 'sub', topic: 'alpha', since: { seq: 3, epoch }, id: 7 });
          assert.equal(reply.recovered, true, JSON.stringify(reply));
          await waitFor(() => deliveries(c, 'alpha').length >= (reply.seq as number) - 3, 5000, 'replay');
          assert.deepEqual(deliveries(c, 'alpha').map((m) => m.s), Array.from({ length: (reply.seq as number) - 3 }, (_, i) => i + 4));
          const history = await ask(c, { op: 'history', topic: 'beta', limit: 3, id: 8 });
          assert.deepEqual((history.messages as Frame[]).map((m) => m.s), [(history.seq as number) - 2, (history.seq as number) - 1, history.seq]);
        }
      } finally {
        for (const c of fresh) c.close();
      }
    });

    it('an idempotencyKey is one publish for the process: retries on every worker, at once and later, get the first seq', async () => {
      for (const [i, c] of clients.entries()) assert.equal((await ask(c, { op: 'sub', topic: 'once', id: 500 + i })).op, 'ok');
      // Every connection (two per worker) sends the same keyed publish at the same moment, twice.
      const pub = (c: RawClient, id: number) => ask(c, { op: 'pub', topic: 'once', data: 'order-1', idempotencyKey: 'k-1', id });
      const acks = await Promise.all(clients.flatMap((c, i) => [pub(c, 510 + i), pub(c, 530 + i)]));
      assert.deepEqual(new Set(acks.map((a) => `${a.op} ${a.seq}`)), new Set(['ok 1']), JSON.stringify(acks));
      assert.equal((await pub(clients.at(-1) as RawClient, 550)).seq, 1);
      const other = await ask(clients[0] as RawClient, { op: 'pub', topic: 'once', data: 'order-2', idempotencyKey: 'k-2', id: 551 });
      assert.equal(other.seq, 2);
      for (const c of clients) await waitFor(() => deliveries(c, 'once').length === 2, 5000, 'two deliveries');
      for (const c of clients) assert.deepEqual(deliveries(c, 'once').map((m) => m.d), ['order-1', 'order-2']);
      assert.equal(await metric(http, 'wsgate_idempotent_repeats_total'), clients.length * 2);
    });

    it('presence lists the members held on every worker', async () => {
      for (const [i, c] of clients.entries()) assert.equal((await ask(c, { op: 'sub', topic: 'room.1', id: 300 + i })).op, 'ok');
      for (const c of clients) {
        const reply = await ask(c, { op: 'presence', topic: 'room.1', id: 399 });
        assert.equal((reply.presence as unknown[]).length, clients.length, JSON.stringify(reply));
      }
    });

    it('SIGTERM drains every worker: each client gets 1012, the process exits 0', async () => {
      gw.child.kill('SIGTERM');
      const codes = await Promise.all(clients.map((c) => c.closed(20_000)));
      assert.deepEqual(codes, clients.map(() => 1012));
      assert.equal(await gw.exited, 0);
      assert.match(gw.output(), /"worker":1,.*"msg":"draining connections"/);
    });
  });
}

scenarios(2);
scenarios(3);

/** The worker a fresh connection landed on (read from the per-worker connection gauges). */
async function openOnWorker(url: string, http: string, workers: number): Promise<{ c: RawClient; worker: number }> {
  const counts = async (): Promise<number[]> => Promise.all(Array.from({ length: workers }, (_, w) => metric(http, `wsgate_worker_connections{worker="${w}"}`)));
  const before = await counts();
  const c = await RawClient.open(url);
  let worker = -1;
  await waitFor(async () => (worker = (await counts()).findIndex((n, w) => n === (before[w] as number) + 1)) >= 0, 8000, 'the connection counted');
  return { c, worker };
}

describe('interest routing (--workers 2, --broker-linger 0)', { timeout: 120_000 }, () => {
  it('a worker without subscribers of a topic receives none of its messages; subscribes and resumes there while publishes flow are exact', async () => {
    const gw = await spawnGateway(['--workers', '2', '--client-publish', '--history-size', '1000', '--broker-linger', '0']);
    const url = `ws://127.0.0.1:${gw.port}/ws`;
    const http = `http://127.0.0.1:${gw.port}`;
    const clients: RawClient[] = [];
    try {
      // The acceptor alternates every connection (the /metrics reads' too): open until both workers have one.
      const on: ({ c: RawClient; worker: number } | undefined)[] = [];
      for (let i = 0; i < 8 && (on[0] === undefined || on[1] === undefined); i++) {
        const o = await openOnWorker(url, http, 2);
        clients.push(o.c);
        on[o.worker] ??= o;
      }
      const [pub, other] = on as [{ c: RawClient; worker: number }, { c: RawClient; worker: number }];
      assert.ok(pub !== undefined && other !== undefined, 'a connection on each worker');
      const topic = Array.from({ length: 50 }, (_, i) => `local.${i}`).find((t) => ownerOf(t, 2) === pub.worker) as string;
      // Subscribers and publisher on the topic's owner: nothing crosses to the other worker.
      assert.equal((await ask(pub.c, { op: 'sub', topic, id: 1 })).op, 'ok');
      const received = await metric(http, 'wsgate_broker_received_total');
      for (let i = 0; i < 20; i++) assert.equal((await ask(pub.c, { op: 'pub', topic, data: i, id: 10 + i })).seq, i + 1);
      assert.equal(await metric(http, 'wsgate_broker_received_total'), received, 'no record crossed the mesh');
      // Publishes from a worker without subscribers: without an id only the publish crosses (nobody
      // waits for its number); with one, the owner's ACK comes back with the seq.
      for (let i = 0; i < 5; i++) other.c.ws.send(JSON.stringify({ op: 'pub', topic, data: `quiet ${i}` }));
      await waitFor(() => deliveries(pub.c, topic).length === 25, 8000, 'the quiet publishes delivered');
      assert.deepEqual(deliveries(pub.c, topic).slice(20).map((m) => [m.s, m.d]), [0, 1, 2, 3, 4].map((i) => [21 + i, `quiet ${i}`]));
      assert.equal(await metric(http, 'wsgate_broker_received_total'), received + 5, 'five publishes crossed, nothing came back');
      assert.equal((await ask(other.c, { op: 'pub', topic, data: 'acked', id: 50 })).seq, 26);
      assert.equal(await metric(http, 'wsgate_broker_received_total'), received + 7, 'a publish and its ACK');

      // The other worker subscribes, leaves (its interest withdrawn at once) and resumes, ten times,
      // while the owner numbers publishes every millisecond.
      let n = 26;
      const flow = setInterval(() => pub.c.ws.send(JSON.stringify({ op: 'pub', topic, data: ++n })), 1);
      try {
        let since: { seq: number; epoch: unknown } | undefined;
        let first = 0;
        for (let round = 0; round < 10; round++) {
          const reply = await ask(other.c, { op: 'sub', topic, id: 100 + round, ...(since === undefined ? {} : { since }) });
          assert.equal(reply.op, 'ok', JSON.stringify(reply));
          if (since !== undefined) assert.equal(reply.recovered, true, `round ${round}: ${JSON.stringify(reply)}`);
          else first = reply.seq as number;
          const seen = deliveries(other.c, topic).length;
          await waitFor(() => deliveries(other.c, topic).length >= seen + 5, 8000, `round ${round}: live deliveries`);
          assert.equal((await ask(other.c, { op: 'unsub', topic, id: 200 + round })).op, 'ok');
          since = { seq: deliveries(other.c, topic).at(-1)?.s as number, epoch: reply.epoch };
          await sleep(round % 3);
        }
        const got = deliveries(other.c, topic).map((m) => m.s as number);
        assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => first + 1 + i), 'every seq after the first cut once, in order, across ten resumes');
        assert.ok(got.length >= 50);
      } finally {
        clearInterval(flow);
      }
    } finally {
      for (const c of clients) c.close();
      await gw.stop();
    }
  });
});

describe('a worker that fails', { timeout: 120_000 }, () => {
  it('is replaced; its clients reconnect, the others are untouched; its topics start a new epoch', async () => {
    const config = loadConfig({ argv: ['--host', '127.0.0.1', '--port', '0', '--log-level', 'silent', '--api-insecure', '--client-publish', '--history-size', '10', '--drain-window', '0'], env: {} });
    const supervisor = new Supervisor(config, createLogger('silent'), 2);
    const port = await supervisor.start();
    const url = `ws://127.0.0.1:${port}/ws`;
    const http = `http://127.0.0.1:${port}`;
    const clients = await connectMany(url, 4);
    try {
      // Topics owned by each worker.
      const owned = [0, 1].map((w) => Array.from({ length: 50 }, (_, i) => `t${i}`).find((t) => ownerOf(t, 2) === w) as string);
      for (const [i, c] of clients.entries()) for (const t of owned) await ask(c, { op: 'sub', topic: t, id: 10 + i * 2 + owned.indexOf(t) });
      for (const t of owned) await ask(clients[0] as RawClient, { op: 'pub', topic: t, data: 'before', id: 50 + owned.indexOf(t) });
      const epochBefore = (await ask(clients[1] as RawClient, { op: 'sub', topic: owned[1] as string, id: 60 })).epoch;

      supervisor.fail(1);
      await waitFor(() => clients.filter((c) => c.closeCode !== null).length === 2, 10_000, 'the failed worker\'s clients cut');
      const survivors = clients.filter((c) => c.closeCode === null);
      assert.equal(survivors.length, 2);
      await waitFor(() => supervisor.live === 2, 20_000, 'worker replaced');
      await waitFor(async () => (await metric(http, 'wsgate_workers')) === 2, 10_000, 'wsgate_workers back to 2');

      // Survivors still get messages of both topics; the replaced owner's topic has a new epoch.
      const reconnected = await connectMany(url, 2);
      clients.push(...reconnected);
      const reply = await ask(reconnected[0] as RawClient, { op: 'sub', topic: owned[1] as string, since: { seq: 1, epoch: epochBefore }, id: 70 });
      assert.notEqual(reply.epoch, epochBefore, 'a new epoch, never a silent continuation');
      assert.equal(reply.recovered, false);
      for (const t of owned) assert.equal((await ask(survivors[0] as RawClient, { op: 'pub', topic: t, data: 'after', id: 80 + owned.indexOf(t) })).op, 'ok');
      for (const c of survivors) await waitFor(() => owned.every((t) => deliveries(c, t).some((m) => m.d === 'after')), 5000, 'deliveries after the replacement');
      assert.equal(last(reconnected[0] as RawClient).d, 'after');
    } finally {
      for (const c of clients) c.close();
      await supervisor.drain();
    }
  });
});

describe('--workers 2 with --broker redis', { timeout: 60_000 }, () => {
  it('each worker is a node of the Redis cluster: one numbering across the workers', async () => {
    const redis = await BrokerServer.start('redis');
    const gw = await spawnGateway(['--workers', '2', '--client-publish', '--broker', redis.url]);
    const clients: RawClient[] = [];
    try {
      assert.match(gw.output(), /"broker":"redis","workers":2/);
      clients.push(...(await connectMany(`ws://127.0.0.1:${gw.port}/ws`, 4)));
      for (const [i, c] of clients.entries()) await ask(c, { op: 'sub', topic: 'r', id: i + 1 });
      const acks = await Promise.all(clients.map((c, i) => ask(c, { op: 'pub', topic: 'r', data: i, id: 10 + i })));
      assert.deepEqual(acks.map((a) => a.seq as number).sort(), [1, 2, 3, 4]);
      for (const c of clients) await waitFor(() => deliveries(c, 'r').length === 4, 8000, 'deliveries');
      for (const c of clients) assert.deepEqual(deliveries(c, 'r'), deliveries(clients[0] as RawClient, 'r'));
    } finally {
      for (const c of clients) c.close();
      await gw.stop();
      await redis.stop();
    }
  });
});

describe('--workers 2: Pusher door and process-wide limits', { timeout: 60_000 }, () => {
  it('pusher-js clients on both workers get an SDK trigger once, numbered once', async () => {
    const gw = await spawnGateway(['--workers', '2', '--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`]);
    const clients = [pusherClient(gw.port), pusherClient(gw.port), pusherClient(gw.port), pusherClient(gw.port)];
    try {
      const events: unknown[][] = [];
      for (const c of clients) {
        const ch = c.subscribe('orders');
        await subscribed(ch);
        events.push(collect(ch, 'created'));
      }
      await waitFor(async () => (await metric(`http://127.0.0.1:${gw.port}`, 'wsgate_worker_connections{worker="1"}')) === 2, 5000, 'two Pusher clients per worker');
      const sdk = serverSdk(gw.port);
      for (let i = 0; i < 3; i++) assert.equal((await sdk.trigger('orders', 'created', { i })).status, 200);
      await waitFor(() => events.every((e) => e.length === 3), 8000, 'every event on every worker');
      for (const e of events) assert.deepEqual(e, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    } finally {
      for (const c of clients) c.disconnect();
      await gw.stop();
    }
  });

  it('the port is the process\'s alone: a second serve --workers on it exits 3', async () => {
    const gw = await spawnGateway(['--workers', '2']);
    try {
      const second = spawnSync(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(gw.port), '--api-insecure', '--workers', '2'], { encoding: 'utf8', timeout: 40_000 });
      assert.equal(second.status, 3, second.stdout + second.stderr);
      assert.match(second.stdout, /the port is in use/);
    } finally {
      await gw.stop();
    }
  });

  it('--max-connections and the per-address limits hold for the process, whichever worker the connections land on', async () => {
    // Split into per-worker shares, 5 would have been 2 + 2 and 3 per address 2 + 2.
    const gw = await spawnGateway(['--workers', '2', '--max-connections', '5', '--max-connections-per-ip', '3', '--connect-rate-per-ip', '3']);
    const url = `ws://127.0.0.1:${gw.port}/ws`;
    const http = `http://127.0.0.1:${gw.port}`;
    const from = (localAddress: string) => RawClient.open(url, undefined, {}, { localAddress });
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await from('127.0.0.2'));
      await assert.rejects(from('127.0.0.2'), /429/, 'the fourth from one address, on either worker');
      for (let i = 0; i < 2; i++) clients.push(await from('127.0.0.3'));
      await assert.rejects(from('127.0.0.4'), /503/, 'the sixth of the process');
      await waitFor(async () => (await metric(http, 'wsgate_worker_connections{worker="0"}')) + (await metric(http, 'wsgate_worker_connections{worker="1"}')) === 5, 8000, 'five connections');
      assert.ok((await metric(http, 'wsgate_worker_connections{worker="1"}')) >= 2, 'both workers hold connections');
      (clients.shift() as RawClient).close();
      await waitFor(async () => (await metric(http, 'wsgate_connections')) === 4, 8000, 'a close frees a slot');
      clients.push(await from('127.0.0.4'));
      // Every attempt spends a token of the address's shared budget (a burst of 6): 429 before 12 attempts.
      const answers: string[] = [];
      for (let i = 0; i < 12 && !answers.includes('429'); i++) answers.push(await from('127.0.0.5').then(() => 'open', (e: Error) => /429|503/.exec(e.message)?.[0] ?? e.message));
      assert.deepEqual(answers.slice(0, 6), ['503', '503', '503', '503', '503', '503'], answers.join());
      assert.ok(answers.includes('429'), answers.join());
      assert.equal(await metric(http, 'wsgate_client_addresses'), 4);
    } finally {
      for (const c of clients) c.close();
      await gw.stop();
    }
  });
});

describe('--workers 2: webhooks and proxies against a real application backend', { timeout: 60_000 }, () => {
  it('topic_occupied/vacated and join/leave once for the process, whichever workers the subscribers are on; the connect proxy asked by every worker', async () => {
    const app = await AppBackend.start();
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    app.on('/connect', (r, res) => json(res, 200, { user: (r.body as { query: { user?: string } }).query.user }));
    const gw = await spawnGateway([
      '--workers', '2', '--webhook-url', `${app.url}/hooks`, '--webhook-secret', 'workers-webhook-secret', '--webhook-delay', '300', '--connect-proxy-url', `${app.url}/connect`,
      '--topics', JSON.stringify([{ match: 'lobby.*', presence: true }]),
    ]);
    const events = (name: string) => app.at('/hooks').flatMap((r) => (r.body as { events: Frame[] }).events).filter((e) => e.name === name && e.topic === 'lobby.1');
    const clients: RawClient[] = [];
    try {
      // One user on four connections, two on each worker.
      for (let i = 0; i < 4; i++) clients.push(await RawClient.open(`ws://127.0.0.1:${gw.port}/ws?user=u1`));
      for (const [i, c] of clients.entries()) assert.equal((await ask(c, { op: 'sub', topic: 'lobby.1', id: i + 1 })).op, 'ok');
      assert.equal(await metric(`http://127.0.0.1:${gw.port}`, 'wsgate_worker_connections{worker="1"}'), 2);
      await waitFor(() => events('topic_occupied').length >= 1 && events('join').length >= 1, 5000, 'occupied and joined');
      // Gone from one worker entirely: the topic and the member are still held on the other.
      for (const c of clients.splice(0, 2)) c.close();
      await sleep(900);
      assert.deepEqual([events('topic_occupied').length, events('join').length, events('topic_vacated').length, events('leave').length], [1, 1, 0, 0]);
      for (const c of clients.splice(0)) c.close();
      await waitFor(() => events('topic_vacated').length >= 1 && events('leave').length >= 1, 5000, 'vacated and left');
      await sleep(600);
      assert.deepEqual([events('topic_occupied').length, events('join').length, events('topic_vacated').length, events('leave').length], [1, 1, 1, 1]);
      assert.equal(events('join')[0]?.user, 'u1');
      assert.equal(app.at('/connect').length, 4);
    } finally {
      for (const c of clients) c.close();
      await gw.stop();
      await app.stop();
    }
  });
});

describe('fuzz in workers mode (quick)', { timeout: 180_000 }, () => {
  it('3,000 generated inputs against --workers 2: the process lives, bystanders get every message once in order', async () => {
    const report = await runFuzz({ inputs: 3000, seed: 20261206, lanes: 8, progress: null, extraFlags: ['--workers', '2'] });
    assert.deepEqual(report.failures, [], `failures; last inputs:\n${report.lastInputs.join('\n')}`);
    assert.ok(report.bystanderPublished > 5);
  });
});
