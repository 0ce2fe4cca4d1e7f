import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { type GapEvent, type MessageEvent, WsgateClient } from '../src/client/sdk';
import { BrokerServer, eventually } from './helpers/brokers';
import { FaultProxy } from './helpers/fault-proxy';
import { type ChildGateway, MAIN, spawnGateway } from './helpers/gateway';

/**
 * A topic's epoch changing under live subscribers (issue 20's second reproduction): redis-server restarted
 * without persistence, so the next publishes are numbered from 1 in a new epoch. Subscribers are told
 * (a `reset` notice) before the first delivery of the new epoch; the SDK reports a `gap` and delivers the
 * new messages; the CLI subscriber says so; a resume from the old epoch answers recovered:false.
 */
describe('epoch change under live subscribers (Redis restarted without persistence)', { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  let gw: ChildGateway;
  const clients: WsgateClient[] = [];
  const http = () => `http://127.0.0.1:${gw.port}`;

  before(async () => {
    broker = await BrokerServer.start('redis');
    gw = await spawnGateway(['--broker', broker.url]);
    await eventually('ready', async () => (await fetch(`${http()}/readyz`)).status === 200);
  });
  after(async () => {
    for (const c of clients) c.close();
    await gw.stop();
    await broker.stop();
  });

  /** Publishes over HTTP, retried while the broker is coming back; returns the seq. */
  async function publish(topic: string, data: unknown): Promise<number> {
    for (let i = 0; ; i++) {
      const res = await fetch(`${http()}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });
      if (res.status === 200) return ((await res.json()) as { results: { seq: number }[] }).results[0]?.seq as number;
      if (i > 100) throw new Error(`publish: ${res.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('the SDK gets a gap (reset) and the new epoch\'s messages, both codecs; the CLI prints a notice; the old epoch does not resume', async () => {
    const subscribers = (['json', 'msgpack'] as const).map((codec) => {
      const c = new WsgateClient({ url: `ws://127.0.0.1:${gw.port}/ws`, codec, backoff: { minDelayMs: 20, baseDelayMs: 50, maxDelayMs: 200 } });
      clients.push(c);
      const log: string[] = [];
      const gaps: GapEvent[] = [];
      c.on('message', (m: MessageEvent) => log.push(`${m.seq}:${(m.data as { n: number }).n}`));
      c.on('gap', (g: GapEvent) => {
        gaps.push(g);
        log.push(`gap:${g.reason}`);
      });
      c.connect();
      return { c, log, gaps };
    });
    const first = await Promise.all(subscribers.map((s) => s.c.subscribe('e.t')));
    const cli = spawn(process.execPath, [MAIN, 'sub', 'e.t', '--url', `ws://127.0.0.1:${gw.port}/ws`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let cliOut = '';
    let cliErr = '';
    cli.stdout.on('data', (d: Buffer) => (cliOut += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (cliErr += d.toString()));
    try {
      await eventually('cli subscribed', () => cliErr.includes('subscribed'));
      for (let n = 1; n <= 5; n++) assert.equal(await publish('e.t', { n }), n);
      await eventually('first epoch delivered', () => subscribers.every((s) => s.log.length === 5));

      await broker.kill();
      await broker.spawn();
      for (let n = 6; n <= 9; n++) assert.equal(await publish('e.t', { n }), n - 5, 'numbered anew');
      await eventually('new epoch delivered', () => subscribers.every((s) => s.log.length === 10), 10_000);
      for (const s of subscribers) {
        assert.deepEqual(s.log, ['1:1', '2:2', '3:3', '4:4', '5:5', 'gap:reset', '1:6', '2:7', '3:8', '4:9']);
        const gap = s.gaps[0] as GapEvent;
        assert.deepEqual(gap.expected, { seq: 5, epoch: first[0]?.epoch });
        assert.notEqual(gap.server.epoch, gap.expected.epoch);
      }
      await eventually('cli shows the reset and the new messages', () => cliErr.includes('started over') && cliOut.trim().split('\n').length === 9);
      assert.ok(cliErr.indexOf('started over') >= 0);

      // A resume with a position of the old epoch is not recovered.
      const late = await GatewayClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
      const ok = (await late.command({ op: 'sub', topic: 'e.t', since: { seq: 5, epoch: first[0]?.epoch } })) as { recovered?: boolean };
      assert.equal(ok.recovered, false);
      await late.close();
    } finally {
      cli.kill('SIGKILL');
    }
  });

  it('a node whose broker link comes back after the new epoch was published refills the new epoch from its start', async () => {
    // Node A reaches Redis through a proxy that stays shut while the broker restarts and B publishes the
    // new epoch's first messages: A learns of the new epoch only from its reconnect snapshot.
    const proxy = await FaultProxy.start(broker.port);
    const a = await spawnGateway(['--broker', `redis://127.0.0.1:${proxy.port}`]);
    try {
      await eventually('A ready', async () => (await fetch(`http://127.0.0.1:${a.port}/readyz`)).status === 200);
      const c = new WsgateClient({ url: `ws://127.0.0.1:${a.port}/ws`, backoff: { minDelayMs: 20, baseDelayMs: 50, maxDelayMs: 200 } });
      clients.push(c);
      const log: string[] = [];
      c.on('message', (m: MessageEvent) => log.push(`${m.seq}:${(m.data as { n: number }).n}`));
      c.on('gap', (g: GapEvent) => log.push(`gap:${g.reason}`));
      c.connect();
      await c.subscribe('e.r');
      for (let n = 1; n <= 3; n++) await publish('e.r', { n });
      await eventually('first epoch delivered', () => log.length === 3);
      const shut = proxy.reset(3000);
      await broker.kill();
      await broker.spawn();
      for (let n = 4; n <= 6; n++) assert.equal(await publish('e.r', { n }), n - 3, 'numbered anew');
      await shut;
      await eventually('new epoch refilled on A', () => log.length === 7, 15_000).catch((e: Error) => { throw new Error(`${e.message}: ${log.join(' ')}\n${a.output()}`); });
      assert.deepEqual(log, ['1:1', '2:2', '3:3', 'gap:reset', '1:4', '2:5', '3:6']);
    } finally {
      await a.stop();
      await proxy.close();
    }
  });
});
