import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { launchChromium } from './helpers/chromium';
import { type TestGateway, startGateway } from './helpers/gateway';
import { SwitchProxy, publishTo } from './helpers/sse';

/** A page on another origin: an EventSource (with credentials) recording every wsgate event it gets. */
const PAGE = `<!doctype html><script>
window.seen = [];
window.state = 'connecting';
const es = new EventSource(new URLSearchParams(location.search).get('sse'), { withCredentials: true });
for (const type of ['message', 'subscribed', 'gap', 'close']) es.addEventListener(type, (e) => window.seen.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }));
es.onopen = () => { window.state = 'open'; };
es.onerror = () => { window.state = es.readyState === 2 ? 'refused' : 'reconnecting'; };
</script>`;

type Seen = { type: string; id: string; data: { t: string; s: number; code?: number } };
type Node = { gateway: Gateway; port: number };


describe('SSE in headless Chromium: cross-origin EventSource, resume across a node drain', { timeout: 90_000 }, () => {
  let browser: BrowserContext;
  let closeBrowser: (() => Promise<void>) | undefined;
  let site: Server;
  let siteOrigin = '';
  let broker: BrokerServer;
  const nodes: Node[] = [];
  let proxy: SwitchProxy;
  let target = 0;
  let strict: TestGateway;

  before(async () => {
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    // "localhost" and "127.0.0.1" are different origins (and sites) to the browser.
    siteOrigin = `http://localhost:${(site.address() as { port: number }).port}`;
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--api-insecure', '--history-size', '1000', '--allowed-origins', siteOrigin, '--drain-window', '100']));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    proxy = await SwitchProxy.start(() => (nodes[target] as Node).port);
    strict = await startGateway(['--api-insecure']);
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  after(async () => {
    await closeBrowser?.();
    await proxy?.stop();
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker?.stop();
    await strict?.stop();
    await new Promise((r) => site?.close(r));
  });

  const open = async (sse: string): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(`${siteOrigin}/?sse=${encodeURIComponent(sse)}`);
    return page;
  };
  const seen = (page: Page): Promise<Seen[]> => page.evaluate(() => (window as unknown as { seen: Seen[] }).seen);
  const messages = async (page: Page): Promise<string[]> => (await seen(page)).filter((e) => e.type === 'message').map((e) => `${e.data.t}:${e.data.s}`);

  it('an allowed origin streams; after node A drains the browser reconnects to node B and gets every missed message once, in order', async () => {
    const [a, b] = nodes as [Node, Node];
    const page = await open(`http://127.0.0.1:${proxy.port}/sse?topics=br.1,br.2`);
    await eventually('subscribed', async () => (await seen(page)).filter((e) => e.type === 'subscribed').length === 2);
    for (let i = 0; i < 4; i++) await publishTo(b.port, i % 2 === 0 ? 'br.1' : 'br.2', i);
    await eventually('four live', async () => (await messages(page)).length === 4);
    target = 1;
    const draining = a.gateway.drain();
    await eventually('close event', async () => (await seen(page)).some((e) => e.type === 'close'));
    for (let i = 4; i < 12; i++) await publishTo(b.port, i % 2 === 0 ? 'br.1' : 'br.2', i);
    await eventually('all twelve after the reconnect', async () => (await messages(page)).length === 12, 20_000);
    await draining;
    const got = await messages(page);
    assert.deepEqual(got.filter((m) => m.startsWith('br.1:')), ['br.1:1', 'br.1:2', 'br.1:3', 'br.1:4', 'br.1:5', 'br.1:6']);
    assert.deepEqual(got.filter((m) => m.startsWith('br.2:')), ['br.2:1', 'br.2:2', 'br.2:3', 'br.2:4', 'br.2:5', 'br.2:6']);
    assert.ok(!(await seen(page)).some((e) => e.type === 'gap'));
    await page.close();
  });

  it('an origin not in --allowed-origins is refused (403): EventSource gives up', async () => {
    const page = await open(`http://127.0.0.1:${strict.port}/sse?topics=br.1`);
    await eventually('refused', async () => (await page.evaluate(() => (window as unknown as { state: string }).state)) === 'refused');
    assert.equal(strict.gw.stats.upgrades.origin_not_allowed, 1);
    await page.close();
  });
});
