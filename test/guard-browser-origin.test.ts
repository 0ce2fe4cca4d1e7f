import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchChromium } from './helpers/chromium';
import { type TestGateway, startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

/** A page on another origin that opens a socket to the gateway and reports what happened. */
const PAGE = `<!doctype html><script>
window.outcome = new Promise((resolve) => {
  const ws = new WebSocket(new URLSearchParams(location.search).get('gw'));
  ws.onopen = () => { resolve('open'); ws.close(); };
  ws.onclose = (e) => resolve('closed ' + e.code);
});
</script>`;

describe('origin policy seen from a real browser (headless Chromium)', () => {
  let browser: BrowserContext;
  let closeBrowser: (() => Promise<void>) | undefined;
  let site: Server;
  let siteOrigin = '';
  let strict: TestGateway;
  let listed: TestGateway;

  before(async () => {
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    // "localhost" and "127.0.0.1" are different origins to the browser.
    siteOrigin = `http://localhost:${(site.address() as { port: number }).port}`;
    strict = await startGateway([]);
    listed = await startGateway(['--allowed-origins', siteOrigin]);
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  after(async () => {
    await closeBrowser?.();
    await strict?.stop();
    await listed?.stop();
    await new Promise((r) => site?.close(r));
  });

  const outcome = async (gw: TestGateway): Promise<string> => {
    const page = await browser.newPage();
    try {
      await page.goto(`${siteOrigin}/?gw=${encodeURIComponent(gw.ws)}`);
      return await page.evaluate(() => (window as unknown as { outcome: Promise<string> }).outcome);
    } finally {
      await page.close();
    }
  };

  test('a page on another site cannot open a socket by default (the browser sees the refusal as 1006)', { skip: SINGLE_THREAD_ONLY }, async () => {
    assert.equal(await outcome(strict), 'closed 1006');
    assert.equal(strict.gw.stats.upgrades.origin_not_allowed, 1);
    assert.equal(strict.gw.stats.upgrades.accepted, 0);
  });

  test('listed in --allowed-origins, the same page connects', { skip: SINGLE_THREAD_ONLY }, async () => {
    assert.equal(await outcome(listed), 'open');
    assert.equal(listed.gw.stats.upgrades.accepted, 1);
  });
});
