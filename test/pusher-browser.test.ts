import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchChromium } from './helpers/chromium';
import { type TestGateway, startGateway, waitFor } from './helpers/gateway';
import { APP, serverSdk } from './helpers/pusher-clients';

const PUSHER_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher.min.js'));

/** An application page as a Pusher user writes it, only wsHost/wsPort pointing at wsgate. */
const page = (port: number) => `<!doctype html><script src="/pusher.min.js"></script><script>
window.got = [];
const pusher = new Pusher(${JSON.stringify(APP.key)}, {
  cluster: 'mt1', wsHost: '127.0.0.1', wsPort: ${port}, forceTLS: false, enabledTransports: ['ws'], disableStats: true,
  channelAuthorization: { endpoint: '/pusher/auth', transport: 'ajax' },
});
for (const name of ['browser-news', 'private-browser']) {
  const ch = pusher.subscribe(name);
  ch.bind('pusher:subscription_succeeded', () => window.got.push(name + ' subscribed'));
  ch.bind('headline', (d) => window.got.push(name + ' ' + d.title));
}
</script>`;

describe('pusher-js in headless Chromium against wsgate', () => {
  let browser: BrowserContext;
  let closeBrowser: (() => Promise<void>) | undefined;
  let site: Server;
  let g: TestGateway;

  before(async () => {
    site = createServer((req, res) => {
      if (req.url === '/pusher.min.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(PUSHER_JS);
      if (req.url === '/pusher/auth' && req.method === 'POST') {
        // The application's auth endpoint: the real server SDK signs the channel for the socket.
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const form = new URLSearchParams(body);
          const auth = serverSdk(g.port).authorizeChannel(form.get('socket_id') ?? '', form.get('channel_name') ?? '');
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(auth));
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(page(g.port));
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    const origin = `http://localhost:${(site.address() as { port: number }).port}`;
    // A browser sends its page's Origin: the gateway must list it (as for /ws).
    g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--allowed-origins', origin]);
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  after(async () => {
    await closeBrowser?.();
    await g?.stop();
    await new Promise((r) => site?.close(r));
  });

  test('the page subscribes to a public and a private channel and receives events the server SDK triggers', async () => {
    const tab = await browser.newPage();
    try {
      await tab.goto(`http://localhost:${(site.address() as { port: number }).port}/`);
      const got = () => tab.evaluate(() => (window as unknown as { got: string[] }).got);
      await waitFor(async () => (await got()).length === 2, 10_000, 'both subscriptions');
      const sdk = serverSdk(g.port);
      await sdk.trigger(['browser-news', 'private-browser'], 'headline', { title: 'hello' });
      await waitFor(async () => (await got()).length === 4, 5000, 'both events');
      assert.deepEqual((await got()).sort(), ['browser-news hello', 'browser-news subscribed', 'private-browser hello', 'private-browser subscribed']);
      assert.equal(g.gw.stats.pusherConnections, 1);
    } finally {
      await tab.close();
    }
  });
});
